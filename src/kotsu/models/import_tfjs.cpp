#include "kotsu/models/import_tfjs.hpp"

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/io/tfjs.hpp"
#include "kotsu/models/darknet.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/use_lite.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

namespace fs = std::filesystem;

std::vector<std::string> read_label_lines(const std::string& path) {
  std::vector<std::string> labels;
  const std::string text = read_file(path, size_t(64) << 20);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
    pos = nl + 1;
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

namespace {
ImportReport import_darknet(const TfjsModel& m, const std::string& out, bool overwrite, const std::string& labels_file) {
  std::vector<std::string> labels = labels_file.empty() ? std::vector<std::string>() : read_label_lines(labels_file);
  DarknetImport imp;
  try {
    imp = darknet_from_tfjs(m, labels);
  } catch (const Error& e) {
    // 1001 TF-slim labels for a 1000-class model: drop "background"
    if (labels.empty() || labels.front() != "background") throw;
    labels.erase(labels.begin());
    imp = darknet_from_tfjs(m, labels);
  }
  return write_imported_image_model(out, overwrite, imp.config, imp.preprocess, imp.tensors, "tfjs",
                                    std::to_string(imp.config.conv_layers.size()) + " conv layers, " +
                                        std::to_string(imp.config.labels.size()) + " classes");
}
}  // namespace

static ImportReport import_tfjs_model(const fs::path& model_json, const std::string& out, bool overwrite, const std::string& labels_file) {
  TfjsModel m = read_tfjs(model_json.string());
  if (is_keras_conv_stack(m)) return import_darknet(m, out, overwrite, labels_file);
  if (!labels_file.empty()) throw Error("import", "--labels", "applies to image classifiers only");
  if (!is_use_lite(m))
    throw Error(model_json.string(), "weightsManifest", "not a TF.js model kotsu can import (recognised: Universal Sentence Encoder Lite, Darknet-style conv stacks)");
  UseLiteImport imp = use_lite_from_tfjs(m);
  // its tokenizer: vocab.json ([piece, score] pairs) beside model.json
  const fs::path vocab = model_json.parent_path() / "vocab.json";
  if (!fs::exists(vocab)) throw Error(vocab.string(), "", "USE-Lite's vocab.json not found beside model.json");
  Tokenizer tok = Tokenizer::load(vocab.string());
  const int64_t V = imp.config["vocab_size"].get<int64_t>();
  if (static_cast<int64_t>(tok.vocab_size()) > V)
    throw Error(vocab.string(), "", "has " + std::to_string(tok.vocab_size()) + " pieces but the embedding table only " + std::to_string(V) + " rows");

  // write beside the destination, then swap it in
  const fs::path tmp = begin_model_dir(out, overwrite);
  ImportReport r;
  r.architecture = imp.config["model_type"].get<std::string>();
  r.tensors = imp.tensors.size();
  for (auto& [n, t] : imp.tensors) r.parameters += t.numel();
  r.extra = "tokenizer " + vocab.string();
  save_safetensors((tmp / "model.safetensors").string(), imp.tensors, {{"format", "pt"}, {"source", "tfjs"}});
  write_atomic((tmp / "config.json").string(), imp.config.dump(2) + "\n");
  tok.save(tmp.string());
  if (!fs::exists(tmp / "vocab.json")) throw Error(tmp.string(), "vocab.json", "tokenizer was not written");
  finish_model_dir(tmp.string(), out);
  return r;
}

ImportReport import_tfjs(const std::string& src, const std::string& out, bool overwrite, const std::string& labels_file) {
  if (!fs::exists(src)) throw Error(src, "", "no such file or directory");
  fs::path model_json = fs::is_directory(src) ? fs::path(src) / "model.json" : fs::path(src);
  if (!fs::exists(model_json)) throw Error(model_json.string(), "", "missing: not a TF.js model folder");
  check_model_dir_target(out, overwrite);
  try {
    return import_tfjs_model(model_json, out, overwrite, labels_file);
  } catch (const nlohmann::json::exception& e) {  // a topology field of an unexpected type: name the file
    throw Error(model_json.string(), "modelTopology", std::string("malformed: ") + e.what());
  }
}

}  // namespace kotsu
