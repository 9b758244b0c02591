// The kotsu binary as a user runs it: YAML run files, flags, stdin, errors on one line, kill -9 and --resume.
#include <signal.h>
#include <torch/cuda.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "kotsu/io/file.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  std::string cmd = std::string(KOTSU_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string base_args(const std::string& out, const std::string& strategy = "full") {
  return "train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + out +
         " --strategy " + strategy + " --lr 1e-3 --batch-size 8 --seed 5 --patience 0 --quiet";
}

}  // namespace

TEST(Cli, TrainFromYamlEvalPredict) {
  std::string dir = test::temp_dir("cli");
  write_atomic(dir + "/run.yaml", "model: " + test::fixture("tiny_bert_init") + "\ndata: " + test::fixture("task/train.csv") +
                                      "\nout: " + dir + "/wrong\nlr: 0.001\nbatch_size: 8\nepochs: 3\npatience: 0\nstrategy: full\n");
  auto r = run("train " + dir + "/run.yaml --out " + dir + "/run --epochs 25");  // flags override the file
  ASSERT_EQ(r.code, 0) << r.out;
  auto run_json = nlohmann::json::parse(read_file(dir + "/run/run.json"));
  EXPECT_EQ(run_json["options"]["epochs"], 25);
  EXPECT_DOUBLE_EQ(run_json["options"]["lr"].get<double>(), 0.001);
  EXPECT_FALSE(std::filesystem::exists(dir + "/wrong"));

  r = run("eval --run " + dir + "/run --data " + test::fixture("task/test.jsonl") + " --json --predictions " + dir + "/p.jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  auto rep = nlohmann::json::parse(r.out);
  std::string preds = read_file(dir + "/p.jsonl");
  EXPECT_EQ(std::count(preds.begin(), preds.end(), '\n'), 60);
  auto row = nlohmann::json::parse(preds.substr(0, preds.find('\n')));
  EXPECT_EQ(row["line"], 1);
  EXPECT_TRUE(row.contains("predicted") && row.contains("confidence") && row.contains("text"));
  EXPECT_GE(rep["accuracy"].get<double>(), 0.9);
  EXPECT_TRUE(std::filesystem::exists(dir + "/run/eval-test.json"));

  r = run("predict --run " + dir + "/run \"my card was stolen\" \"what is the loan rate\"");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, 4), "card");
  EXPECT_NE(r.out.find("\nloan\t"), std::string::npos) << r.out;

  write_atomic(dir + "/in.txt", "please transfer the payment\nmy card is lost\n");
  r = run("predict --json --run " + dir + "/run < " + dir + "/in.txt");
  ASSERT_EQ(r.code, 0) << r.out;
  auto first = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(first["label"], "transfer");
  EXPECT_EQ(first["probabilities"].size(), 3u);
}

