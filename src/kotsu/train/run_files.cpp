#include "kotsu/train/run_files.hpp"

#include <c10/util/Exception.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/dist/process_group.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/train/adamw.hpp"

namespace kotsu {

RunFiles read_run_files(const std::string& run_dir, ProcessGroup* pg) {
  namespace fs = std::filesystem;
  RunFiles f;
  f.run_path = (fs::path(run_dir) / "run.json").string();
  f.state_path = (fs::path(run_dir) / "trainer_state.json").string();
  std::string run_text, state_text;
  if (!pg || pg->rank() == 0) {
    if (!file_exists(f.run_path))
      throw Error(run_dir, "--resume", file_exists(f.state_path) ? "run.json is missing: not a run kotsu can resume"
                                                                  : "no run to resume (no run.json: not a run directory written by kotsu train)");
    run_text = read_json(f.run_path).dump();
    state_text = file_exists(f.state_path) ? read_json(f.state_path).dump() : "null";
  }
  if (pg) {
    pg->broadcast_bytes(run_text, 0);
    pg->broadcast_bytes(state_text, 0);
  }
  f.run = nlohmann::json::parse(run_text);
  f.state = nlohmann::json::parse(state_text);
  if (!f.run.is_object() || !f.run.contains("options") || !f.run["options"].is_object())
    throw Error(f.run_path, "options", "missing: not a run kotsu can resume");
  return f;
}

bool mark_run_failed(const std::string& run_dir, const std::string& reason) {
  try {
    const std::string path = (std::filesystem::path(run_dir) / "run.json").string();
    if (!file_exists(path)) return false;
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_file(path, size_t(64) << 20));
    if (!j.is_object()) return false;
    j["status"] = "failed";
    j["error"] = reason;
    write_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string error_summary(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::string m = c10 ? c10->what_without_backtrace() : e.what();
  const size_t nl = m.find('\n');
  if (nl != std::string::npos) m.resize(nl);
  return m;
}

std::string restart_note(const std::string& run_dir, const nlohmann::json& run) {
  const bool failed = run.value("status", "") == "failed";
  return "no complete checkpoint in " + run_dir + " (training stopped before the first one was written" +
         (failed ? ": " + run.value("error", std::string("?")) : std::string()) + "); starting it again from the beginning with the same options";
}

size_t clean_run_dir(const std::string& run_dir) { return remove_stale_temp_files(run_dir); }

void start_from_rank0(ProcessGroup& pg, std::vector<torch::Tensor> tensors, FusedAdamW& opt) {
  pg.broadcast(tensors, 0);
  std::string bytes = pg.rank() == 0 ? opt.to_bytes() : std::string();
  pg.broadcast_bytes(bytes, 0);
  if (pg.rank() != 0) opt.from_bytes(bytes);
}

}  // namespace kotsu
