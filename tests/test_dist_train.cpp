// Data-parallel training end to end through the CLI (dist/launch starts the workers, train/trainer shards
// the batches and sums the gradients with dist/grad_sync): two workers with batch B must reach the weights
// one process reaches with batch 2B; a killed worker stops the run with its rank named, and the run resumes
// with another number of workers.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <future>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <tuple>

#include "kotsu/io/safetensors.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

namespace fs = std::filesystem;

// A copy of a model directory with some config.json fields changed (dropout off: the workers' masks
// cannot be one process's).
std::string model_copy(const std::string& from, const std::string& tag, const nlohmann::json& changes) {
  const std::string dir = test::temp_dir(tag) + "/model";
  fs::copy(from, dir, fs::copy_options::recursive);
  nlohmann::json c = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  c.update(changes);
  std::ofstream(dir + "/config.json") << c.dump(2);
  return dir;
}

std::string cli() { return KOTSU_CLI; }

// What of a trained tensor the equality tests compare (undefined: nothing). Attention key biases have a
// true gradient of 0 (softmax ignores a shift of every score): what is computed is rounding noise of the
// cancelling terms (eps x their sum, ~1e-10 here), which differs between one process's backward and two
// workers' summed halves, and Adam divides it by eps = 1e-8: steps of up to lr x noise / eps that no
// tolerance derived from the arithmetic can tell from a bug. They are left out (BERT/RoBERTa key.bias,
// DistilBERT k_lin.bias, Llama-family k_proj.bias); GPT-2 fuses query/key/value, so its key third is cut
// out and the query and value thirds compared.
torch::Tensor comparable(const std::string& name, const torch::Tensor& t) {
  if (name.find("attention.self.key.bias") != std::string::npos || name.find("k_lin.bias") != std::string::npos ||
      name.find("k_proj.bias") != std::string::npos)
    return {};
  torch::Tensor x = t.to(torch::kDouble);
  if (name.find("attn.c_attn.bias") != std::string::npos) {
    const int64_t h = x.size(0) / 3;
    x = torch::cat({x.narrow(0, 0, h), x.narrow(0, 2 * h, h)});
  }
  return x;
}

std::string g_worst_tensor;  // where max_difference found its largest difference

// The largest absolute difference between the tensors two model files share (with same_names, they must
// hold the same tensors).
double max_difference(const std::string& a, const std::string& b, size_t* compared, bool same_names = true) {
  const auto ta = load_safetensors(a), tb = load_safetensors(b);
  if (same_names) { EXPECT_EQ(ta.size(), tb.size()); }
  double worst = 0;
  *compared = 0;
  for (const auto& [name, t] : ta) {
    const auto it = tb.find(name);
    if (it == tb.end()) {
      if (same_names) ADD_FAILURE() << name << " missing from " << b;
      continue;
    }
    const torch::Tensor x = comparable(name, t), y = comparable(name, it->second);
    if (!x.defined()) continue;
    const double d = (x - y).abs().max().item<double>();
    if (d > worst) {
      worst = d;
      g_worst_tensor = name;
    }
    ++*compared;
  }
  return worst;
}

// ||a - b|| / ||a - from|| over the tensors of two model files (from: the weights both started from, or
// "" to divide by ||a||): how much of what training moved differs between the two runs.
double relative_distance(const std::string& a, const std::string& b, const std::string& from) {
  const auto ta = load_safetensors(a), tb = load_safetensors(b);
  const auto t0 = from.empty() ? std::map<std::string, torch::Tensor>() : load_safetensors(from);
  double diff = 0, moved = 0;
  for (const auto& [name, t] : ta) {
    const torch::Tensor x = comparable(name, t), y = comparable(name, tb.at(name));
    if (!x.defined()) continue;
    diff += (x - y).pow(2).sum().item<double>();
    const torch::Tensor start = t0.count(name) ? comparable(name, t0.at(name)) : torch::zeros_like(x);
    moved += (x - start).pow(2).sum().item<double>();
  }
  return std::sqrt(diff / std::max(moved, 1e-300));
}

