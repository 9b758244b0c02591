#include "kotsu/train/feature_cache.hpp"

#include <deque>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

namespace kotsu {

namespace {

namespace fs = std::filesystem;

// Path, size and modification time of a file, or of every regular file directly in a folder.
nlohmann::json identity(const std::string& path) {
  nlohmann::json j = nlohmann::json::array();
  std::error_code ec;
  auto one = [&](const fs::path& p) {
    const auto size = fs::file_size(p, ec);
    const auto when = fs::last_write_time(p, ec).time_since_epoch().count();
    j.push_back({p.string(), ec ? -1 : static_cast<int64_t>(size), static_cast<int64_t>(when)});
  };
  if (path.empty()) return j;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) one(f);
  } else {
    one(path);
  }
  return j;
}

std::string key_of(const TrainOptions& o, bool train) {
  const nlohmann::json all = o.to_json();
  nlohmann::json k = {{"train", train}, {"model_files", identity(o.model)}, {"data_files", identity(o.data)}, {"val_files", identity(o.val_data)}};
  for (const char* f : {"model", "init", "data", "val_data", "val_fraction", "validation", "seed", "rows", "labels", "text_col", "text_pair_col", "label_col",
                        "max_len", "mask_pii", "image_size", "skip_bad", "device"})
    if (all.contains(f)) k[f] = all[f];
  return k.dump();
}

std::mutex mu;
std::deque<std::pair<std::string, torch::Tensor>> entries;

}  // namespace

torch::Tensor cached_features(const TrainOptions& o, bool train, const std::function<torch::Tensor()>& compute, bool* hit) {
  const std::string key = key_of(o, train);
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [k, t] : entries)
      if (k == key) {
        if (hit) *hit = true;
        return t;
      }
  }
  torch::Tensor t = compute();
  std::lock_guard<std::mutex> lock(mu);
  entries.emplace_back(key, t);
  while (entries.size() > 4) entries.pop_front();
  if (hit) *hit = false;
  return t;
}

}  // namespace kotsu
