// kotsu/io/hf_config: Hugging Face config.json for BERT-family encoders (bert, roberta, distilbert keys) and
// kotsu's own use_lite (written by `kotsu import tfjs`; its extra embedding_size stays in raw).
// ensures: unknown keys are kept (raw) and written back unchanged by to_json; labels round-trip through
//          id2label/label2id; every required field that is missing or of the wrong type is named.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kotsu {

// id2label of a config.json as labels in id order (empty when absent); refuses ids that are not 0..N-1.
std::vector<std::string> read_labels(const nlohmann::json& j, const std::string& path);
// Writes id2label, label2id and num_labels (nothing for no labels).
void write_labels(nlohmann::json& j, const std::vector<std::string>& labels);

struct EncoderConfig {
  std::string model_type = "bert";  // bert | roberta | distilbert | use_lite
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double classifier_dropout = -1;  // < 0: use hidden_dropout_prob
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  double initializer_range = 0.02;
  // how a sentence's features are pooled from the last hidden states: "cls" (the architecture's own: BERT's
  // tanh pooler on [CLS], RoBERTa's and DistilBERT's first token, as Hugging Face's *ForSequenceClassification)
  // or "mean" (the mean over real tokens, L2-normalised: a sentence-transformers embedding such as
  // all-MiniLM-L6-v2's, what --strategy contrastive trains). Stored as "kotsu_pooling" when "mean".
  std::string pooling = "cls";
  std::vector<std::string> labels;  // id2label in id order; empty for a base checkpoint
  nlohmann::json raw;               // the whole file as read

  static EncoderConfig from_json(const nlohmann::json& j, const std::string& path);
  static EncoderConfig load(const std::string& path);
  nlohmann::json to_json() const;  // raw, updated with the fields above and the labels
  double head_dropout() const { return classifier_dropout >= 0 ? classifier_dropout : hidden_dropout_prob; }
};

}  // namespace kotsu
