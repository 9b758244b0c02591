// kotsu train [RUN.yaml] [flags]: fine-tunes a classifier, or instruction-tunes a causal LM (train/lm_trainer); flags override the run file; --resume DIR continues.
#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/dist/launch.hpp"
#include "kotsu/dist/process_group.hpp"
#include "kotsu/io/run_file.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/train/cross_validate.hpp"
#include "kotsu/train/lm_trainer.hpp"
#include "kotsu/train/trainer.hpp"
#include <fmt/format.h>

namespace kotsu::cli {

namespace {

struct TrainFlags {
  std::string run_file, resume;
  TrainOptions o;
  bool quiet = false;
  LaunchPlan dist;  // data-parallel workers (not stored in the run: a resume may use another number)
};

// Registers every TrainOptions flag on `c` (train and cv share them).
void add_train_options(CLI::App* c, TrainFlags* f) {
  TrainOptions& o = f->o;
  c->add_option("--model", o.model, "Hugging Face model directory (config.json, model.safetensors, vocab.txt)");
  c->add_option("--data", o.data, "training data: texts in .csv, .tsv or .jsonl; pictures as a class-folder tree, a CSV of path,label or an IDX file");
  c->add_option("--val-data", o.val_data, "validation data (default: a stratified split of --data)");
  c->add_option("--out", o.out, "run directory to write");
  c->add_option("--text-col", o.columns.text, "text column")->capture_default_str();
  c->add_option("--label-col", o.columns.label, "label column")->capture_default_str();
  c->add_option("--text-pair-col", o.columns.text_pair, "second text column, for sentence pairs");
  c->add_option("--strategy", o.strategy, "auto (text: up to 600 examples contrastive, or head under 8 per class; more: full; pictures and LMs: full; the log and run.json say why) | full | partial | head (L-BFGS on cached features, L2 by cross-validation) | lora | contrastive (text: SetFit's recipe, the sentence embedding tuned on pairs, then the head)")->capture_default_str();
  c->add_option("--pooling", o.pooling, "text encoders' features: cls (Hugging Face's classifier layout) | mean (sentence-transformers' normalised mean) | auto (mean for contrastive)")->capture_default_str();
  c->add_option("--lora-r", o.lora_r, "lora: adapter rank")->capture_default_str();
  c->add_option("--lora-alpha", o.lora_alpha, "lora: scaling numerator (the update is scaled by alpha / r)")->capture_default_str();
  c->add_option("--lora-dropout", o.lora_dropout, "lora: dropout on the adapters' input")->capture_default_str();
  c->add_option("--lora-targets", o.lora_targets, "lora: layers to adapt: names (q_proj,v_proj), a regular expression, or all-linear (default: the architecture's usual)");
  c->add_flag("--packing", o.packing, "causal LMs: pack examples into rows of --max-len tokens (block-diagonal attention): less padding, the same loss");
  c->add_option("--chat-template", o.chat_template, "causal LMs: chat format for messages data (chatml, llama-3, auto: the model's own Jinja chat template, or a .jinja file); prompt/completion rows without it train on prompt + completion + EOS");
  c->add_option("--unfreeze", o.unfreeze, "partial: number of top layers to train")->capture_default_str();
  c->add_option("--head-first", o.head_first,
                 "full/partial with a new head: fit the head alone on cached features first (true/false)")
      ->capture_default_str();
  c->add_option("--init", o.init, "pretrained | random (from scratch, for comparison)")->capture_default_str();
  c->add_option("--lr", o.lr, "peak learning rate (default 2e-5 full, 5e-5 partial; head: not used, L-BFGS)");
  c->add_option("--weight-decay", o.weight_decay, "decoupled weight decay (not on biases or LayerNorm)")->capture_default_str();
  c->add_option("--warmup-ratio", o.warmup_ratio, "share of steps with linear warm-up")->capture_default_str();
  c->add_option("--schedule", o.schedule, "linear | cosine | constant")->capture_default_str();
  c->add_option("--batch-size", o.batch_size, "examples per step")->capture_default_str();
  c->add_option("--epochs", o.epochs, "maximum epochs (0: contrastive 5 to 20, enough for 64 optimizer steps; else 10)")->capture_default_str();
  c->add_option("--grad-accum", o.grad_accum, "micro-batches per optimizer step")->capture_default_str();
  c->add_option("--grad-clip", o.grad_clip, "gradient norm clip (0 = off)")->capture_default_str();
  c->add_option("--patience", o.patience, "early stopping patience in epochs (0 = off)")->capture_default_str();
  c->add_option("--metric", o.metric, "validation metric: accuracy, macro_f1, weighted_f1, loss")->capture_default_str();
  c->add_option("--val-fraction", o.val_fraction, "held-out share when no --val-data (0: 0.1 for full/partial/lora; head and contrastive hold nothing out, their validation is out of fold)")->capture_default_str();
  c->add_option("--validation", o.validation,
                "false: no validation; --data (and --val-data) all train for exactly --epochs, the last model is kept")
      ->capture_default_str();
  c->add_option("--label-smoothing", o.label_smoothing, "label smoothing for the loss")->capture_default_str();
  c->add_option("--max-len", o.max_len, "maximum tokens per example")->capture_default_str();
  c->add_option("--seed", o.seed, "seed for split, order, dropout and new weights")->capture_default_str();
  c->add_option("--threads", o.threads, "CPU threads (0 = all cores)")->capture_default_str();
  c->add_option("--device", o.device, "cpu or cuda[:N]")->capture_default_str();
  c->add_flag("--bf16", o.bf16, "bf16 autocast for the forward pass (float32 master weights); fast only on CPUs with AVX512-BF16 and on GPUs");
  c->add_option("--group-by-length", o.group_by_length, "batch rows of similar length together (less padding)")->capture_default_str();
  c->add_option("--lr-decay", o.lr_decay, "discriminative learning rates: each lower layer trains at this factor of the one above (1 = off)")->capture_default_str();
  c->add_option("--balance", o.balance, "imbalanced classes: auto (class-weights for text classes at 4:1 or more, else none) | none | oversample | undersample (each epoch) | class-weights (weighted loss)")->capture_default_str();
  c->add_option("--l1", o.l1, "L1 penalty on weight matrices and kernels (added to the loss)")->capture_default_str();
  c->add_option("--class-weights", o.class_weights, "none | balanced (weight the loss by inverse class frequency)")->capture_default_str();
  c->add_option("--target-recall", o.target_recall,
                "CLASS=R: predict CLASS whenever its probability reaches the threshold at which its validation recall reaches R "
                "(stored in the run; eval, predict and serve use it)");
  c->add_option("--augment", o.augment, "pictures: random resized crop, flips and colour jitter while training")->capture_default_str();
  c->add_option("--image-size", o.image_size, "pictures: square input size to train and evaluate at (0 = the model's; smaller is faster)")->capture_default_str();
  c->add_flag("--mask-pii", o.mask_pii, "texts: replace personal data by typed placeholders (<EMAIL>, <PHONE>, ...) before training; eval and predict of the run do the same");
  c->add_flag("--train-bn-stats", o.train_bn_stats, "pictures, full strategy: batch norm trains on batch statistics (default: frozen)");
  c->add_flag("--skip-bad", o.skip_bad, "pictures: leave out unreadable files (counted in the log) instead of stopping");
  c->add_option("run_file", f->run_file, "YAML run file with the same option names (flags override it)");
  c->add_flag("--quiet", f->quiet, "no progress or log lines");
}

// The run file's options, overridden by the flags given on the command line.
TrainOptions merged_options(const TrainFlags& f, const CLI::App* c) {
  TrainOptions merged;
  if (!f.run_file.empty()) {
    merged.merge_json(read_run_file(f.run_file), f.run_file);
  }
  nlohmann::json given = nlohmann::json::object();
  nlohmann::json all = f.o.to_json();
  for (const auto* opt : c->get_options()) {
    if (opt->count() == 0 || opt->get_lnames().empty()) continue;
    std::string key = opt->get_lnames()[0];
    for (auto& ch : key)
      if (ch == '-') ch = '_';
    if (all.contains(key)) given[key] = all[key];
  }
  merged.merge_json(given, "command line");
  return merged;
}

}  // namespace

Action add_train(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto* c = app.add_subcommand("train", "fine-tune a pre-trained model on labelled texts or pictures");
  c->add_option("--resume", f->resume, "continue the killed or stopped run in this directory");
  c->add_option("--nproc", f->dist.nproc, "data-parallel workers on this machine (each takes --batch-size examples per step; threads are shared out)")->capture_default_str();
  c->add_option("--nnodes", f->dist.nnodes, "machines taking part (start the same command on each, with its --node-rank)")->capture_default_str();
  c->add_option("--node-rank", f->dist.node_rank, "this machine's place in [0, --nnodes)")->capture_default_str();
  c->add_option("--master", f->dist.master, "ADDR:PORT where node 0's rank 0 meets the others (default: this machine, a free port)");
  c->add_option("--dist-timeout", f->dist.timeout_seconds, "seconds to wait for a worker that does not answer before stopping")->capture_default_str();
  c->add_option("--bucket-mb", f->dist.bucket_mb, "data-parallel: gradients are summed in buckets of this size, each sent as soon as backward fills it")->capture_default_str();
  add_train_options(c, f.get());
  return [f, c]() {
    TrainHooks hooks;
    hooks.quiet = f->quiet;
    std::unique_ptr<ProcessGroup> workers;
    if (is_dist_worker() || f->dist.nproc > 1 || f->dist.nnodes > 1) {
      check_plan(f->dist);
      // what workers cannot do is refused before any starts
      if (f->resume.empty()) {
        const TrainOptions o = merged_options(*f, c);
        o.validate();
        if (o.strategy == "head")
          throw Error("options", "--nproc", "strategy head fits the head once on cached features in one process; run it without data-parallel workers");
      }
      // the launcher: start this machine's workers (this command again) and watch them
      if (!is_dist_worker()) return launch_workers(f->dist);
      workers = std::make_unique<ProcessGroup>(dist_config_from_env());
      hooks.workers = workers.get();
    }
    if (!f->resume.empty()) {
      if (is_causal_lm_run(f->resume)) resume_causal_lm(f->resume, hooks);
      else resume_classifier(f->resume, hooks);
      return 0;
    }
    const TrainOptions o = merged_options(*f, c);
    if (is_causal_lm_dir(o.model)) train_causal_lm(o, hooks);
    else train_classifier(o, hooks);
    return 0;
  };
}

Action add_cv(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto cvo = std::make_shared<CvOptions>();
  auto* c = app.add_subcommand("cv", "K-fold cross-validation: a full fine-tune per fold, mean and std of every metric, out-of-fold predictions");
  c->add_option("--folds", cvo->folds, "number of folds")->capture_default_str();
  c->add_option("--group-col", cvo->group_col, "column of groups kept whole within one fold (grouped K-fold; default: stratified)");
  add_train_options(c, f.get());
  return [f, c, cvo]() {
    TrainHooks hooks;
    hooks.quiet = f->quiet;
    nlohmann::json r = cross_validate(merged_options(*f, c), *cvo, hooks);
    std::string s = fmt::format("{}-fold cross-validation of {} ({} rows){}\n\n", r["folds"].get<int64_t>(), r["data"].get<std::string>(),
                                r["rows"].get<size_t>(), r["grouped_by"].get<std::string>().empty() ? "" : ", grouped by " + r["grouped_by"].get<std::string>());
    s += fmt::format("{:<18} {:>8}  {:>8}\n", "metric", "mean", "std");
    for (auto& [name, v] : r["mean"].items()) s += fmt::format("{:<18} {:8.4f}  {:8.4f}\n", name, v.get<double>(), r["std"][name].get<double>());
    s += fmt::format("\nper fold, out-of-fold predictions and pooled metrics in {}/cv.json and {}/oof.jsonl\n", f->o.out, f->o.out);
    fmt::print("{}", s);
    return 0;
  };
}

}  // namespace kotsu::cli