// One process at batch 2B and two workers at batch B train to the same weights (and both moved away from
// where they started, so the comparison is not of two untouched models).
void expect_two_workers_equal_one(const std::string& model, const std::string& data, const std::string& extra, int batch, const std::string& tag) {
  const std::string dir = test::temp_dir(tag);
  const std::string common = " --model " + model + " --data " + data + " --validation false --threads 1 --quiet" + extra;
  int st = 0;
  std::string out = test::run_command(cli() + " train" + common + " --batch-size " + std::to_string(2 * batch) + " --out " + dir + "/one", &st);
  ASSERT_EQ(st, 0) << out;
  out = test::run_command(cli() + " train" + common + " --batch-size " + std::to_string(batch) + " --nproc 2 --out " + dir + "/two", &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("data-parallel: 2 workers here (ranks 0-1 of 2"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir + "/two/checkpoint-0"));
  size_t n = 0;
  const double diff = max_difference(dir + "/one/model.safetensors", dir + "/two/model.safetensors", &n);
  EXPECT_GT(n, 10u);
  std::printf("%s: largest difference %.3g over %zu tensors (%s)\n", tag.c_str(), diff, n, g_worst_tensor.c_str());
  EXPECT_LT(diff, 1e-5) << tag << ": 2 workers x batch " << batch << " vs 1 x " << 2 * batch;
  const nlohmann::json one = nlohmann::json::parse(std::ifstream(dir + "/one/run.json"));
  const nlohmann::json two = nlohmann::json::parse(std::ifstream(dir + "/two/run.json"));
  EXPECT_EQ(one["history"].back()["step"], two["history"].back()["step"]);
  EXPECT_NEAR(one["history"].back()["train_loss"].get<double>(), two["history"].back()["train_loss"].get<double>(), 1e-5);
  size_t m = 0;
  EXPECT_GT(max_difference(dir + "/one/model.safetensors", model + "/model.safetensors", &m, false), 1e-3);  // the encoder trained
  EXPECT_GT(m, 10u);
}

// The first `keep[label]` rows of each label of a CSV with a header (imbalanced subsets), with `prefix`
// put before the first field (absolute picture paths).
std::string csv_subset(const std::string& from, std::map<std::string, int> keep, const std::string& tag, const std::string& prefix = "") {
  std::ifstream in(from);
  const std::string path = test::temp_dir(tag) + "/data.csv";
  std::ofstream out(path);
  std::string line;
  std::getline(in, line);
  out << line << "\n";
  while (std::getline(in, line)) {
    std::string label = line.substr(line.rfind(',') + 1);
    label.erase(std::remove_if(label.begin(), label.end(), [](char c) { return c == '"' || c == '\r'; }), label.end());
    if (keep[label]-- > 0) out << prefix << line << "\n";
  }
  return path;
}

