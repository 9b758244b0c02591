#include "kotsu/io/model_dir.hpp"

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

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

}  // namespace kotsu
