#include "kotsu/io/model_dir.hpp"

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"

namespace kotsu {

namespace fs = std::filesystem;

void check_model_dir_target(const std::string& out, bool overwrite) {
  if (out.empty()) throw Error("import", "--out", "an output directory is required");
  if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out)) && !overwrite)
    throw Error(out, "", "already exists and is not empty (pass --force to replace it)");
}

std::string begin_model_dir(const std::string& out, bool overwrite) {
  check_model_dir_target(out, overwrite);
  fs::path tmp(out);
  tmp += ".partial";
  fs::remove_all(tmp);
  make_dirs(tmp.string());
  return tmp.string();
}

std::string model_weights_path(const std::string& dir) {
  const std::string st = (fs::path(dir) / "model.safetensors").string();
  if (file_exists(st)) return st;
  if (file_exists((fs::path(dir) / "pytorch_model.bin").string()))
    throw Error(dir, "pytorch_model.bin", "pickle checkpoints are not read (unsafe); convert to model.safetensors first");
  throw Error(dir, "model.safetensors", "missing");
}

void finish_model_dir(const std::string& staging, const std::string& out) {
  fs::path dst(out);
  if (fs::exists(dst)) fs::remove_all(dst);
  if (!dst.parent_path().empty()) make_dirs(dst.parent_path().string());
  fs::rename(staging, dst);
}

bool declares_mean_pooling(const std::string& dir) {
  const std::string modules = (fs::path(dir) / "modules.json").string();
  if (!fs::exists(modules)) return false;
  const nlohmann::json m = read_json(modules, size_t(1) << 20);
  if (!m.is_array()) throw Error(modules, "", "must be a list of sentence-transformers modules");
  for (const auto& e : m) {
    if (!e.is_object() || !e.contains("type") || !e["type"].is_string()) throw Error(modules, "type", "each module needs a type string");
    const std::string type = e["type"];
    if (type.size() < 7 || type.compare(type.size() - 7, 7, "Pooling") != 0) continue;
    const std::string path = (fs::path(dir) / e.value("path", "") / "config.json").string();
    if (!fs::exists(path)) return false;
    const nlohmann::json c = read_json(path, size_t(1) << 20);
    if (!c.is_object()) throw Error(path, "", "must be a JSON object");
    auto on = [&](const char* key) {
      if (!c.contains(key)) return false;
      if (!c[key].is_boolean()) throw Error(path, key, "must be true or false");
      return c[key].get<bool>();
    };
    return on("pooling_mode_mean_tokens") && !on("pooling_mode_cls_token") && !on("pooling_mode_max_tokens") &&
           !on("pooling_mode_mean_sqrt_len_tokens") && !on("pooling_mode_weightedmean_tokens") && !on("pooling_mode_lasttoken");
  }
  return false;
}

}  // namespace kotsu