// A text classifier's LoRA run exports --merged as a plain model (no adapter files) that predicts what the
// run predicts: the same float32 probabilities, and within bfloat16's rounding with --dtype bfloat16.
TEST(Cli, ClassifierLoraRunExportsMerged) {
  const std::string dir = test::temp_dir("cli-merged");
  auto r = run(base_args(dir + "/run", "lora") + " --epochs 1");
  ASSERT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(std::filesystem::exists(dir + "/run/adapter_config.json"));
  for (const std::string dtype : {"float32", "bfloat16"}) {
    const std::string out = dir + "/merged-" + dtype;
    r = run("export --merged --model " + dir + "/run --dtype " + dtype + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_FALSE(std::filesystem::exists(out + "/adapter_config.json"));
    EXPECT_EQ(nlohmann::json::parse(read_file(out + "/config.json"))["torch_dtype"], dtype);
    const auto a = run("predict --json --run " + dir + "/run \"my card was stolen\""), b = run("predict --json --run " + out + " \"my card was stolen\"");
    ASSERT_EQ(a.code, 0) << a.out;
    ASSERT_EQ(b.code, 0) << b.out;
    const auto pa = nlohmann::json::parse(a.out)["probabilities"], pb = nlohmann::json::parse(b.out)["probabilities"];
    for (auto it = pa.begin(); it != pa.end(); ++it) {
      // bfloat16 keeps 8 bits of each weight: a relative 2^-9 per weight, which the tiny model's logits (|z| < 5) carry
      // into probabilities within a few hundredths
      if (dtype == "float32") EXPECT_EQ(it.value(), pb[it.key()]) << it.key();
      else EXPECT_NEAR(it.value().get<double>(), pb[it.key()].get<double>(), 0.05) << it.key();
    }
  }
}

// --target-recall CLASS=R: training stores the threshold at which CLASS's validation recall reaches R (and
// says so); eval, predict and serve decide with it. The plumbing is checked with the threshold then set to
// 0, where every answer must be CLASS; a class the data lacks, a recall outside (0, 1] and a run without
// validation are refused before training.
TEST(Cli, TargetRecallSetsTheDecisionEvalPredictAndServeUse) {
  const std::string dir = test::temp_dir("cli-recall"), run_dir = dir + "/run";
  auto r = run("train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + run_dir +
               " --strategy head --seed 5 --target-recall loan=0.9");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("decision: 'loan' whenever its probability is >= "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("validation recall per class: "), std::string::npos) << r.out;
  auto rj = nlohmann::json::parse(read_file(run_dir + "/run.json"));
  ASSERT_TRUE(rj["decision"].is_object()) << rj.dump();
  EXPECT_EQ(rj["decision"]["class"], "loan");
  EXPECT_GE(rj["decision"]["val_recall"].get<double>(), 0.9);
  EXPECT_EQ(rj["val_recall_per_class"].size(), 3u);
  // the threshold at 0: everything is a loan, whatever the probabilities
  rj["decision"]["threshold"] = 0.0;
  write_atomic(run_dir + "/run.json", rj.dump(2));
  r = run("eval --run " + run_dir + " --data " + test::fixture("task/test.jsonl") + " --json --predictions " + dir + "/p.jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string preds = read_file(dir + "/p.jsonl");
  size_t rows = 0;
  for (size_t at = 0; at < preds.size(); at = preds.find('\n', at) + 1, ++rows) EXPECT_EQ(nlohmann::json::parse(preds.substr(at, preds.find('\n', at) - at))["predicted"], "loan");
  EXPECT_EQ(rows, 60u);
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out)["per_class"]["loan"]["recall"].get<double>(), 1.0);
  r = run("predict --json --run " + run_dir + " \"my card was stolen\" \"please transfer the payment\"");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out.substr(0, r.out.find('\n')))["label"], "loan");
  EXPECT_EQ(nlohmann::json::parse(r.out.substr(r.out.find('\n') + 1))["label"], "loan");
  {
    test::ServeProcess serve({"m=" + run_dir, "--threads", "1"});
    ASSERT_GT(serve.port, 0) << serve.output;
    httplib::Client c("127.0.0.1", serve.port);
    auto res = c.Post("/v1/models/m:predict", R"({"inputs": ["my card was stolen", "please transfer the payment"]})", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const auto answer = nlohmann::json::parse(res->body);
    for (const auto& p : answer["predictions"]) EXPECT_EQ(p["label"], "loan");
  }
  r = run("train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir +
          "/x --strategy head --target-recall mortgage=0.9");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("target_recall: 'mortgage' is not one of the labels (card, loan, transfer)"), std::string::npos) << r.out;
  r = run("train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir +
          "/x --strategy head --target-recall loan=1.5");
  EXPECT_NE(r.out.find("'1.5' is not a recall in (0, 1]"), std::string::npos) << r.out;
  r = run("train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir +
          "/x --strategy head --validation false --target-recall loan=0.9");
  EXPECT_NE(r.out.find("it needs validation"), std::string::npos) << r.out;
}