TEST(DistTrain, TwoWorkersAtBatchBEqualOneProcessAt2BOnTinyBert) {
  const std::string model = model_copy(test::fixture("tiny_bert_init"), "ddp-bert-model", {{"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0}});
  // 300 rows, 16 per step: 19 steps, the last one short (12 rows, 6 per worker)
  expect_two_workers_equal_one(model, test::fixture("task/train.csv"), " --strategy full --epochs 2 --lr 1e-3", 8, "ddp-bert");
  // imbalanced, 233 rows: the last step has 9 (4 and 5); a class-weighted loss and 2 micro-batches per
  // step exercise the workers' loss shares and the accumulation (no clipping: a clipped gradient hides a
  // wrongly scaled one)
  const std::string imbalanced = csv_subset(test::fixture("task/train.csv"), {{"card", 100}, {"loan", 95}, {"transfer", 38}}, "ddp-bert-data");
  expect_two_workers_equal_one(model, imbalanced, " --strategy full --epochs 1 --lr 1e-3 --class-weights balanced --grad-accum 2 --grad-clip 0", 8, "ddp-bert-weighted");
}

TEST(DistTrain, TwoWorkersAtBatchBEqualOneProcessAt2BOnACnn) {
  const std::string base = test::tiny_mobilenet("ddp-cnn-base");
  const std::string model = model_copy(base, "ddp-cnn-model", {{"classifier_dropout_prob", 0.0}});
  // 9 pictures, 4 per step: the last step has one picture, so one worker trains on none there; random
  // crops and flips are drawn per (seed, epoch, picture), the same in any worker
  const std::string data = csv_subset(test::fixture("image_task/images.csv"), {{"cat", 4}, {"dog", 4}, {"fox", 1}}, "ddp-cnn-data", test::fixture("image_task") + "/");
  expect_two_workers_equal_one(model, data, " --epochs 2 --lr 3e-3 --strategy full --head-first false --grad-clip 0", 2, "ddp-cnn");
}

// Instruction tuning a causal LM (the tiny GPT-2, dropout off): LoRA with 2 micro-batches per step and full
// fine-tuning with validation. 7 rows of different lengths at 4 per step: the last step's 3 rows split 1/2,
// and the loss divisor is the whole step's learnt tokens.
TEST(DistTrain, TwoWorkersAtBatchBEqualOneProcessAt2BOnACausalLm) {
  const std::string model = model_copy(test::fixture("tiny_gpt2"), "ddp-lm-model", {{"resid_pdrop", 0.0}, {"embd_pdrop", 0.0}, {"attn_pdrop", 0.0}});
  const std::string data = test::temp_dir("ddp-lm-data") + "/facts.jsonl";
  {
    std::ofstream out(data);
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"sky?", " blue"}, {"the grass in spring?", " green"}, {"snow?", " white and cold"}, {"coal?", " black"},
        {"sun at noon?", " yellow"}, {"rose?", " red"}, {"sea on a clear day?", " deep blue"}};
    for (const auto& [q, a] : rows) out << nlohmann::json({{"prompt", "colour of the " + q + " ->"}, {"completion", a}}).dump() << "\n";
  }
  for (const auto& [extra, file, tag] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {" --strategy lora --lora-dropout 0 --lora-targets all-linear --grad-accum 2 --validation false --epochs 3", "adapter_model.safetensors", "ddp-lm-lora"},
           {" --strategy full --validation true --val-fraction 0.3 --epochs 2", "model.safetensors", "ddp-lm-full"}}) {
    const std::string dir = test::temp_dir(tag);
    const std::string common = " train --model " + model + " --data " + data + " --threads 1 --lr 1e-2 --warmup-ratio 0 --grad-clip 0 --quiet" + extra;
    int st = 0;
    std::string out = test::run_command(cli() + common + " --batch-size 4 --out " + dir + "/one", &st);
    ASSERT_EQ(st, 0) << out;
    out = test::run_command(cli() + common + " --batch-size 2 --nproc 2 --out " + dir + "/two", &st);
    ASSERT_EQ(st, 0) << out;
    size_t n = 0;
    const double diff = max_difference(dir + "/one/" + file, dir + "/two/" + file, &n);
    const double rel = relative_distance(dir + "/one/" + file, dir + "/two/" + file, file == "model.safetensors" ? model + "/model.safetensors" : "");
    std::printf("%s: largest difference %.3g over %zu tensors (%s); ||one - two|| / ||one - start|| = %.3g\n", tag.c_str(), diff, n,
                g_worst_tensor.c_str(), rel);
    // At lr 1e-2 Adam's normalised steps make the rounding of near-cancelling gradient coordinates (two
    // workers sum in another order than one process) lr-sized in the worst case: measured up to 7.5e-6 on
    // GPT-2's tied token embeddings, and 3.8e-6 on a LoRA A, depending on the BLAS kernel. Such rounding
    // touches a few coordinates; a wrong share of the loss changes every update. So: each coordinate within
    // the lr-sized worst case of the 9 steps (3.2 lr each), and the whole difference a small part of what
    // training moved (measured 3e-7 to 3e-6 with OPENBLAS_CORETYPE unset and Haswell; dividing each
    // worker's loss by its own tokens instead of the whole step's gives 0.05 and 0.25).
    EXPECT_LT(diff, 9 * 3.2e-2) << tag;
    EXPECT_LT(rel, 1e-3) << tag;
    EXPECT_GT(n, 3u);
    const nlohmann::json one = nlohmann::json::parse(std::ifstream(dir + "/one/run.json"));
    const nlohmann::json two = nlohmann::json::parse(std::ifstream(dir + "/two/run.json"));
    EXPECT_NEAR(one["history"].back()["train_loss"].get<double>(), two["history"].back()["train_loss"].get<double>(), 1e-5) << tag;
    if (one["history"].back().contains("val_loss")) {
      EXPECT_NEAR(one["history"].back()["val_loss"].get<double>(), two["history"].back()["val_loss"].get<double>(), 1e-5) << tag;
    }
  }
}

