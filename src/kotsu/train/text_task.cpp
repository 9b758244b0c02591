// The text-classification task of train/task.hpp: rows of a CSV/TSV/JSONL file tokenised once.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/data/mask_file.hpp"
#include "kotsu/infer/predict.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/train/precision.hpp"
#include "kotsu/train/progress.hpp"
#include "kotsu/train/task.hpp"

namespace kotsu {

std::unique_ptr<ClassifierTask> make_image_task(const TrainOptions& o, const std::vector<std::string>& labels, Progress& progress);

namespace {

// --pooling auto: the contrastive strategy tunes the mean-pooled sentence embedding of a BERT-family encoder
// (SetFit's recipe); otherwise the model directory's own pooling ("" keeps it).
std::string pooling_for(const TrainOptions& o) {
  if (o.pooling != "auto") return o.pooling;
  if (o.strategy != "contrastive") return "";
  namespace fs = std::filesystem;
  const std::string cfg = (fs::path(o.model) / "config.json").string();
  return fs::exists(cfg) && EncoderConfig::load(cfg).model_type == "use_lite" ? "" : "mean";
}

class TextTask : public ClassifierTask {
 public:
  TextTask(const TrainOptions& o, const std::vector<std::string>& fixed_labels, Progress& progress) : o_(o), device_(o.device) {
    TextDataset train_ds = load_text_dataset(o.data, o.columns);
    if (!o.rows.empty()) train_ds = subset(train_ds, o.rows);
    std::unique_ptr<PiiMasker> masker;
    if (o.mask_pii) {
      masker = std::make_unique<PiiMasker>();
      progress.log("masked personal data in " + o.data + ": " + pii_counts_text(mask_texts(train_ds, *masker)));
    }
    labels_ = fixed_labels.empty() ? collect_labels(train_ds) : fixed_labels;
    if (labels_.size() < 2)
      throw Error(o.data, "--label-col", "needs at least two distinct labels, found " + std::to_string(labels_.size()));
    auto y = label_ids(train_ds, labels_);
    tm_ = load_text_model(o.model, labels_, o.seed, o.init == "random" ? InitMode::Random : InitMode::Pretrained, pooling_for(o));
    const size_t max_len = static_cast<size_t>(std::min<int64_t>(o.max_len, tm_.model->max_positions()));
    if (!o.holds_out()) {  // no split: data trains; val_data validates (or, without validation, trains too)
      train_ = encode_texts(*tm_.tokenizer, train_ds, max_len, y);
      val_.pad_id = train_.pad_id;
      if (!o.val_data.empty()) {
        TextDataset val_ds = load_text_dataset(o.val_data, o.columns);
        if (masker) progress.log("masked personal data in " + o.val_data + ": " + pii_counts_text(mask_texts(val_ds, *masker)));
        EncodedTexts v = encode_texts(*tm_.tokenizer, val_ds, max_len, label_ids(val_ds, labels_));
        EncodedTexts& into = o.validation ? val_ : train_;
        into.enc.insert(into.enc.end(), v.enc.begin(), v.enc.end());
        into.labels.insert(into.labels.end(), v.labels.begin(), v.labels.end());
      }
    } else {
      std::vector<size_t> tr, va;
      stratified_split(y, o.holdout_fraction(), o.seed, tr, va);
      if (va.empty()) throw Error(o.data, "", "too few rows to hold out a validation split; pass --val-data");
      EncodedTexts all = encode_texts(*tm_.tokenizer, train_ds, max_len, y);
      for (size_t i : tr) {
        train_.enc.push_back(all.enc[i]);
        train_.labels.push_back(y[i]);
      }
      for (size_t i : va) {
        val_.enc.push_back(all.enc[i]);
        val_.labels.push_back(y[i]);
      }
      train_.pad_id = val_.pad_id = all.pad_id;
    }
    for (const auto& e : train_.enc) lengths_.push_back(e.ids.size());
    tm_.model->to(device_);
  }
  std::string kind() const override { return "text-classification"; }
  Classifier& model() override { return *tm_.model; }
  const std::vector<std::string>& labels() const override { return labels_; }
  const std::vector<int64_t>& targets(bool train) const override { return train ? train_.labels : val_.labels; }
  bool head_initialised() const override { return tm_.load_report.head_initialised; }
  std::string describe_model() const override {
    const auto& c = tm_.config;
    return fmt::format("{}, {} layers, hidden {}", c.model_type, c.num_hidden_layers, c.hidden_size);
  }
  torch::Tensor features(bool train) override {
    return compute_features(*tm_.model, train ? train_ : val_, 64, device_).to(device_);
  }
  torch::Tensor val_logits(size_t from, size_t to) override {
    if (from == 0 && to >= val_.enc.size()) return predict_logits(*tm_.model, val_, 64, device_);
    EncodedTexts part;
    part.pad_id = val_.pad_id;
    part.enc.assign(val_.enc.begin() + static_cast<std::ptrdiff_t>(from), val_.enc.begin() + static_cast<std::ptrdiff_t>(to));
    if (!val_.labels.empty()) part.labels.assign(val_.labels.begin() + static_cast<std::ptrdiff_t>(from), val_.labels.begin() + static_cast<std::ptrdiff_t>(to));
    return predict_logits(*tm_.model, part, 64, device_);
  }
  std::vector<std::vector<size_t>> batches(const std::vector<size_t>& order, size_t batch_size, std::mt19937_64& rng) override {
    return make_batches(order, lengths_, batch_size, o_.group_by_length, rng);
  }
  torch::Tensor train_logits(const std::vector<size_t>& idx, int64_t, FusedAdamW& opt, torch::Tensor& y) override {
    Bf16Autocast autocast(o_.bf16, device_);  // the forward pass only; backward follows the recorded dtypes
    TextBatch b = make_batch(train_, idx).to(device_);
    opt.prepare(b.input_ids);  // rows this batch reads are brought up to date first
    y = b.labels;
    return tm_.model->logits(b);
  }
  torch::Tensor train_features(const std::vector<size_t>& idx, int64_t, FusedAdamW& opt, torch::Tensor& y) override {
    Bf16Autocast autocast(o_.bf16, device_);
    TextBatch b = make_batch(train_, idx).to(device_);
    opt.prepare(b.input_ids);
    y = b.labels;
    return tm_.model->features(b);
  }
  void set_training(bool on) override { tm_.model->train(on); }
  std::vector<torch::Tensor> use_sparse_embedding_grads() override { return tm_.model->use_sparse_embedding_grads(); }
  void save(const std::string& dir) override { save_text_model(tm_, dir); }

 private:
  TrainOptions o_;
  torch::Device device_;
  std::vector<std::string> labels_;
  TextModel tm_;
  EncodedTexts train_, val_;
  std::vector<size_t> lengths_;
};

}  // namespace

torch::Tensor ClassifierTask::train_features(const std::vector<size_t>&, int64_t, FusedAdamW&, torch::Tensor&) {
  throw Error("options", "strategy", "contrastive tunes text encoders; this is a " + kind() + " task");
}

std::unique_ptr<ClassifierTask> make_task(const TrainOptions& o, const std::vector<std::string>& labels, Progress& progress) {
  if (is_image_model_dir(o.model)) return make_image_task(o, labels, progress);
  if (o.image_size != 0) throw Error("options", "image_size", "applies to picture models; " + o.model + " is a text model");
  return std::make_unique<TextTask>(o, labels, progress);
}

}  // namespace kotsu
