// kotsu/serve/served_model: one loaded version of a model directory, as the server runs it. A text or
// image classifier (a run written by `kotsu train`, or any labelled model directory) classifies batches;
// the server feeds it from its dynamic batcher, so classify() is only ever called from one thread.
// Versions: a directory that holds config.json is served as version "1"; a directory whose subfolders are
// numbered (TensorFlow Serving's layout: MODEL/1, MODEL/2, ...) serves the highest-numbered subfolder that
// holds a config.json (or a LoRA adapter's adapter_config.json), so copying in a new version folder is a way to deploy it (the server polls).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kotsu/data/instruction_data.hpp"
#include "kotsu/eval/decision.hpp"
#include "kotsu/infer/complete.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/text/pii.hpp"
#include "kotsu/vision/image.hpp"

namespace kotsu {

// One input of a request: a text for text models, a decoded picture for image models.
struct ServeInput {
  std::string text;
  Image image;
};

struct ServeOutput {
  int64_t label = 0;         // index into the model's labels
  std::vector<float> probs;  // per label
};

// A completion request: a prompt, or chat messages rendered with the model's chat template.
struct CompletionRequest {
  std::string prompt;
  std::vector<ChatMessage> messages;  // non-empty: a chat request
  GenerateOptions options;
  std::vector<std::string> stop;
  bool stream = false;
  TextSink on_text;  // streaming: receives the text as it is generated (infer/complete)
};

struct ServedVersion {
  std::string dir;      // the model directory that is loaded
  std::string version;  // "1" for a plain directory, else the subfolder's number
};

// Which directory and version `root` serves now (see above). Throws kotsu::Error naming `root` when it
// holds neither a config.json nor a numbered subfolder with one.
ServedVersion resolve_version(const std::string& root);

class ServedModel {
 public:
  // Loads the version `v`; device "cpu" or "cuda[:N]"; chat_template: a causal LM's chat format for chat
  // requests ("auto": the model's own template; "" or "auto" without one: chat requests are refused).
  // int8: dense layers run in int8 (models/quantize; CPU only), as they do for a directory written by
  // `kotsu export --int8` whatever this says.
  // Throws kotsu::Error for a directory that is not a labelled classifier or a causal LM.
  ServedModel(const ServedVersion& v, const std::string& device, const std::string& chat_template = "auto", bool int8 = false);
  ~ServedModel();

  const std::string& kind() const { return kind_; }  // "text", "image" or "causal-lm"
  const std::string& dir() const { return version_.dir; }
  const std::string& version() const { return version_.version; }
  const std::vector<std::string>& labels() const { return labels_; }
  int64_t max_len() const { return max_len_; }
  bool int8() const { return int8_; }
  int64_t loaded_at() const { return loaded_at_; }  // Unix time of the load (OpenAI's "created")

  // Decodes a picture for this model (at the reduced JPEG scale its preprocessing allows) in at most
  // max_bytes of memory (vision/image: 0 = no bound); any thread.
  Image decode(std::string_view bytes, const std::string& name, size_t max_bytes = 0) const;
  // What decode() will take, from the picture's header (kotsu::Error over max_bytes, or unreadable).
  size_t decode_bytes(std::string_view bytes, const std::string& name, size_t max_bytes) const;
  // One output per input, in order. Called from one thread at a time (the batcher's worker).
  std::vector<ServeOutput> classify(std::vector<ServeInput>& inputs);
  // Makes a request ready to generate: a chat request's messages rendered into the prompt through the
  // chat format (its end of turn added to the stop strings), options checked. kotsu::Error for a chat
  // request without a chat format, an empty prompt or bad options. Any thread.
  void prepare(CompletionRequest& r) const;
  // Requests already prepared (prepare() above) generated together (infer/complete's complete_batch), one
  // Completion each, in order.
  // Called from one thread at a time (the completer's worker).
  std::vector<Completion> complete_batch(std::vector<CompletionRequest>& batch);
  // prepare + complete_batch of one.
  Completion complete(const CompletionRequest& r);

 private:
  ServedVersion version_;
  std::string kind_, device_;
  std::vector<std::string> labels_;
  int64_t max_len_ = 128;
  DecisionRule rule_;  // the run's decision rule (eval/decision): the most probable class unless it set a threshold
  bool int8_ = false;
  int64_t loaded_at_ = 0;
  std::unique_ptr<TextModel> text_;
  std::unique_ptr<ImageModel> image_;
  std::unique_ptr<PiiMasker> masker_;  // the run was trained on masked texts
  std::unique_ptr<CausalLmModel> lm_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatFormat> chat_;
};

}  // namespace kotsu
