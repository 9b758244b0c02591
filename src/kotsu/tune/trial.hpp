// kotsu/tune/trial: one trial of a study as stored and as the samplers and pruners see it.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace kotsu {

enum class TrialState { Waiting, Running, Complete, Pruned, Failed };
const char* trial_state_name(TrialState s);           // "waiting", "running", "complete", "pruned", "failed"
TrialState parse_trial_state(const std::string& name);  // the reverse; an unknown name is an error

struct Trial {
  int64_t number = -1;  // 0, 1, 2, ... in the order trials were created
  TrialState state = TrialState::Running;
  nlohmann::json params = nlohmann::json::object();
  double value = std::numeric_limits<double>::quiet_NaN();  // the objective when complete
  std::map<int64_t, double> intermediate;                   // step -> reported value (e.g. per epoch)
  std::string worker;                                       // who runs / ran it
  double seconds = 0;                                       // wall time when finished
};

// Which way is better.
enum class Direction { Minimize, Maximize };

}  // namespace kotsu
