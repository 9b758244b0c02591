// kotsu/train/task: what the trainer needs of a classification task, whatever its input. A task holds
// the model, the train and validation examples and how to batch them; the trainer (strategies, head
// fitting, optimizer, schedule, early stopping, checkpoints) works on this interface alone.
// Text: tokenised rows, batches grouped by length. Pictures: decoded once, augmented per (seed, epoch,
// example) while training, resized and center-cropped for evaluation; batch-norm statistics frozen
// unless the strategy is full and --train-bn-stats asks for batch statistics.
#pragma once
#include <torch/types.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kotsu/models/classifier.hpp"
#include "kotsu/train/adamw.hpp"
#include "kotsu/train/options.hpp"

namespace kotsu {

class Progress;

class ClassifierTask {
 public:
  virtual ~ClassifierTask() = default;
  virtual std::string kind() const = 0;  // "text-classification" | "image-classification"
  virtual Classifier& model() = 0;
  virtual const std::vector<std::string>& labels() const = 0;
  virtual const std::vector<int64_t>& targets(bool train) const = 0;
  virtual bool head_initialised() const = 0;  // the head is new (not from the checkpoint)
  virtual std::string describe_model() const = 0;
  // Features of every train or validation example in eval mode, no augmentation: [N, F] on the device.
  virtual torch::Tensor features(bool train) = 0;
  // Logits of the validation examples [from, to) (a data-parallel worker's share), eval mode.
  virtual torch::Tensor val_logits(size_t from, size_t to) = 0;
  // One epoch's mini-batches of train example indices, from a shuffled order.
  virtual std::vector<std::vector<size_t>> batches(const std::vector<size_t>& order, size_t batch_size,
                                                    std::mt19937_64& rng) = 0;
  // Called with the epoch's batches before the first train_logits of the epoch: a task may prepare them
  // ahead on worker threads.
  virtual void begin_epoch(const std::vector<std::vector<size_t>>& batches, int64_t epoch) {}
  // Training-mode logits of the train examples `idx` (augmented as the epoch says) and their labels.
  virtual torch::Tensor train_logits(const std::vector<size_t>& idx, int64_t epoch, FusedAdamW& opt, torch::Tensor& y) = 0;
  // Training-mode features (the sentence embeddings the contrastive strategy tunes) of the train examples
  // `idx` and their labels; tasks without such a strategy refuse.
  virtual torch::Tensor train_features(const std::vector<size_t>& idx, int64_t epoch, FusedAdamW& opt, torch::Tensor& y);
  // Switches the model to training (with the strategy's frozen parts) or evaluation mode.
  virtual void set_training(bool on) = 0;
  virtual std::vector<torch::Tensor> use_sparse_embedding_grads() { return {}; }
  virtual void save(const std::string& dir) = 0;
};

// Picks the task from the model directory (an image architecture or a text encoder) and loads the data:
// `labels` fixes the label order (a resumed run); empty takes the data's.
std::unique_ptr<ClassifierTask> make_task(const TrainOptions& o, const std::vector<std::string>& labels, Progress& progress);

}  // namespace kotsu
