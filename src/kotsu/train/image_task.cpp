// The image-classification task of train/task.hpp. Pictures are decoded once, in parallel, and kept in
// memory shrunk to the model's resize size (a few hundred pictures is the use case: 1,000 photos take
// ~250 MB); each epoch augments them afresh from (seed, epoch, example) on worker threads that stay a few
// batches ahead of training (data/prefetcher). Batch norms keep their running
// statistics (eval mode) while training unless --train-bn-stats with the full strategy (or --init random).
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/data/prefetcher.hpp"
#include "kotsu/data/text_dataset.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/train/progress.hpp"
#include "kotsu/train/task.hpp"
#include "kotsu/vision/transforms.hpp"

namespace kotsu {

namespace {

// Decoded pictures of a dataset, each shrunk so its shorter side is at most `side`.
std::vector<Image> decode_all(ImageDataset& ds, bool skip_bad, int64_t side, Progress& progress) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Image> images;
  auto bad = check_images(ds, skip_bad, runtime_threads(), &images, static_cast<int>(side));
  for (auto& [name, why] : bad) progress.log(fmt::format("skipped {}: {}", name, why));
  for (Image& im : images) {
    if (std::min(im.height, im.width) <= side) continue;
    auto t = resize_shorter(image_to_tensor(im), side).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    im.height = static_cast<int>(t.size(0));
    im.width = static_cast<int>(t.size(1));
    im.pixels.assign(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  }
  progress.log(fmt::format("decoded {} pictures from {} in {:.1f}s{}", images.size(), ds.source,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                           bad.empty() ? "" : fmt::format(" ({} unreadable skipped)", bad.size())));
  return images;
}

class ImageTask : public ClassifierTask {
 public:
  ImageTask(const TrainOptions& o, const std::vector<std::string>& fixed_labels, Progress& progress)
      : o_(o), device_(o.device) {
    ImageDataset train_ds = load_image_dataset(o.data);
    if (!o.rows.empty()) train_ds = select_rows(train_ds, o.rows);
    labels_ = fixed_labels.empty() ? train_ds.classes : fixed_labels;
    if (labels_.size() < 2) throw Error(o.data, "", "needs at least two classes, found " + std::to_string(labels_.size()));
    im_ = load_image_model(o.model, labels_, o.seed, o.init == "random");
    im_.model->to(device_);
    if (o.image_size > 0) {
      im_.preprocess.set_size(o.image_size);
      im_.config.image_size = o.image_size;
    }
    const int64_t side = im_.preprocess.decode_side();
    std::vector<Image> all = decode_all(train_ds, o.skip_bad, side, progress);
    std::vector<int64_t> y = remap_targets(train_ds, labels_);
    if (!o.holds_out()) {  // no split: data trains; val_data validates (or, without validation, trains too)
      train_images_ = std::move(all);
      train_y_ = y;
      if (!o.val_data.empty()) {
        ImageDataset val_ds = load_image_dataset(o.val_data);
        std::vector<Image>& images = o.validation ? val_images_ : train_images_;
        std::vector<int64_t>& targets = o.validation ? val_y_ : train_y_;
        for (Image& im : decode_all(val_ds, o.skip_bad, side, progress)) images.push_back(std::move(im));
        for (int64_t v : remap_targets(val_ds, labels_)) targets.push_back(v);
      }
    } else {
      std::vector<size_t> tr, va;
      stratified_split(y, o.holdout_fraction(), o.seed, tr, va);
      if (va.empty()) throw Error(o.data, "", "too few pictures to hold out a validation split; pass --val-data");
      for (size_t i : tr) {
        train_images_.push_back(std::move(all[i]));
        train_y_.push_back(y[i]);
      }
      for (size_t i : va) {
        val_images_.push_back(std::move(all[i]));
        val_y_.push_back(y[i]);
      }
    }
  }
  std::string kind() const override { return "image-classification"; }
  Classifier& model() override { return *im_.model; }
  const std::vector<std::string>& labels() const override { return labels_; }
  const std::vector<int64_t>& targets(bool train) const override { return train ? train_y_ : val_y_; }
  bool head_initialised() const override { return im_.load_report.head_initialised; }
  std::string describe_model() const override {
    return fmt::format("{}, {} blocks, {} features, input {}x{}", im_.config.model_type, im_.model->num_layers(),
                       im_.model->feature_size(), im_.preprocess.crop_height, im_.preprocess.crop_width);
  }
  torch::Tensor features(bool train) override {
    return run_eval(train ? train_images_ : val_images_, [&](const torch::Tensor& x) { return im_.model->features(x); });
  }
  torch::Tensor val_logits(size_t from, size_t to) override {
    return run_eval(val_images_, [&](const torch::Tensor& x) { return im_.model->logits(x); }, from, to);
  }
  std::vector<std::vector<size_t>> batches(const std::vector<size_t>& order, size_t batch_size, std::mt19937_64&) override {
    std::vector<std::vector<size_t>> out;
    for (size_t s = 0; s < order.size(); s += batch_size)
      out.emplace_back(order.begin() + static_cast<long>(s), order.begin() + static_cast<long>(std::min(order.size(), s + batch_size)));
    return out;
  }
  void begin_epoch(const std::vector<std::vector<size_t>>& batches, int64_t epoch) override {
    loader_.reset();  // joins the last epoch's workers before the batches they read change
    epoch_batches_ = batches;
    loader_epoch_ = epoch;
    // worker threads augment the next batches while the training thread runs the model on this one
    const size_t workers = static_cast<size_t>(std::max(1, runtime_threads() / 2));
    loader_ = std::make_unique<Prefetcher<Batch>>(epoch_batches_.size(), workers, 2 * workers + 1,
                                                  [this, epoch](size_t k) { return make_batch(epoch_batches_[k], epoch); });
  }
  torch::Tensor train_logits(const std::vector<size_t>& idx, int64_t epoch, FusedAdamW&, torch::Tensor& y) override {
    Batch b;
    if (loader_ && loader_epoch_ == epoch && !loader_->done() && epoch_batches_[loader_->position()] == idx) b = loader_->next();
    else b = make_batch(idx, epoch);  // not the batch the loader prepared next: made here
    y = b.y.to(device_);
    return im_.model->logits(b.x.to(device_));
  }
  void set_training(bool on) override {
    im_.model->train(on);
    // the backbone keeps its pre-trained batch-norm statistics unless full fine-tuning asks to train them;
    // a model trained from scratch has no statistics worth keeping
    if (on && !(o_.strategy == "full" && (o_.train_bn_stats || o_.init == "random")))
      for (auto& m : im_.model->modules(false))
        if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) bn->eval();
  }
  void save(const std::string& dir) override { save_image_model(im_, dir); }

