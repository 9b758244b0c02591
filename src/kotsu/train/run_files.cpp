#include "kotsu/train/run_files.hpp"

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
    if (!file_exists(f.run_path) || !file_exists(f.state_path))
      throw Error(run_dir, "--resume", "no checkpoint to resume (run.json / trainer_state.json missing)");
    run_text = read_json(f.run_path).dump();
    state_text = read_json(f.state_path).dump();
  }
  if (pg) {
    pg->broadcast_bytes(run_text, 0);
    pg->broadcast_bytes(state_text, 0);
  }
  f.run = nlohmann::json::parse(run_text);
  f.state = nlohmann::json::parse(state_text);
  return f;
}

void start_from_rank0(ProcessGroup& pg, std::vector<torch::Tensor> tensors, FusedAdamW& opt) {
  pg.broadcast(tensors, 0);
  std::string bytes = pg.rank() == 0 ? opt.to_bytes() : std::string();
  pg.broadcast_bytes(bytes, 0);
  if (pg.rank() != 0) opt.from_bytes(bytes);
}

}  // namespace kotsu
