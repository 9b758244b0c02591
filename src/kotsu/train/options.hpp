// kotsu/train/options: every setting of a fine-tuning run, with the defaults of common practice, and
// their JSON form (what run.json stores and `kotsu train run.yaml` reads through the CLI).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/data/text_dataset.hpp"

namespace kotsu {

struct TrainOptions {
  std::string model;     // Hugging Face model directory
  std::string data;      // training file (.csv, .tsv, .jsonl)
  std::string val_data;  // optional validation file; else a stratified split of `data`
  std::string out;       // run directory
  TextColumns columns;
  // full | partial | head | lora | contrastive | auto (the default: chosen from the model and the data by
  // train/auto_strategy, and replaced by its choice before the run starts)
  std::string strategy = "auto";
  // text encoders: how features are pooled (EncoderConfig::pooling): cls | mean | auto (the model's own: mean
  // for a sentence-transformers checkpoint that declares it and for the contrastive strategy on a BERT-family
  // encoder, else the config's, cls for a Hugging Face checkpoint)
  std::string pooling = "auto";
  int64_t unfreeze = 2;           // partial: how many top layers train
  std::string init = "pretrained";  // pretrained | random (train from scratch, for comparison)
  double lr = 0;                  // 0: 2e-5 full, 5e-5 partial (head: fitted by L-BFGS, no learning rate)
  double weight_decay = 0.01;
  double warmup_ratio = 0.1;
  std::string schedule = "linear";  // linear | cosine | constant
  int64_t batch_size = 16;
  int64_t epochs = 0;  // 0: the strategy's (effective_epochs), replaced by it before the run starts
  int64_t grad_accum = 1;
  double grad_clip = 1.0;          // 0: off
  int64_t patience = 3;            // epochs without improvement before stopping; 0: never stop early
  std::string metric = "accuracy";  // validation metric for early stopping and the best checkpoint
  // share of `data` held out for validation when there is no val_data; 0: the strategy's choice (holds_out)
  double val_fraction = 0;
  // false: no validation at all: `data` (and `val_data`, when given) all train, for exactly `epochs` epochs,
  // and the last epoch's model is kept (no early stopping, no best checkpoint). How a search retrains its
  // best configuration on train+validation at the end (tune/fine_tune).
  bool validation = true;
  double label_smoothing = 0.0;
  int64_t max_len = 128;
  uint64_t seed = 42;
  int threads = 0;                 // 0: all cores
  std::string device = "cpu";
  bool bf16 = false;
  bool group_by_length = true;     // batch rows of similar length together (within shuffled windows): less padding
  // full/partial with a new head: first fit the head alone on cached features (train/head_fit), then
  // fine-tune: a random head's gradients would distort the pre-trained features
  bool head_first = true;
  // discriminative learning rates: group i of L (bottom to top, head excluded) trains at lr * lr_decay^(L - i)
  double lr_decay = 1.0;
  // none | oversample | undersample | class-weights: rebalance imbalanced classes each epoch (train/sampling),
  // or weight the loss (the same as class_weights: balanced); auto (the default): class-weights for a text
  // classifier whose largest class has at least 4 times the examples of its smallest, else none (resolved
  // with the strategy by train/auto_strategy)
  std::string balance = "auto";
  double l1 = 0.0;  // L1 penalty on the weight matrices and kernels (not embeddings, biases or norms), next to weight decay
  std::string class_weights = "none";  // none | balanced (loss weights n / (k * n_class), for imbalanced data)
  // "CLASS=R": after training, the decision threshold for CLASS whose validation recall reaches R
  // (eval/decision), stored in run.json and used by eval, predict and serve; "" = the most probable class
  std::string target_recall;
  bool augment = true;                 // images: random resized crop, flip and colour jitter while training
  bool skip_bad = false;               // images: leave out unreadable pictures (counted) instead of stopping
  // images, full strategy: batch norm uses (and updates) batch statistics while training. Off by default:
  // with a few hundred pictures and small batches the statistics are noise, and the batch norms of a model
  // imported from a folded TFLite graph are identities that batch statistics would break. Always on for
  // --init random (nothing pre-trained to keep).
  bool train_bn_stats = false;
  // images: train (and later evaluate) at this square input size instead of the model's own; the resize
  // keeps the model's resize/crop ratio. 0: the model's size. Smaller is much faster on a CPU.
  int64_t image_size = 0;
  // texts: replace personal data (e-mail, phone, card, ...) by typed placeholders as the data is read, for
  // training, and for eval and predict of the run (text/pii); the originals reach no log, report or model
  bool mask_pii = false;
  // strategy lora (models/lora): adapters of rank lora_r (scaling lora_alpha / r, dropout lora_dropout) on
  // the layers named by lora_targets: a comma list of names, a regular expression, "all-linear", or empty
  // for the architecture's usual choice (PEFT's: q_proj,v_proj for the Llama family, c_attn for GPT-2)
  int64_t lora_r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0.05;
  std::string lora_targets;
  // causal LMs with chat data (`messages`): the chat format to render it (text/chat_format)
  std::string chat_template;
  // causal LMs: pack each micro-batch's examples into rows of max_len tokens (block-diagonal attention,
  // positions restarting per example): the same loss with less padding to compute
  bool packing = false;
  // only these rows (0-based, in file order) of `data` are used (cross-validation folds); empty: all
  std::vector<int64_t> rows;
  // the label set and order; empty: the data's own (sorted). Cross-validation fixes it across folds.
  std::vector<std::string> labels;

  double effective_lr() const;
  // 0 epochs: for contrastive, enough for 64 optimizer steps, 5 to 20 (train/auto_strategy); else 10.
  int64_t effective_epochs() const;
  // Whether a validation split is held out of `data`: with validation and no val_data, when val_fraction asks
  // for one, and by default for full, partial and lora. By default nothing is held out of a few-shot set for
  // the head strategy, whose L2 strength is already chosen by cross-validation on the training rows (it fits
  // on every example; its validation scores are the out-of-fold predictions of that cross-validation), nor
  // for contrastive, which trains a fixed schedule and fits its head the same way at the end (unless a
  // --target-recall threshold needs unseen examples).
  bool holds_out() const;
  double holdout_fraction() const { return val_fraction > 0 ? val_fraction : 0.1; }
  nlohmann::json to_json() const;
  // Reads the keys present in `j` over the current values; unknown keys are errors naming them.
  void merge_json(const nlohmann::json& j, const std::string& source);
  // Checks values; throws kotsu::Error naming the option.
  void validate() const;
};

}  // namespace kotsu
