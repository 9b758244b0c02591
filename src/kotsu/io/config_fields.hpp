// kotsu/io/config_fields: typed reads of config.json fields with range checks, shared by the config
// readers (hf_config, lm_config); a wrong field is a kotsu::Error naming the file and the key.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "kotsu/core/error.hpp"

namespace kotsu {

// A required integer in [lo, hi].
inline int64_t config_int(const nlohmann::json& j, const char* key, const std::string& path, int64_t lo, int64_t hi) {
  auto it = j.find(key);
  if (it == j.end()) throw Error(path, key, "missing");
  if (!it->is_number_integer()) throw Error(path, key, "must be an integer");
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) throw Error(path, key, "value " + std::to_string(v) + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

// An optional number; `def` when absent or null.
inline double config_number(const nlohmann::json& j, const char* key, double def, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) throw Error(path, key, "must be a number");
  return it->get<double>();
}

// An optional string; `def` when absent. `field` names it in the error (a number or null is refused).
inline std::string json_string(const nlohmann::json& j, const char* key, const std::string& def, const std::string& path,
                               const std::string& field) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (!it->is_string()) throw Error(path, field, std::string("must be a string, not ") + it->type_name());
  return it->get<std::string>();
}

}  // namespace kotsu
