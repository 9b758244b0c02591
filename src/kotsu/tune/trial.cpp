#include "kotsu/tune/trial.hpp"

#include "kotsu/core/error.hpp"

namespace kotsu {

const char* trial_state_name(TrialState s) {
  switch (s) {
    case TrialState::Waiting: return "waiting";
    case TrialState::Running: return "running";
    case TrialState::Complete: return "complete";
    case TrialState::Pruned: return "pruned";
    case TrialState::Failed: return "failed";
  }
  return "?";
}

TrialState parse_trial_state(const std::string& name) {
  for (TrialState s : {TrialState::Waiting, TrialState::Running, TrialState::Complete, TrialState::Pruned, TrialState::Failed})
    if (name == trial_state_name(s)) return s;
  throw Error("", "state", "unknown trial state '" + name + "'");
}

}  // namespace kotsu
