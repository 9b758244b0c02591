#include "kotsu/serve/served_model.hpp"

#include <ctime>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/models/quantize.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {
bool is_number(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

ServedVersion resolve_version(const std::string& root) {
  std::error_code ec;
  auto is_model = [&](const fs::path& d) {
    return fs::is_regular_file(d / "config.json", ec) || fs::is_regular_file(d / "adapter_config.json", ec);
  };
  if (is_model(root)) return {root, "1"};
  if (!fs::is_directory(root, ec)) throw Error(root, "", "no such model directory");
  long long best = -1;
  std::string best_dir;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory(ec) || !is_number(name) || !is_model(e.path())) continue;
    const long long v = std::stoll(name);
    if (v > best) best = v, best_dir = e.path().string();
  }
  if (best < 0) throw Error(root, "config.json", "not a model directory, and no numbered version folder (1/, 2/, ...) holds one");
  return {best_dir, std::to_string(best)};
}

ServedModel::ServedModel(const ServedVersion& v, const std::string& device, const std::string& chat_template, bool int8)
    : version_(v), device_(device), loaded_at_(static_cast<int64_t>(std::time(nullptr))) {
  auto quantize = [&](torch::nn::Module& m) { int8_ = int8_for_inference(m, v.dir, torch::Device(device), int8); };
  if (is_causal_lm_dir(v.dir)) {
    kind_ = "causal-lm";
    lm_ = std::make_unique<CausalLmModel>(load_causal_lm_or_adapter(v.dir));
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(v.dir));
    lm_->model->to(torch::Device(device));
    lm_->model->eval();
    quantize(*lm_->model);
    if (!chat_template.empty()) {
      try {
        chat_ = std::make_unique<ChatFormat>(chat_template, v.dir, *tokenizer_);
      } catch (const Error&) {
        if (chat_template != "auto") throw;  // named explicitly: it must load; "auto" may find no template
      }
    }
    return;
  }
  if (is_image_model_dir(v.dir)) {
    kind_ = "image";
    image_ = std::make_unique<ImageModel>(load_image_model(v.dir));
    labels_ = image_->config.labels;
    image_->model->to(torch::Device(device));
    image_->model->eval();
    quantize(*image_->model);
  } else {
    kind_ = "text";
    text_ = std::make_unique<TextModel>(load_text_model(v.dir));
    labels_ = text_->config.labels;
    max_len_ = run_max_len(v.dir);
    if (run_masks_pii(v.dir)) masker_ = std::make_unique<PiiMasker>();
    text_->model->to(torch::Device(device));
    text_->model->eval();
    quantize(*text_->model);
  }
  if (labels_.empty()) throw Error(v.dir, "id2label", "the model has no labels: train it first (kotsu train)");
  rule_ = run_decision_rule(v.dir, labels_);  // --target-recall: the run's threshold for its class
}

ServedModel::~ServedModel() = default;

size_t ServedModel::decode_bytes(std::string_view bytes, const std::string& name, size_t max_bytes) const {
  return image_decode_bytes(bytes, name, image_ ? static_cast<int>(image_->preprocess.decode_side()) : 0, max_bytes);
}

Image ServedModel::decode(std::string_view bytes, const std::string& name, size_t max_bytes) const {
  return decode_image_bytes(bytes, name, image_ ? static_cast<int>(image_->preprocess.decode_side()) : 0, max_bytes);
}

std::vector<ServeOutput> ServedModel::classify(std::vector<ServeInput>& inputs) {
  if (lm_) throw Error(version_.dir, "", "a causal language model does not classify");
  std::vector<ServeOutput> out(inputs.size());
  if (inputs.empty()) return out;
  const auto n = static_cast<int64_t>(inputs.size());
  torch::Tensor probs;
  if (image_) {
    std::vector<Image> images;
    images.reserve(inputs.size());
    for (auto& x : inputs) images.push_back(std::move(x.image));
    probs = predict_images(*image_, images, n, device_).to(torch::kCPU).contiguous();
  } else {
    std::vector<std::string> texts;
    texts.reserve(inputs.size());
    for (auto& x : inputs) texts.push_back(masker_ ? masker_->mask(x.text) : std::move(x.text));
    auto preds = predict_texts(*text_, texts, max_len_, n, device_);
    for (size_t i = 0; i < preds.size(); ++i) out[i].probs = std::move(preds[i].probs);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (probs.defined()) {
      const float* p = probs.data_ptr<float>() + static_cast<int64_t>(i) * probs.size(1);
      out[i].probs.assign(p, p + probs.size(1));
    }
    out[i].label = decide(out[i].probs.data(), static_cast<int64_t>(out[i].probs.size()), rule_);
  }
  return out;
}

void ServedModel::prepare(CompletionRequest& r) const {
  if (!lm_) throw Error(version_.dir, "", "not a causal language model: it classifies (use :predict or /infer)");
  check_generate_options(r.options);
  if (!r.messages.empty()) {
    if (!chat_) throw Error(version_.dir, "chat_template", "the model has no chat template (start kotsu serve with --chat-template)");
    r.prompt = chat_->generation_prompt(r.messages);
    if (!chat_->end_of_turn().empty()) r.stop.push_back(chat_->end_of_turn());
    r.messages.clear();
  }
  if (r.prompt.empty()) throw Error("<request>", "prompt", "is empty");
}

std::vector<Completion> ServedModel::complete_batch(std::vector<CompletionRequest>& batch) {
  if (!lm_) throw Error(version_.dir, "", "not a causal language model: it classifies (use :predict or /infer)");
  std::vector<CompletionJob> jobs;
  for (auto& r : batch) jobs.push_back({r.prompt, r.options, r.stop, r.on_text});
  torch::NoGradGuard ng;
  return kotsu::complete_batch(*lm_->model, *tokenizer_, lm_->config.eos_token_id, std::move(jobs));
}

Completion ServedModel::complete(const CompletionRequest& r) {
  std::vector<CompletionRequest> one{r};
  prepare(one.front());
  return complete_batch(one).front();
}

}  // namespace kotsu
