// kotsu/tune/space: a hyper-parameter search space: float (uniform, log-uniform, stepped), int (uniform,
// log, stepped) and categorical parameters, each optionally conditional on another parameter's value
// ("unfreeze only when strategy is partial"). Read from the `search:` map of a run file (YAML or JSON):
//
//   search:
//     lr:         {type: float, low: 1e-5, high: 1e-3, log: true}
//     batch_size: {type: categorical, choices: [8, 16, 32]}
//     strategy:   {type: categorical, choices: [head, partial, full]}
//     unfreeze:   {type: int, low: 1, high: 6, when: {strategy: partial}}
//     dropout:    {type: float, low: 0.0, high: 0.3, step: 0.05}
//
// or from command-line specs "lr=log(1e-5,1e-3)", "unfreeze=int(1,6)|strategy=partial",
// "batch_size=cat(8,16,32)". A parent must come before the parameters that depend on it.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

struct Param {
  enum class Kind { Float, Int, Categorical };
  std::string name;
  Kind kind = Kind::Float;
  double low = 0, high = 0, step = 0;  // step 0: continuous (floats) / 1 (ints)
  bool log = false;
  std::vector<nlohmann::json> choices;
  std::string parent;                         // empty: always active
  std::vector<nlohmann::json> parent_values;  // active when the parent took one of these

  // Internal representation used by the samplers: the value itself (log of it when log), the index of a
  // categorical choice. Bounds in that representation: [lo, hi], widened by half a step when stepped.
  double to_internal(const nlohmann::json& value) const;
  nlohmann::json from_internal(double x) const;  // rounded to the step / int, clipped to the bounds
  double internal_low() const;
  double internal_high() const;
  double internal_step() const;  // 0 when continuous
  bool contains(const nlohmann::json& value) const;
};

struct SearchSpace {
  std::vector<Param> params;  // parents before their children

  // `search` map of a run file; source names the file in errors.
  static SearchSpace from_json(const nlohmann::json& search, const std::string& source);
  // Command-line specs (see above).
  static SearchSpace from_specs(const std::vector<std::string>& specs);

  const Param* find(const std::string& name) const;
  // Whether p is active given the values chosen so far (its parent chosen and matching).
  bool active(const Param& p, const nlohmann::json& values) const;
  // A refused value set (a missing active parameter, an inactive one present, a value out of range) is an
  // error naming the parameter; used on values read back from storage.
  void check(const nlohmann::json& values, const std::string& source) const;
  nlohmann::json to_json() const;
};

}  // namespace kotsu
