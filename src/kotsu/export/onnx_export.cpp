#include "kotsu/export/onnx_export.hpp"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/export/onnx_image.hpp"
#include "kotsu/export/onnx_lm.hpp"
#include "kotsu/export/onnx_text.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/lora.hpp"

namespace kotsu {

OnnxExportReport export_onnx(const std::string& model_dir, const std::string& out, bool overwrite) {
  if (out.empty()) throw Error("<options>", "onnx", "an output file is needed");
  if (file_exists(out) && !overwrite) throw Error(out, "", "already exists (--force replaces it)");
  torch::NoGradGuard ng;
  OnnxExportReport r;
  std::unique_ptr<OnnxGraph> g;
  if (is_causal_lm_dir(model_dir)) {
    CausalLmModel m = load_causal_lm_or_adapter(model_dir);
    merge_lora(*m.model);
    m.model->eval();
    r.architecture = m.config.model_type;
    g = std::make_unique<OnnxGraph>(r.architecture, kOnnxOpset);
    build_causal_lm_onnx(*g, m);
    r.inputs = "input_ids, attention_mask [batch, sequence] -> logits [batch, sequence, " + std::to_string(m.config.vocab_size) + "]";
  } else if (is_image_model_dir(model_dir)) {
    ImageModel m = load_image_model(model_dir);
    m.model->eval();
    r.architecture = m.config.model_type;
    g = std::make_unique<OnnxGraph>(r.architecture, kOnnxOpset);
    build_image_classifier_onnx(*g, m);
    g->metadata("kotsu.labels", nlohmann::json(m.config.labels).dump());
    g->metadata("kotsu.preprocess", m.preprocess.to_json().dump());
    r.inputs = "pixel_values [batch, " + std::to_string(m.config.num_channels) + ", height, width] -> logits, probabilities [batch, " +
               std::to_string(m.config.labels.size()) + "]";
  } else {
    TextModel m = load_text_model(model_dir);
    if (m.config.labels.empty()) throw Error(model_dir, "id2label", "the model has no labels: train it first (kotsu train)");
    merge_lora(*m.model);
    m.model->eval();
    r.architecture = m.config.model_type;
    g = std::make_unique<OnnxGraph>(r.architecture, kOnnxOpset);
    build_text_classifier_onnx(*g, m);
    g->metadata("kotsu.labels", nlohmann::json(m.config.labels).dump());
    const bool tt = m.config.model_type != "distilbert" && m.config.type_vocab_size > 0;
    r.inputs = std::string("input_ids, attention_mask") + (tt ? ", token_type_ids" : "") +
               " [batch, sequence] -> logits, probabilities [batch, " + std::to_string(m.config.labels.size()) + "]";
  }
  g->metadata("kotsu.architecture", r.architecture);
  g->save(out);
  r.parameters = g->parameters();
  r.nodes = g->nodes();
  return r;
}

}  // namespace kotsu
