#include "kotsu/train/lm_trainer.hpp"

#include "kotsu/train/auto_strategy.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/lm_data.hpp"
#include "kotsu/dist/grad_sync.hpp"
#include "kotsu/dist/process_group.hpp"
#include "kotsu/dist/shard.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/train/adamw.hpp"
#include "kotsu/train/precision.hpp"
#include "kotsu/train/progress.hpp"
#include "kotsu/train/run_files.hpp"
#include "kotsu/train/schedule.hpp"
#include "kotsu/train/trainer_state.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

bool no_decay(const std::string& name) {
  return name.size() >= 5 && (name.compare(name.size() - 5, 5, ".bias") == 0 || name.find("norm") != std::string::npos || name.find("ln_") != std::string::npos);
}

struct Split {
  std::vector<InstructionExample> train, val;
};

Split split_data(const TrainOptions& o) {
  Split s;
  std::vector<InstructionExample> all = read_instruction_data(o.data);
  if (!o.val_data.empty()) {
    std::vector<InstructionExample> val = read_instruction_data(o.val_data);
    if (o.validation) {
      s.train = std::move(all);
      s.val = std::move(val);
    } else {
      s.train = std::move(all);
      s.train.insert(s.train.end(), val.begin(), val.end());
    }
    return s;
  }
  if (!o.validation) {
    s.train = std::move(all);
    return s;
  }
  std::vector<size_t> order(all.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o.seed);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t n_val = std::max<size_t>(1, static_cast<size_t>(std::llround(o.holdout_fraction() * static_cast<double>(all.size()))));
  if (n_val >= all.size()) throw Error(o.data, "val_fraction", "leaves no training example; give --val-data or more rows");
  for (size_t i = 0; i < order.size(); ++i) (i < n_val ? s.val : s.train).push_back(all[order[i]]);
  return s;
}

// Mean loss per learnt token over the validation examples; with data-parallel workers each scores its
// contiguous range and the sums are added up.
double validation_loss(CausalLm& model, const std::vector<LmExample>& data, int64_t batch, int64_t pad, torch::Device device, ProcessGroup* pg) {
  torch::NoGradGuard ng;
  model.eval();
  double sum = 0, n = 0;
  const auto [from, to] = pg ? worker_range(data.size(), pg->rank(), pg->size()) : std::pair<size_t, size_t>{0, data.size()};
  for (size_t a = from; a < to; a += static_cast<size_t>(batch)) {
    std::vector<size_t> idx;
    for (size_t i = a; i < std::min(to, a + static_cast<size_t>(batch)); ++i) idx.push_back(i);
    const LmBatch b = make_lm_batch(data, idx, pad);
    sum += lm_loss_sum(model.logits(b.ids.to(device), nullptr, b.mask.to(device)), b.labels.to(device)).item<double>();
    n += static_cast<double>(b.targets);
  }
  if (pg) {
    std::vector<torch::Tensor> t{torch::tensor({sum, n}, torch::kDouble)};
    pg->all_reduce_sum(t);
    sum = t[0][0].item<double>();
    n = t[0][1].item<double>();
  }
  return sum / std::max(1.0, n);
}

void save_model(CausalLm& model, const TrainOptions& o, const LoraOptions& lo, const Tokenizer& tok) {
  if (o.strategy == "lora") {
    save_peft_adapter(model, lo, o.out, fs::absolute(o.model).string(), "CAUSAL_LM");
  } else {
    NamedTensors w;
    for (auto& [n, t] : model.state()) w.emplace_back(n, t.detach().to(torch::kFloat).contiguous().cpu());
    save_safetensors((fs::path(o.out) / "model.safetensors").string(), w, {{"format", "pt"}});
    write_atomic((fs::path(o.out) / "config.json").string(), read_file((fs::path(o.model) / "config.json").string()));
  }
  tok.save(o.out);
}

