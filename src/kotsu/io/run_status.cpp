#include "kotsu/io/run_status.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/io/json_file.hpp"

namespace kotsu {

RunStatus read_run_status(const std::string& dir) {
  namespace fs = std::filesystem;
  RunStatus s;
  const fs::path p = fs::path(dir) / "run.json";
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return s;
  s.is_run = true;
  try {
    const nlohmann::json j = read_json(p.string(), size_t(64) << 20);
    auto text = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
    s.status = text("status");
    s.error = text("error");
    if (j.contains("history") && j["history"].is_array()) s.epochs_done = static_cast<int64_t>(j["history"].size());
    if (j.contains("options") && j["options"].is_object() && j["options"].contains("epochs") && j["options"]["epochs"].is_number_integer())
      s.epochs = j["options"]["epochs"].get<int64_t>();
    if (s.status.empty()) s.status = "unreadable";
  } catch (const std::exception&) {
    s.status = "unreadable";
  }
  return s;
}

std::string unfinished_run_warning(const std::string& dir) {
  const RunStatus s = read_run_status(dir);
  if (!s.is_run || s.status == "finished") return "";
  std::string why = s.status == "failed"    ? "it failed: " + s.error
                    : s.status == "running" ? "status 'running': training was interrupted or is still going"
                    : s.status == "pruned"  ? "the search stopped it early (pruned)"
                                            : "its run.json is unreadable";
  if (why.size() > 300) why = why.substr(0, 300) + "...";
  std::string what = s.epochs_done == 0
                         ? "no epoch finished, so its model may be the untrained start"
                         : "its model is the best of the " + std::to_string(s.epochs_done) + " epoch" + (s.epochs_done == 1 ? "" : "s") +
                               " it finished" + (s.epochs > 0 ? " (of " + std::to_string(s.epochs) + ")" : "");
  return "warning: " + dir + " is a run that did not finish (" + why + "); " + what;
}

}  // namespace kotsu
