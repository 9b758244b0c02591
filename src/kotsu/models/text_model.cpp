#include "kotsu/models/text_model.hpp"

#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/model_dir.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/bert.hpp"
#include "kotsu/models/distilbert.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/use_lite.hpp"

namespace kotsu {

TextModel load_text_model(const std::string& dir, const std::vector<std::string>& labels, uint64_t seed, InitMode init,
                          const std::string& pooling) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw Error(dir, "", "model directory not found");
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!file_exists(cfg_path)) throw Error(dir, "config.json", "missing: not a Hugging Face model directory");
  TextModel m;
  m.config = EncoderConfig::load(cfg_path);
  if (!pooling.empty()) {
    if (pooling != "cls" && pooling != "mean") throw Error("options", "pooling", "must be cls or mean");
    if (m.config.model_type == "use_lite" && pooling == "mean")
      throw Error(cfg_path, "model_type", "USE-Lite pools its own sentence embedding; --pooling mean applies to BERT-family encoders");
    m.config.pooling = pooling;
  } else if (!m.config.raw.contains("kotsu_pooling") && m.config.model_type != "use_lite" && declares_mean_pooling(dir)) {
    m.config.pooling = "mean";  // a sentence-transformers checkpoint: its own sentence embedding
  }
  // a head trained for other classes must not be reused for these: HF's generic LABEL_i names included
  const bool fresh_head = !labels.empty() && labels != m.config.labels;
  if (!labels.empty()) m.config.labels = labels;
  if (m.config.labels.empty())
    throw Error(cfg_path, "id2label", "the model has no labels: train it first (kotsu train) or pass the data's labels");
  if (m.config.labels.size() < 2) throw Error(cfg_path, "id2label", "a classifier needs at least two labels");
  m.tokenizer = std::make_shared<Tokenizer>(Tokenizer::load(dir));
  if (static_cast<int64_t>(m.tokenizer->vocab_size()) > m.config.vocab_size)
    throw Error(dir, "vocab", "tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                                  " tokens but config.json vocab_size is " + std::to_string(m.config.vocab_size));
  const auto n_labels = static_cast<int64_t>(m.config.labels.size());
  std::shared_ptr<TextClassifier> model;
  if (m.config.model_type == "distilbert") model = std::make_shared<DistilBertClassifier>(m.config, n_labels);
  else if (m.config.model_type == "use_lite") model = std::make_shared<UseLiteClassifier>(m.config, n_labels);
  else model = std::make_shared<BertClassifier>(m.config, n_labels);
  m.model = model;
  if (init == InitMode::Random) {
    model->init_all(seed);
    m.load_report.head_initialised = true;
    return m;
  }
  const std::string st = model_weights_path(dir);
  m.load_report = load_weights(*model, load_safetensors(st), st, seed, fresh_head);
  return m;
}

void save_text_model(const TextModel& m, const std::string& dir) {
  namespace fs = std::filesystem;
  make_dirs(dir);
  NamedTensors tensors;
  for (auto& [name, t] : merged_state(*m.model, m.model->state())) tensors.emplace_back(name, t.to(torch::kFloat32));
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_atomic((fs::path(dir) / "config.json").string(), m.config.to_json().dump(2) + "\n");
  m.tokenizer->save(dir);
}

}  // namespace kotsu