// The launcher's stderr line "... pids A B ..." -> {A, B}.
std::vector<int> worker_pids(const std::string& log) {
  std::smatch m;
  std::vector<int> pids;
  if (std::regex_search(log, m, std::regex("pids ([0-9 ]+)\\)"))) {
    std::istringstream in(m[1].str());
    for (int p; in >> p;) pids.push_back(p);
  }
  return pids;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Killing a worker mid-run (`args` trains for 30 epochs, a checkpoint after each): the launcher and the
// surviving worker stop within 60 s naming rank 1; the run resumes from its last checkpoint with two
// workers to exactly the uninterrupted two-worker result (`weights`: the file the run writes), and with
// one process to the end.
void expect_killed_worker_stops_and_run_resumes(const std::string& args, const std::string& weights, const std::string& tag) {
  const std::string dir = test::temp_dir(tag);
  int st = 0;
  std::string out = test::run_command(cli() + " train" + args + " --nproc 2 --quiet --out " + dir + "/whole", &st);
  ASSERT_EQ(st, 0) << out;

  const std::string log = dir + "/killed.log";
  auto run = std::async(std::launch::async, [&] {
    int s = 0;
    test::run_command(cli() + " train" + args + " --nproc 2 --out " + dir + "/killed > " + log + " 2>&1", &s);
    return s;
  });
  std::vector<int> pids;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < limit && (pids.size() < 2 || !fs::exists(dir + "/killed/checkpoint-3"))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pids = worker_pids(read_text(log));
  }
  ASSERT_EQ(pids.size(), 2u) << read_text(log);
  ASSERT_TRUE(fs::exists(dir + "/killed/checkpoint-3")) << read_text(log);
  ASSERT_EQ(::kill(pids[1], SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(run.wait_for(std::chrono::seconds(90)), std::future_status::ready) << "the launcher did not stop";
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_NE(run.get(), 0);
  EXPECT_LT(secs, 60.0);
  const std::string text = read_text(log);
  EXPECT_NE(text.find("worker rank 1 (pid " + std::to_string(pids[1]) + ") was killed by signal 9"), std::string::npos) << text;
  EXPECT_NE(text.find("rank 0 of 2: worker rank 1 was lost or stopped answering"), std::string::npos) << text;
  EXPECT_NE(::kill(pids[0], 0), 0) << "rank 0 still runs";
  const nlohmann::json state = nlohmann::json::parse(std::ifstream(dir + "/killed/trainer_state.json"));
  EXPECT_GE(state["epoch"].get<int>(), 3);
  EXPECT_LT(state["epoch"].get<int>(), 30) << "the kill came too late to test anything";

  // a copy resumes with one process; the run itself with two workers, to the uninterrupted result
  fs::copy(dir + "/killed", dir + "/killed1", fs::copy_options::recursive);
  out = test::run_command(cli() + " train --resume " + dir + "/killed --nproc 2", &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("with 2 data-parallel workers"), std::string::npos) << out;
  size_t n = 0;
  EXPECT_LT(max_difference(dir + "/whole/" + weights, dir + "/killed/" + weights, &n), 1e-6);
  EXPECT_GT(n, 3u);
  out = test::run_command(cli() + " train --resume " + dir + "/killed1 --quiet", &st);
  ASSERT_EQ(st, 0) << out;
  const nlohmann::json done = nlohmann::json::parse(std::ifstream(dir + "/killed1/run.json"));
  EXPECT_EQ(done["status"], "finished");
  EXPECT_EQ(done["history"].size(), 30u);
}

TEST(DistTrain, AKilledWorkerStopsTheRunNamingItAndTheRunResumes) {
  const std::string model = model_copy(test::fixture("tiny_bert_init"), "ddp-kill-model", {{"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0}});
  expect_killed_worker_stops_and_run_resumes(" --model " + model + " --data " + test::fixture("task/train.csv") +
                                                 " --strategy full --validation false --threads 1 --epochs 30 --lr 1e-3 --batch-size 8",
                                             "model.safetensors", "ddp-kill");
}

// The same for instruction tuning a causal LM with LoRA (lm_trainer's own checkpoints, optimizer state and
// resume path): 240 prompt/completion rows, 8 per worker and step.
TEST(DistTrain, AKilledWorkerStopsACausalLmRunAndTheRunResumes) {
  const std::string model = model_copy(test::fixture("tiny_gpt2"), "ddp-lm-kill-model", {{"resid_pdrop", 0.0}, {"embd_pdrop", 0.0}, {"attn_pdrop", 0.0}});
  const std::string data = test::temp_dir("ddp-lm-kill-data") + "/rows.jsonl";
  {
    std::ofstream out(data);
    const std::vector<std::string> words = {" red", " green", " blue", " white", " black", " yellow"};
    for (int i = 0; i < 240; ++i)
      out << nlohmann::json({{"prompt", "item " + std::to_string(i) + " has colour"}, {"completion", words[static_cast<size_t>(i * 7 % 6)]}}).dump() << "\n";
  }
  expect_killed_worker_stops_and_run_resumes(" --model " + model + " --data " + data +
                                                 " --strategy lora --lora-dropout 0 --validation false --threads 1 --epochs 30 --lr 1e-3 --batch-size 8",
                                             "adapter_model.safetensors", "ddp-lm-kill");
}

// Two network namespaces joined by a veth pair stand for two machines (made and removed here; needs
// root, skipped otherwise): `kotsu train --nnodes 2 --node-rank R --master 10.x.0.1:PORT` in each, Gloo on
// each side's veth (GLOO_SOCKET_IFNAME), trains to the single-process result at the doubled batch.
TEST(DistTrain, TwoMachinesInNetworkNamespacesTrainLikeOneProcess) {
  const std::string tag = "kt" + std::to_string(getpid() % 100000);
  const std::string a = tag + "a", b = tag + "b";
  int st = 0;
  std::string out = test::run_command("ip netns add " + a + " && ip netns add " + b, &st);
  if (st != 0) {
    test::run_command("ip netns del " + a + "; ip netns del " + b, nullptr);
    KOTSU_SKIP() << "cannot make network namespaces here (needs root and iproute2): " << out;
  }
  struct Cleanup {
    std::string a, b;
    ~Cleanup() { test::run_command("ip netns del " + a + "; ip netns del " + b, nullptr); }
  } cleanup{a, b};
  const std::string net = "10." + std::to_string(100 + getpid() % 100) + ".0.";
  out = test::run_command("ip link add " + a + " type veth peer name " + b + " && ip link set " + a + " netns " + a + " && ip link set " + b + " netns " + b +
                              " && ip -n " + a + " addr add " + net + "1/24 dev " + a + " && ip -n " + b + " addr add " + net + "2/24 dev " + b +
                              " && ip -n " + a + " link set " + a + " up && ip -n " + b + " link set " + b + " up && ip -n " + a + " link set lo up && ip -n " + b +
                              " link set lo up",
                          &st);
  ASSERT_EQ(st, 0) << out;

  const std::string model = model_copy(test::fixture("tiny_bert_init"), "ddp-netns-model", {{"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0}});
  const std::string dir = test::temp_dir("ddp-netns");
  const std::string args = " train --model " + model + " --data " + test::fixture("task/train.csv") + " --strategy full --validation false --threads 1 --epochs 2 --lr 1e-3 --quiet";
  out = test::run_command(cli() + args + " --batch-size 16 --out " + dir + "/one", &st);
  ASSERT_EQ(st, 0) << out;
  const std::string master = " --nnodes 2 --master " + net + "1:29561 --dist-timeout 60 --batch-size 8 --out " + dir + "/two";
  auto node1 = std::async(std::launch::async, [&] {
    int s = 0;
    std::string o = test::run_command("ip netns exec " + b + " env GLOO_SOCKET_IFNAME=" + b + " " + cli() + args + master + " --node-rank 1", &s);
    return std::make_pair(s, o);
  });
  out = test::run_command("ip netns exec " + a + " env GLOO_SOCKET_IFNAME=" + a + " " + cli() + args + master + " --node-rank 0", &st);
  const auto [st1, out1] = node1.get();
  ASSERT_EQ(st, 0) << out;
  ASSERT_EQ(st1, 0) << out1;
  EXPECT_NE(out.find("ranks 0-0 of 2"), std::string::npos) << out;
  EXPECT_NE(out1.find("ranks 1-1 of 2"), std::string::npos) << out1;
  size_t n = 0;
  EXPECT_LT(max_difference(dir + "/one/model.safetensors", dir + "/two/model.safetensors", &n), 1e-5);
  EXPECT_GT(n, 10u);
}

}  // namespace
}  // namespace kotsu