// What a resumed run needs besides the weights and the optimizer (trainer_state.json).
TrainResult run_lm(const TrainOptions& o, const TrainHooks& hooks, bool resume, const nlohmann::json& state) {
  ProcessGroup* pg = hooks.workers;
  const int world = pg ? pg->size() : 1, rank = pg ? pg->rank() : 0;
  const bool lead = rank == 0;  // writes the run directory and reports
  Progress progress(hooks.quiet || !lead);
  const torch::Device device(o.device);
  const bool lora = o.strategy == "lora";
  // adapters only: the frozen base may stay in bf16 (half the memory); a full fine-tune keeps float32 weights
  CausalLmModel m = load_causal_lm(o.model, lora && o.bf16 ? torch::kBFloat16 : torch::kFloat);
  CausalLm& model = *m.model;
  model.to(device);
  const Tokenizer tok = Tokenizer::load(o.model);
  LoraOptions lo;
  std::vector<std::string> adapted;
  if (lora) {
    lo.shape = {o.lora_r, o.lora_alpha, o.lora_dropout, false};
    lo.target_modules = lora_targets_from_spec(o.lora_targets, model);
    lo.seed = o.seed;
    adapted = apply_lora(model, lo);
    model.to(device);
  }
  if (o.max_len > m.config.max_positions) {  // longer rows could not go through the model at all
    progress.log(fmt::format("--max-len {} exceeds the model's {} positions: examples are cut to {}", o.max_len, m.config.max_positions, m.config.max_positions));
  }
  const int64_t max_len = std::min(o.max_len, m.config.max_positions);
  const ChatFormat format(o.chat_template, o.model, tok);
  const Split split = split_data(o);
  const LmTokenized train = tokenize_instructions(split.train, tok, format, max_len, o.data);
  LmTokenized val;
  if (o.validation) val = tokenize_instructions(split.val, tok, format, max_len, o.val_data.empty() ? o.data : o.val_data);
  const int64_t pad = tok.pad_id();

  std::vector<FusedAdamW::Group> groups(2);
  groups[0].weight_decay = o.weight_decay;
  int64_t total = 0, trainable = 0;
  NamedTensors trained;  // what a checkpoint holds: the parameters that train
  for (const auto& p : model.named_parameters(true)) {
    total += p.value().numel();
    if (!p.value().requires_grad()) continue;
    trainable += p.value().numel();
    trained.emplace_back(p.key(), p.value());
    groups[no_decay(p.key()) ? 1 : 0].params.push_back(p.value());
  }
  if (groups[1].params.empty()) groups.pop_back();
  FusedAdamW opt(groups, {});
  if (lead) make_dirs(o.out);
  TrainerState s;
  s.best = std::nan("");  // the lowest validation loss so far
  const std::string state_path = (fs::path(o.out) / "trainer_state.json").string();
  if (resume) {
    s = TrainerState::from_json(state, state_path);
    if (lead) {  // rank 0 reads the checkpoint; the other workers receive it below
      const std::string ck = (fs::path(o.out) / s.checkpoint).string();
      torch::NoGradGuard ng;
      SafetensorsReader reader(ck + "/trainable.safetensors");
      for (auto& [name, t] : trained) {
        if (!reader.find(name)) throw Error(reader.path(), name, "tensor missing from the checkpoint");
        t.copy_(reader.tensor(name));
      }
      opt.load_file(ck + "/optimizer.pt");
    }
    progress.log(fmt::format("resuming {} after epoch {} (step {}){}", o.out, s.epoch, s.global_step,
                             pg ? fmt::format(" with {} data-parallel workers", world) : ""));
  }
  std::unique_ptr<GradSync> sync;
  if (pg) {  // every worker starts from rank 0's trainable weights and optimizer state
    std::vector<torch::Tensor> ts;
    for (auto& [name, t] : trained) ts.push_back(t);
    start_from_rank0(*pg, ts, opt);
    if (world > 1) sync = std::make_unique<GradSync>(*pg, ts, pg->bucket_bytes());
  }
  progress.log(fmt::format("model {} ({}, {} layers, {} parameters)", o.model, m.config.model_type, m.config.num_layers, total));
  progress.log(fmt::format("data {}: {} train / {} validation examples{}{}", o.data, train.examples.size(), val.examples.size(),
                           train.truncated + val.truncated ? fmt::format(", {} cut to {} tokens", train.truncated + val.truncated, max_len) : "",
                           train.dropped + val.dropped ? fmt::format(", {} left out (nothing to learn within --max-len)", train.dropped + val.dropped) : ""));
  progress.log(fmt::format("strategy {}: {} of {} parameters train{}; lr {:g}, batch {} x {} accumulated{}, up to {} epochs, {} threads", o.strategy, trainable, total,
                           lora ? fmt::format(" (rank {} on {} layers: {})", o.lora_r, adapted.size(), lo.target_modules.dump()) : "",
                           o.effective_lr(), o.batch_size, o.grad_accum, o.packing ? fmt::format(", packed into rows of {} tokens", max_len) : "", o.epochs,
                           runtime_threads()));
  if (lora && o.bf16 && device.is_cpu() && !cpu_has_native_bf16())
    progress.log("warning: this CPU has no AVX512-BF16: bf16 matmuls are emulated, about 50x slower than float32 (bench/lora_step); "
                 "--bf16 halves the base weights' memory only, drop it for speed");

  const size_t n = train.examples.size();
  const size_t global_batch = static_cast<size_t>(o.batch_size) * static_cast<size_t>(world);
  const int64_t micro_per_epoch = static_cast<int64_t>((n + global_batch - 1) / global_batch);
  const int64_t steps_per_epoch = (micro_per_epoch + o.grad_accum - 1) / o.grad_accum;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup = static_cast<int64_t>(std::llround(o.warmup_ratio * static_cast<double>(total_steps)));
  auto write_run = [&](const std::string& status) {
    nlohmann::ordered_json j;
    j["status"] = status;
    j["task"] = "causal-lm";
    j["options"] = o.to_json();
    j["n_train"] = train.examples.size();
    j["n_val"] = val.examples.size();
    j["parameters"] = {{"total", total}, {"trainable", trainable}};
    if (lora) j["lora"] = {{"layers", adapted}, {"target_modules", lo.target_modules}};
    j["best_metric"] = {{"name", "loss"}, {"value", std::isnan(s.best) ? nlohmann::json(nullptr) : nlohmann::json(s.best)}, {"epoch", s.best_epoch}};
    j["stopped_early"] = s.stopped_early;
    j["history"] = s.history;
    if (lead) write_atomic((fs::path(o.out) / "run.json").string(), j.dump(2) + "\n");
  };
  if (!resume) write_run("running");
  for (int64_t epoch = s.epoch; epoch < o.epochs && !s.stopped_early; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::manual_seed(o.seed * 1000003ULL + static_cast<uint64_t>(epoch) + 0x5DEECE66DULL * static_cast<uint64_t>(rank));  // dropout: each worker its own
    std::mt19937_64 rng(o.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(epoch + 1)));
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    model.train();
    progress.start(fmt::format("epoch {}/{}", epoch + 1, o.epochs), micro_per_epoch);
    double loss_sum = 0;
    int64_t targets_seen = 0;
    for (int64_t s0 = 0; s0 < micro_per_epoch; s0 += o.grad_accum) {
      // one optimizer step: its micro-batches, and the learnt tokens of all of them (the loss's divisor)
      // (workers: the step's global micro-batches of workers x B examples, this worker's part of each; the
      // divisor counts the learnt tokens of the whole step, so the workers' summed gradients are one process's)
      std::vector<LmBatch> micro;
      int64_t step_targets = 0;
      for (int64_t mb = s0; mb < std::min(micro_per_epoch, s0 + o.grad_accum); ++mb) {
        const size_t a = static_cast<size_t>(mb) * global_batch;
        const std::vector<size_t> whole(order.begin() + static_cast<std::ptrdiff_t>(a), order.begin() + static_cast<std::ptrdiff_t>(std::min(n, a + global_batch)));
        for (size_t i : whole) step_targets += train.examples[i].targets();
        const std::vector<size_t> idx = pg ? worker_slice(whole, rank, world) : whole;
        if (!idx.empty()) micro.push_back(o.packing ? pack_lm_batch(train.examples, idx, pad, max_len) : make_lm_batch(train.examples, idx, pad));
      }
      for (size_t k = 0; k < micro.size(); ++k) {
        const LmBatch& b = micro[k];
        if (sync && k + 1 == micro.size()) sync->arm();  // the step's last backward sends the gradients
        const auto sum = lm_loss_sum(model.logits(b.ids.to(device), nullptr, b.mask.to(device), b.positions.defined() ? b.positions.to(device) : torch::Tensor()),
                                     b.labels.to(device));
        (sum / static_cast<double>(std::max<int64_t>(1, step_targets))).backward();
        loss_sum += sum.item<double>();
      }
      if (sync) sync->finish();  // also on a worker with no example in this step
      targets_seen += step_targets;
      opt.step(o.effective_lr() * schedule_factor(o.schedule, s.global_step, total_steps, warmup), o.grad_clip);
      ++s.global_step;
      progress.step(std::min(micro_per_epoch, s0 + o.grad_accum), loss_sum / static_cast<double>(std::max<int64_t>(1, targets_seen)), 0);
    }
    progress.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pg) {  // targets_seen already counts every worker's tokens
      std::vector<torch::Tensor> t{torch::tensor({loss_sum}, torch::kDouble)};
      pg->all_reduce_sum(t);
      loss_sum = t[0][0].item<double>();
    }
    const double train_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, targets_seen));
    nlohmann::json h = {{"epoch", epoch + 1}, {"step", s.global_step}, {"train_loss", train_loss}, {"seconds", secs},
                        {"tokens_per_second", static_cast<double>(targets_seen) / std::max(1e-9, secs)}};
    bool improved = epoch + 1 == o.epochs;
    std::string val_text = "no validation";
    if (o.validation) {
      const double vl = validation_loss(model, val.examples, o.batch_size, pad, device, pg);
      h["val_loss"] = vl;
      h["val_perplexity"] = std::exp(vl);
      improved = !s.has_best || vl < s.best;
      val_text = fmt::format("val_loss {:.4f}  val_perplexity {:.2f}", vl, std::exp(vl));
      if (improved) s.best = s.best_loss = vl, s.has_best = true;
    }
    s.history.push_back(h);
    s.bad_epochs = improved ? 0 : s.bad_epochs + 1;
    if (improved) {
      s.best_epoch = epoch + 1;
      if (lead) save_model(model, o, lo, tok);
    }
    s.epoch = epoch + 1;
    progress.log(fmt::format("epoch {}/{}  train_loss {:.4f}  {}  {:.1f}s{}", epoch + 1, o.epochs, train_loss, val_text, secs,
                             improved && o.validation ? "  *best*" : ""));
    if (o.validation && o.patience > 0 && s.bad_epochs >= o.patience && s.epoch < o.epochs) s.stopped_early = true;
    // resumable checkpoint: a new folder, then the state file that names it, then drop the old folder
    const std::string prev = s.checkpoint;
    s.checkpoint = fmt::format("checkpoint-{}", s.epoch);
    if (lead) {
      const std::string ck = (fs::path(o.out) / s.checkpoint).string();
      make_dirs(ck);
      NamedTensors w;
      for (auto& [name, t] : trained) w.emplace_back(name, t.detach().contiguous().cpu());
      save_safetensors(ck + "/trainable.safetensors", w);
      opt.save_file(ck + "/optimizer.pt");
      write_atomic(state_path, s.to_json().dump(2) + "\n");
      if (!prev.empty() && prev != s.checkpoint) fs::remove_all(fs::path(o.out) / prev);
    }
    write_run("running");
    if (s.stopped_early) progress.log(fmt::format("early stopping: no validation loss improvement for {} epochs", o.patience));
    if (hooks.stop_after_epoch > 0 && s.epoch >= hooks.stop_after_epoch && s.epoch < o.epochs && !s.stopped_early) return result_of(s, o.out);
    if (hooks.on_epoch && hooks.on_epoch(s.epoch, o.validation ? h["val_loss"].get<double>() : train_loss) && s.epoch < o.epochs && !s.stopped_early) {
      write_run("pruned");
      TrainResult r = result_of(s, o.out);
      r.pruned = true;
      return r;
    }
  }
  write_run("finished");
  progress.log(fmt::format("{}; {} saved in {}", o.validation ? fmt::format("best val_loss {:.4f} at epoch {}", s.best, s.best_epoch)
                                                             : fmt::format("trained {} epochs", s.epoch),
                           lora ? "adapter (PEFT format)" : "model", o.out));
  return result_of(s, o.out);
}

