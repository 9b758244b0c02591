#include "kotsu/io/hf_config.hpp"

#include <map>

#include "kotsu/core/error.hpp"
#include "kotsu/io/config_fields.hpp"
#include "kotsu/io/json_file.hpp"

namespace kotsu {


namespace {
// DistilBERT names its fields differently; map them onto the BERT names (to_json maps them back).
const std::pair<const char*, const char*> kDistilKeys[] = {
    {"dim", "hidden_size"}, {"n_layers", "num_hidden_layers"}, {"n_heads", "num_attention_heads"},
    {"hidden_dim", "intermediate_size"}, {"activation", "hidden_act"}, {"dropout", "hidden_dropout_prob"},
    {"attention_dropout", "attention_probs_dropout_prob"}, {"seq_classif_dropout", "classifier_dropout"}};
}  // namespace

std::vector<std::string> read_labels(const nlohmann::json& j, const std::string& path) {
  std::vector<std::string> labels;
  if (!j.contains("id2label") || !j["id2label"].is_object() || j["id2label"].empty()) return labels;
  std::map<int64_t, std::string> m;
  for (auto it = j["id2label"].begin(); it != j["id2label"].end(); ++it) {
    int64_t id;
    try {
      id = std::stoll(it.key());
    } catch (...) {
      throw Error(path, "id2label." + it.key(), "key is not an integer");
    }
    if (!it.value().is_string()) throw Error(path, "id2label." + it.key(), "must be a string");
    m[id] = it.value().get<std::string>();
  }
  int64_t expect = 0;
  for (auto& [id, name] : m) {
    if (id != expect++) throw Error(path, "id2label", "ids must be 0..N-1");
    labels.push_back(name);
  }
  return labels;
}

void write_labels(nlohmann::json& j, const std::vector<std::string>& labels) {
  if (labels.empty()) return;
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = i;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  j["num_labels"] = labels.size();
}

EncoderConfig EncoderConfig::from_json(const nlohmann::json& j_in, const std::string& path) {
  if (!j_in.is_object()) throw Error(path, "", "config is not a JSON object");
  EncoderConfig c;
  c.raw = j_in;
  c.model_type = j_in.value("model_type", "bert");
  nlohmann::json j = j_in;
  if (c.model_type == "distilbert") {
    for (auto& [from, to] : kDistilKeys)
      if (j.contains(from)) j[to] = j[from];
    j["type_vocab_size"] = 0;
    if (!j.contains("layer_norm_eps")) j["layer_norm_eps"] = 1e-12;
    if (j.value("sinusoidal_pos_embds", false)) {
      // the table is stored in the checkpoint like a learned one; it is simply not trained
    }
  }
  if (c.model_type != "bert" && c.model_type != "roberta" && c.model_type != "xlm-roberta" &&
      c.model_type != "camembert" && c.model_type != "distilbert" && c.model_type != "use_lite")
    throw Error(path, "model_type", "'" + c.model_type + "' is not an encoder kotsu supports (bert, roberta, distilbert, use_lite)");
  if (c.model_type != "bert" && c.model_type != "distilbert" && c.model_type != "use_lite") c.model_type = "roberta";
  c.vocab_size = config_int(j, "vocab_size", path, 1, int64_t(1) << 24);
  c.hidden_size = config_int(j, "hidden_size", path, 1, 1 << 16);
  c.num_hidden_layers = config_int(j, "num_hidden_layers", path, 0, 1024);
  c.num_attention_heads = config_int(j, "num_attention_heads", path, 1, 1024);
  c.intermediate_size = config_int(j, "intermediate_size", path, 1, 1 << 20);
  if (c.hidden_size % c.num_attention_heads != 0) throw Error(path, "num_attention_heads", "does not divide hidden_size");
  c.hidden_act = j.value("hidden_act", "gelu");
  if (c.hidden_act != "gelu" && c.hidden_act != "gelu_new" && c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "relu")
    throw Error(path, "hidden_act", "'" + c.hidden_act + "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)");
  c.hidden_dropout_prob = config_number(j, "hidden_dropout_prob", 0.1, path);
  c.attention_probs_dropout_prob = config_number(j, "attention_probs_dropout_prob", 0.1, path);
  c.classifier_dropout = config_number(j, "classifier_dropout", -1, path);
  c.max_position_embeddings = config_int(j, "max_position_embeddings", path, 1, 1 << 20);
  c.type_vocab_size = j.contains("type_vocab_size") ? config_int(j, "type_vocab_size", path, 0, 1024) : 2;
  c.layer_norm_eps = config_number(j, "layer_norm_eps", 1e-12, path);
  c.pad_token_id = j.contains("pad_token_id") && !j["pad_token_id"].is_null() ? config_int(j, "pad_token_id", path, 0, c.vocab_size - 1) : 0;
  c.initializer_range = config_number(j, "initializer_range", 0.02, path);
  if (j.contains("kotsu_pooling")) {
    if (!j["kotsu_pooling"].is_string() || (j["kotsu_pooling"] != "cls" && j["kotsu_pooling"] != "mean"))
      throw Error(path, "kotsu_pooling", "must be \"cls\" or \"mean\"");
    c.pooling = j["kotsu_pooling"].get<std::string>();
  }
  c.labels = read_labels(j, path);
  return c;
}

EncoderConfig EncoderConfig::load(const std::string& path) {
  return from_json(read_json(path, size_t(16) << 20), path);
}

nlohmann::json EncoderConfig::to_json() const {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  if (!j.contains("model_type")) j["model_type"] = model_type;
  nlohmann::json f = {{"vocab_size", vocab_size}, {"hidden_size", hidden_size}, {"num_hidden_layers", num_hidden_layers},
                      {"num_attention_heads", num_attention_heads}, {"intermediate_size", intermediate_size},
                      {"hidden_act", hidden_act}, {"hidden_dropout_prob", hidden_dropout_prob},
                      {"attention_probs_dropout_prob", attention_probs_dropout_prob},
                      {"max_position_embeddings", max_position_embeddings}, {"layer_norm_eps", layer_norm_eps},
                      {"pad_token_id", pad_token_id}, {"initializer_range", initializer_range}};
  if (classifier_dropout >= 0) f["classifier_dropout"] = classifier_dropout;
  if (pooling == "mean") f["kotsu_pooling"] = pooling;
  else j.erase("kotsu_pooling");
  if (model_type == "distilbert") {
    for (auto& [from, to] : kDistilKeys)
      if (f.contains(to)) {
        f[from] = f[to];
        f.erase(to);
      }
    f.erase("layer_norm_eps");
  } else {
    f["type_vocab_size"] = type_vocab_size;
  }
  for (auto it = f.begin(); it != f.end(); ++it) j[it.key()] = it.value();
  if (!labels.empty()) {
    write_labels(j, labels);
    j["architectures"] = {model_type == "bert"         ? "BertForSequenceClassification"
                          : model_type == "distilbert" ? "DistilBertForSequenceClassification"
                          : model_type == "use_lite"   ? "UseLiteForSequenceClassification"
                                                       : "RobertaForSequenceClassification"};
    if (!j.contains("problem_type")) j["problem_type"] = "single_label_classification";
  }
  return j;
}

}  // namespace kotsu
