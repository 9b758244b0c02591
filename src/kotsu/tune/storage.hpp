// kotsu/tune/storage: where a study's trials live, shared by every worker of the study. SQLite (one file
// per study; processes on one machine coordinate through its locks) or PostgreSQL (workers on many
// machines; claims serialised by a row lock on the study). A worker claims work in one
// exclusive transaction: re-queued trials first, else a new trial whose parameters the sampler picks
// from the history read in that same transaction, so no trial is run twice and the study stops at
// exactly its trial budget. Running trials carry a heartbeat; one whose heartbeat is older than the
// stale limit (a killed worker) is marked failed and its parameters re-queued as a new trial.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kotsu/tune/trial.hpp"

namespace kotsu {

struct StudyConfig {
  std::string name;
  Direction direction = Direction::Maximize;
  nlohmann::json space;    // SearchSpace::to_json()
  nlohmann::json settings; // sampler, pruner, seed, objective: what must match to share a study
};

class Storage {
 public:
  virtual ~Storage() = default;
  // The study's configuration: created from `config` on first use; afterwards `config` must match it
  // (name, direction, space, settings), else an error naming what differs.
  virtual StudyConfig open(const StudyConfig& config) = 0;
  // Claims the next trial for `worker`: a re-queued one, else a new one with sample(history, number)'s
  // parameters while fewer than budget.trials trials (not counting failed ones) exist and, when
  // budget.reports > 0, the trials together (failed ones too: their compute was spent) have stored fewer
  // than budget.reports reports. When the budget is
  // reached but other workers' trials still run, the answer is Wait (one of them may die and be queued
  // again); Done when nothing is left to run (or the sampler has nothing left to try).
  struct Claim {
    enum Status { Claimed, Wait, Done } status = Done;
    Trial trial;
  };
  struct Budget {
    int64_t trials = 0;
    int64_t reports = 0;  // 0: no limit
  };
  virtual Claim claim(const std::string& worker, const Budget& budget, double stale_seconds,
                      const std::function<nlohmann::json(const std::vector<Trial>&, int64_t)>& sample) = 0;
  virtual void heartbeat(int64_t number) = 0;
  virtual void report(int64_t number, int64_t step, double value) = 0;
  virtual void finish(int64_t number, TrialState state, double value, double seconds) = 0;
  virtual std::vector<Trial> trials() = 0;
};

// "postgresql://..." or "postgres://..." (a libpq URL): PostgreSQL, shared by workers on many machines;
// "sqlite:PATH" or any other path: SQLite (":memory:" keeps nothing). `study` names the study (one
// SQLite file holds one study; one PostgreSQL database holds many).
std::unique_ptr<Storage> open_storage(const std::string& url, const std::string& study);
std::unique_ptr<Storage> open_postgres_storage(const std::string& url, const std::string& study);

}  // namespace kotsu