TEST(Cli, ErrorsAreOneLineAndNonZero) {
  std::string dir = test::temp_dir("cli-err");
  write_atomic(dir + "/bad.csv", "text,label\nfine,card\n\"oops,card\n");
  write_atomic(dir + "/bad.yaml", "model: x\nlearning_rate: 3\n");
  write_atomic(dir + "/bad.tflite", "TFL");
  write_atomic(dir + "/pytorch_model.bin", std::string("PK\x03\x04", 4) + std::string(60, '\0'));
  struct Case {
    std::string args, needle;
  };
  std::vector<Case> cases = {
      {"train --model " + test::fixture("tiny_bert_init") + " --data " + dir + "/bad.csv --out " + dir + "/r", "bad.csv: line 3: unterminated"},
      {"train --model /nonexistent --data " + test::fixture("task/train.csv") + " --out " + dir + "/r2", "/nonexistent: model directory not found"},
      {"train " + dir + "/bad.yaml", "bad.yaml: learning_rate: unknown option"},
      {"train " + dir + "/missing.yaml", "missing.yaml: cannot open run file"},
      {"eval --run " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/test.tsv"), "no labels"},
      {"train --resume " + dir, "--resume: no run to resume (no run.json"},
      {"inspect " + dir + "/bad.csv", "bad.csv: is a file of unknown kind; kotsu inspect reads"},
      {"import tfjs " + dir + "/nowhere --out " + dir + "/m", "nowhere: no such file or directory"},
      {"import tfjs " + dir + " --out " + dir + "/m", "model.json: missing: not a TF.js model folder"},
      {"import onnx " + dir + " --out " + dir + "/m", "import: format: 'onnx' is not supported"},
      {"import tfjs " + test::fixture("tfjs") + " --out " + dir + "/m", "not a TF.js model kotsu can import"},
      {"import tflite " + dir + "/bad.csv --out " + dir + "/m", "bad.csv: header: no TFL3 identifier"},
      {"inspect " + dir + "/bad.tflite", "bad.tflite: header: file is too short"},
      {"inspect " + dir + "/pytorch_model.bin", "pytorch_model.bin: is a PyTorch checkpoint (torch.save's zip of pickles)"},
      {"import tflite " + dir + "/nowhere.tflite --out " + dir + "/m", "nowhere.tflite: no such file"},
      {"import tfjs " + test::fixture("tfjs") + " --labels x.txt --out " + dir + "/m", "--labels: applies to image classifiers only"},
      {"predict --run " + test::fixture("tiny_bert") + " --device gpu hello", "--device: 'gpu' is not cpu or cuda[:N]"},
      {"eval --run " + test::fixture("tiny_bert") + " --data x.csv --device cuda:1x", "--device: 'cuda:1x' is not cpu or cuda[:N]"},
      // data-parallel flags
      {"train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir + "/d --nnodes 2", "--master: several machines"},
      {"train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir + "/d --nnodes 2 --node-rank 2 --master a:1", "--node-rank: 2 is outside [0, 2)"},
      {"train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir + "/d --nproc 2 --strategy head", "strategy head fits the head once"},
  };
  if (!torch::cuda::is_available()) {  // a CPU-only build says so and how to get a CUDA one
    cases.push_back({"train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") + " --out " + dir + "/c --device cuda",
                     "--device: cuda: no CUDA device"});
    cases.push_back({"serve " + test::fixture("tiny_bert") + " --device cuda:0", "--device: cuda:0: no CUDA device"});
  }
  for (const auto& c : cases) {
    auto r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.needle), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_EQ(r.out.rfind("kotsu: error: ", 0), 0u) << r.out;
  }
}

TEST(Cli, KillNineThenResumeMatchesUninterruptedRun) {
  std::string dir = test::temp_dir("cli-kill");
  auto ref = run(base_args(dir + "/ref") + " --epochs 8");
  ASSERT_EQ(ref.code, 0) << ref.out;

  const std::string out = dir + "/killed";
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = std::string(KOTSU_CLI) + " " + base_args(out) + " --epochs 8";
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
    _exit(127);
  }
  // wait for the first checkpoint, then kill -9 mid-run
  auto t0 = std::chrono::steady_clock::now();
  while (!std::filesystem::exists(out + "/trainer_state.json") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  auto state = nlohmann::json::parse(read_file(out + "/trainer_state.json"));
  EXPECT_LT(state["epoch"].get<int>(), 8);

  auto res = run("train --quiet --resume " + out);
  ASSERT_EQ(res.code, 0) << res.out;
  EXPECT_EQ(read_file(dir + "/ref/model.safetensors"), read_file(out + "/model.safetensors"));
  EXPECT_EQ(read_file(dir + "/ref/checkpoint-8/model.safetensors"), read_file(out + "/checkpoint-8/model.safetensors"));
}

TEST(Cli, InspectListsTensorsAndGgufKeys) {
  auto r = run("inspect " + test::fixture("tiny_bert/model.safetensors"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("bert.embeddings.word_embeddings.weight"), std::string::npos);
  EXPECT_NE(r.out.find("tensors,"), std::string::npos);
  std::string gguf = test::shared_dir() + "/tokenizers/llama.cpp-vocab/ggml-vocab-bert-bge.gguf";
  if (!std::filesystem::exists(gguf)) KOTSU_SKIP() << "asset not found: " << gguf;
  r = run("inspect " + gguf);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("tokenizer.ggml.tokens = [30522 values]"), std::string::npos) << r.out;
}

TEST(Cli, TokenizePrintsIdsPiecesJsonAndDecodes) {
  std::string model = test::fixture("unigram/tokenizer.model");
  auto r = run("tokenize --model " + model + " --ids 'where is my card'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto expected = nlohmann::json::parse(read_file(test::fixture("unigram_expected.json")))[0];
  ASSERT_EQ(expected["text"], "where is my card");
  std::string ids = "1";  // the template's <s>
  for (auto& id : expected["ids"]) ids.append(" ").append(std::to_string(id.get<int64_t>()));
  EXPECT_EQ(r.out, ids + "\n");
  r = run("tokenize --model " + model + " --json --no-special 'where is my card'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"], expected["ids"]);
  EXPECT_EQ(j["tokens"].size(), j["offsets"].size());
  r = run("tokenize --model " + model + " --decode '" + ids + "'");
  EXPECT_EQ(r.out, "where is my card\n");
  r = run("tokenize --model " + model + " --decode --show-special '" + ids + "'");
  EXPECT_EQ(r.out, "<s> where is my card\n");
  std::string dir = test::temp_dir("cli-tok");
  write_atomic(dir + "/lines.txt", "where is my card\nrefund\n");
  r = run("tokenize --model " + test::fixture("tiny_bert_tj") + " --file " + dir + "/lines.txt");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
  EXPECT_EQ(r.out.rfind("2:[CLS] ", 0), 0u) << r.out;  // id:piece pairs, [CLS] first
  r = run("tokenize --model " + dir + "/nothing-here 'x'");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("nothing-here"), std::string::npos) << r.out;
}

// A disk that fills half-way through a checkpoint (simulated with a file-size limit, RLIMIT_FSIZE, so that
// no root or mount is needed): the run says it failed and why, the commands that use its model warn,
// --resume starts it again (no checkpoint was complete) and finishes, and the temporary files cut writes
// leave are removed on that next start.
TEST(Cli, AFullDiskFailsTheRunVisiblyAndResumeFinishesIt) {
  const std::string dir = test::temp_dir("cli-full"), out = dir + "/run";
  const auto weights = std::filesystem::file_size(test::fixture("tiny_bert_init/model.safetensors"));
  // model.safetensors (the weights and a new head) fits, optimizer.pt (two moments per weight) does not
  const auto limit_kb = weights * 3 / 2 / 1024;
  const std::string cmd = "bash -c \"trap '' XFSZ; ulimit -f " + std::to_string(limit_kb) + "; exec " + KOTSU_CLI + " " + base_args(out) + " --epochs 3\"";
  int status = 0;
  const std::string said = test::run_command(cmd, &status);
  ASSERT_NE(status, 0) << said;
  EXPECT_NE(said.find("optimizer.pt"), std::string::npos) << said;
  auto rj = nlohmann::json::parse(read_file(out + "/run.json"));
  EXPECT_EQ(rj["status"], "failed");
  EXPECT_NE(rj["error"].get<std::string>().find("optimizer.pt"), std::string::npos) << rj.dump();
  ASSERT_FALSE(std::filesystem::exists(out + "/trainer_state.json"));

  Result r = run("predict --run " + out + " \"my card was stolen\"");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("is a run that did not finish (it failed: "), std::string::npos) << r.out;
  r = run("report " + out);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("did not finish"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("no validation split"), std::string::npos) << r.out;

  // what kill -9 leaves behind mid-write, in the run and in a checkpoint folder
  write_atomic(out + "/.model.safetensors.tmp123456", "torn");
  std::filesystem::create_directories(out + "/checkpoint-1");
  write_atomic(out + "/checkpoint-1/.optimizer.pt.tmp42", "torn");
  write_atomic(out + "/keep.tmp", "not ours");
  r = run("train --resume " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("starting it again from the beginning"), std::string::npos) << r.out;
  rj = nlohmann::json::parse(read_file(out + "/run.json"));
  EXPECT_EQ(rj["status"], "finished");
  EXPECT_EQ(rj["history"].size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(out + "/.model.safetensors.tmp123456"));
  EXPECT_FALSE(std::filesystem::exists(out + "/checkpoint-1/.optimizer.pt.tmp42"));
  EXPECT_TRUE(std::filesystem::exists(out + "/keep.tmp"));
  r = run("predict --run " + out + " \"my card was stolen\"");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("did not finish"), std::string::npos) << r.out;
}