// run_lm, recording in run.json why it failed if it does; every start cleans the run directory first.
TrainResult run_lm_recorded(const TrainOptions& o, const TrainHooks& hooks, bool resume, const nlohmann::json& state) {
  const bool lead = !hooks.workers || hooks.workers->rank() == 0;
  if (lead && std::filesystem::exists(o.out)) clean_run_dir(o.out);
  return recording_failure(o.out, lead, [&] { return run_lm(o, hooks, resume, state); });
}

void check_options(const TrainOptions& o) {
  o.validate();
  if (o.strategy != "lora" && o.strategy != "full")
    throw Error("options", "strategy", "'" + o.strategy + "' is for classifiers; a causal LM trains with lora or full");
  if (o.metric != "loss" && o.metric != "accuracy")
    throw Error("options", "metric", "a causal LM is validated by its loss per learnt token; '" + o.metric + "' does not apply");
}

}  // namespace

TrainResult train_causal_lm(const TrainOptions& given, const TrainHooks& hooks) {
  given.validate();
  TrainOptions o = given;
  resolve_defaults(o, true, hooks.workers != nullptr);  // auto: full; 0 epochs: 10; balance: none
  check_options(o);
  runtime_init(o.threads);
  if (!hooks.workers || hooks.workers->rank() == 0) {
    if (fs::exists(fs::path(o.out) / "run.json")) throw Error(o.out, "--out", "already holds a run; use --resume to continue it or choose another directory");
    std::error_code ec;
    if (fs::exists(o.out) && fs::equivalent(o.out, o.model, ec)) throw Error(o.out, "--out", "is the --model directory; the run would overwrite the pretrained model");
  }
  return run_lm_recorded(o, hooks, false, nullptr);
}

