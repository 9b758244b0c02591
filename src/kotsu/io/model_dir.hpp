// kotsu/io/model_dir: writing a whole model directory (config.json, model.safetensors, tokenizer or
// preprocessor files) so that it appears complete or not at all: files go into "<out>.partial", which
// replaces <out> by a rename at the end.
#pragma once
#include <cstdint>
#include <string>

namespace kotsu {

// What an importer wrote.
struct ImportReport {
  std::string architecture;  // "use_lite", "mobilenet_v2", ...
  size_t tensors = 0;
  int64_t parameters = 0;
  std::string extra;         // the tokenizer or preprocessing it wrote, in words
};

// Refuses (kotsu::Error) an empty `out`, or an existing non-empty one unless overwrite; importers call
// it before reading their sources, so a bad --out fails fast.
void check_model_dir_target(const std::string& out, bool overwrite);
// check_model_dir_target, then the empty staging folder to write into.
std::string begin_model_dir(const std::string& out, bool overwrite);
// dir/model.safetensors; refuses (kotsu::Error) a directory without it, naming pickle checkpoints as unsafe.
std::string model_weights_path(const std::string& dir);
// Moves the staging folder into place (replacing `out`).
void finish_model_dir(const std::string& staging, const std::string& out);
// Whether `dir` is a sentence-transformers checkpoint whose modules.json names a Pooling module configured for
// the mean of token embeddings alone (pooling_mode_mean_tokens, no other mode): its sentence embedding.
// Absent or unreadable files say no; a malformed modules.json or pooling config is a kotsu::Error naming it.
bool declares_mean_pooling(const std::string& dir);

}  // namespace kotsu
