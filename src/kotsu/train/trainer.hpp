// kotsu/train/trainer: fine-tunes a text classifier end to end.
// ensures: the run directory is a Hugging Face model directory holding the best checkpoint by the
//          validation metric (config.json with id2label, model.safetensors, tokenizer files) plus run.json
//          (options, labels, metrics history, status); after every epoch a complete resumable checkpoint
//          (weights, optimizer state, trainer state) is written atomically, so `resume` after a kill
//          continues to the same result as an uninterrupted run with the same seed and thread count.
//          Data order and dropout masks derive from (seed, epoch) alone.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "kotsu/train/options.hpp"

namespace kotsu {

class ProcessGroup;

struct TrainResult {
  std::string out;
  double best_metric = 0;
  int64_t best_epoch = 0;
  int64_t epochs_run = 0;
  bool stopped_early = false;
  bool pruned = false;  // stopped by TrainHooks::on_epoch
  nlohmann::json history;
};

struct TrainHooks {
  bool quiet = false;
  int64_t stop_after_epoch = 0;  // tests: return (as if killed) after this epoch; 0 = never
  // After each epoch's validation (once for a head fit) with the validation metric; returning true stops
  // the run there (status "pruned" in run.json; the best checkpoint so far stays). Hyper-parameter search.
  std::function<bool(int64_t epoch, double metric)> on_epoch;
  // Data-parallel training: this process is one worker of the group (dist/process_group). Every worker
  // runs the same call; each trains on its share of every global batch of workers x batch_size examples,
  // gradients are summed over the group during the backward pass, validation is split and gathered, and
  // only rank 0 writes the run directory. nullptr: one process.
  ProcessGroup* workers = nullptr;
};

TrainResult train_classifier(const TrainOptions& opts, const TrainHooks& hooks = {});
// Continues the run in `run_dir` from its last checkpoint with the options stored in its run.json.
TrainResult resume_classifier(const std::string& run_dir, const TrainHooks& hooks = {});

}  // namespace kotsu