 private:
  struct Batch {
    torch::Tensor x, y;
  };
  // The augmented pictures [B, C, H, W] and labels of train examples `idx`, on the CPU.
  Batch make_batch(const std::vector<size_t>& idx, int64_t epoch) const {
    Augment aug;
    aug.enabled = o_.augment;
    std::vector<torch::Tensor> xs;
    std::vector<int64_t> ys;
    for (size_t i : idx) {
      // one generator per (seed, epoch, example): the same augmentation on a resumed run, on any thread
      std::mt19937_64 rng(o_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) * 1000003ULL + i);
      xs.push_back(train_transform(train_images_[i], im_.preprocess, aug, rng));
      ys.push_back(train_y_[i]);
    }
    return {torch::stack(xs), torch::tensor(ys, torch::kLong)};
  }
  template <class F>
  torch::Tensor run_eval(const std::vector<Image>& images, F fn, size_t from = 0, size_t to = SIZE_MAX) {
    to = std::min(to, images.size());
    const bool was = im_.model->is_training();
    im_.model->eval();
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> out;
    for (size_t s = from; s < to; s += 64) {
      std::vector<torch::Tensor> xs;
      for (size_t i = s; i < std::min(to, s + 64); ++i) xs.push_back(eval_transform(images[i], im_.preprocess));
      out.push_back(fn(torch::stack(xs).to(device_)));
    }
    im_.model->train(was);
    return torch::cat(out).to(device_);
  }
  TrainOptions o_;
  torch::Device device_;
  std::vector<std::string> labels_;
  ImageModel im_;
  std::vector<Image> train_images_, val_images_;
  std::vector<int64_t> train_y_, val_y_;
  std::vector<std::vector<size_t>> epoch_batches_;
  int64_t loader_epoch_ = -1;
  std::unique_ptr<Prefetcher<Batch>> loader_;  // declared last: destroyed (workers joined) first
};

}  // namespace

std::unique_ptr<ClassifierTask> make_image_task(const TrainOptions& o, const std::vector<std::string>& labels, Progress& progress) {
  return std::make_unique<ImageTask>(o, labels, progress);
}

}  // namespace kotsu
