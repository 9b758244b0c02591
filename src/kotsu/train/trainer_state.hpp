// kotsu/train/trainer_state: where a training run stands after each epoch, written as trainer_state.json
// beside its checkpoint (the file --resume reads), and the TrainResult it amounts to. One struct for the
// classifier trainer and the causal-LM trainer.
#pragma once
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "kotsu/core/error.hpp"
#include "kotsu/train/trainer.hpp"

namespace kotsu {

struct TrainerState {
  int64_t epoch = 0;  // completed epochs
  int64_t global_step = 0;
  double best = 0;       // NaN (null in the file) when the run has no best value
  double best_loss = 0;  // validation loss at the best epoch: breaks ties of the metric
  bool has_best = false;
  int64_t best_epoch = 0;
  int64_t bad_epochs = 0;
  bool stopped_early = false;
  std::string checkpoint;  // folder name inside the run directory
  nlohmann::json history = nlohmann::json::array();
  nlohmann::json decision;     // --target-recall: the best epoch's threshold (eval/decision), else null
  nlohmann::json best_recall;  // the best epoch's validation recall per class (label -> recall), else null

  nlohmann::json to_json() const {
    return {{"epoch", epoch}, {"global_step", global_step}, {"best", best}, {"best_loss", best_loss}, {"has_best", has_best},
            {"best_epoch", best_epoch}, {"bad_epochs", bad_epochs}, {"stopped_early", stopped_early},
            {"checkpoint", checkpoint}, {"history", history}, {"decision", decision}, {"best_recall", best_recall}};
  }
  // Throws kotsu::Error naming `path` when a field is missing or of the wrong type.
  static TrainerState from_json(const nlohmann::json& j, const std::string& path) {
    TrainerState s;
    try {
      s.epoch = j.at("epoch");
      s.global_step = j.at("global_step");
      // null: NaN (a run without validation has no best value)
      auto number = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : std::nan(""); };
      s.best = number("best");
      s.best_loss = number("best_loss");
      // causal-LM states written before the two trainers shared this struct have no has_best
      s.has_best = j.contains("has_best") ? j.at("has_best").get<bool>() : !std::isnan(s.best);
      s.best_epoch = j.at("best_epoch");
      s.bad_epochs = j.at("bad_epochs");
      s.stopped_early = j.at("stopped_early");
      s.checkpoint = j.at("checkpoint");
      s.history = j.at("history");
      if (j.contains("decision")) s.decision = j["decision"];
      if (j.contains("best_recall")) s.best_recall = j["best_recall"];
    } catch (const nlohmann::json::exception& e) {
      throw Error(path, "", std::string("unreadable trainer state: ") + e.what());
    }
    return s;
  }
};

inline TrainResult result_of(const TrainerState& s, const std::string& out) {
  TrainResult r;
  r.out = out;
  r.best_metric = s.best;
  r.best_epoch = s.best_epoch;
  r.epochs_run = s.epoch;
  r.stopped_early = s.stopped_early;
  r.history = s.history;
  return r;
}

}  // namespace kotsu