bool is_causal_lm_run(const std::string& run_dir) {
  const fs::path run = fs::path(run_dir) / "run.json";
  if (!fs::exists(run)) return false;
  try {
    return read_json(run.string()).value("task", "") == "causal-lm";
  } catch (const Error&) {
    return false;
  }
}

TrainResult resume_causal_lm(const std::string& run_dir, const TrainHooks& hooks) {
  const bool lead = !hooks.workers || hooks.workers->rank() == 0;
  const RunFiles files = read_run_files(run_dir, hooks.workers);
  const nlohmann::json& rj = files.run;
  TrainOptions o;
  o.merge_json(rj.at("options"), files.run_path);
  o.out = run_dir;
  check_options(o);
  runtime_init(o.threads);
  if (rj.value("status", "") == "finished") {
    Progress(hooks.quiet || !lead).log("run " + run_dir + " already finished; nothing to resume");
    TrainResult r;
    r.out = run_dir;
    return r;
  }
  if (files.state.is_null()) {  // stopped before its first checkpoint was complete: start it again
    Progress(hooks.quiet || !lead).log(restart_note(run_dir, rj));
    return run_lm_recorded(o, hooks, false, nullptr);
  }
  return run_lm_recorded(o, hooks, true, files.state);
}

}  // namespace kotsu
