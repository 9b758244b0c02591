#include "kotsu/train/options.hpp"

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/eval/decision.hpp"
#include "kotsu/eval/metrics.hpp"

namespace kotsu {

namespace {
constexpr double kContrastiveLr = 5e-5;
// contrastive: an epoch scores about 7.5 pairs per example (batches of 16 in runs of 4 per class: 120 pairs per
// 16 examples); 5 epochs is SetFit's budget of 40 pairs per example (num_iterations 20, both directions)
constexpr int64_t kContrastiveEpochs = 5;
}

double TrainOptions::effective_lr() const {
  if (lr > 0) return lr;
  if (strategy == "head") return 0;  // fitted by L-BFGS (train/head_fit)
  if (strategy == "partial") return 5e-5;
  if (strategy == "lora") return 2e-4;
  if (strategy == "contrastive") return kContrastiveLr;
  return 2e-5;
}

int64_t TrainOptions::effective_epochs() const {
  if (epochs > 0) return epochs;
  return strategy == "contrastive" ? kContrastiveEpochs : 10;
}

bool TrainOptions::holds_out() const {
  if (!validation || !val_data.empty()) return false;
  if (val_fraction > 0) return true;
  if (strategy == "head") return false;
  if (strategy == "contrastive") return !target_recall.empty();
  return true;
}

nlohmann::json TrainOptions::to_json() const {
  return {{"model", model}, {"data", data}, {"val_data", val_data}, {"out", out},
          {"text_col", columns.text}, {"label_col", columns.label}, {"text_pair_col", columns.text_pair},
          {"strategy", strategy}, {"pooling", pooling}, {"unfreeze", unfreeze}, {"init", init}, {"lr", lr},
          {"weight_decay", weight_decay}, {"warmup_ratio", warmup_ratio}, {"schedule", schedule},
          {"batch_size", batch_size}, {"epochs", epochs}, {"grad_accum", grad_accum}, {"grad_clip", grad_clip},
          {"patience", patience}, {"metric", metric}, {"val_fraction", val_fraction}, {"validation", validation},
          {"label_smoothing", label_smoothing}, {"max_len", max_len}, {"seed", seed}, {"threads", threads},
          {"device", device}, {"bf16", bf16},
          {"group_by_length", group_by_length}, {"head_first", head_first},
          {"lr_decay", lr_decay}, {"class_weights", class_weights}, {"balance", balance}, {"target_recall", target_recall}, {"l1", l1}, {"augment", augment}, {"skip_bad", skip_bad},
          {"train_bn_stats", train_bn_stats}, {"image_size", image_size}, {"mask_pii", mask_pii},
          {"lora_r", lora_r}, {"lora_alpha", lora_alpha}, {"lora_dropout", lora_dropout}, {"lora_targets", lora_targets},
          {"chat_template", chat_template}, {"packing", packing}, {"rows", rows}, {"labels", labels}};
}

void TrainOptions::merge_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source, "", "must be a mapping of option: value");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    try {
      if (k == "model") model = v.get<std::string>();
      else if (k == "data") data = v.get<std::string>();
      else if (k == "val_data") val_data = v.get<std::string>();
      else if (k == "out") out = v.get<std::string>();
      else if (k == "text_col") columns.text = v.get<std::string>();
      else if (k == "label_col") columns.label = v.get<std::string>();
      else if (k == "text_pair_col") columns.text_pair = v.get<std::string>();
      else if (k == "strategy") strategy = v.get<std::string>();
      else if (k == "pooling") pooling = v.get<std::string>();
      else if (k == "unfreeze") unfreeze = v.get<int64_t>();
      else if (k == "init") init = v.get<std::string>();
      else if (k == "lr") lr = v.get<double>();
      else if (k == "weight_decay") weight_decay = v.get<double>();
      else if (k == "warmup_ratio") warmup_ratio = v.get<double>();
      else if (k == "schedule") schedule = v.get<std::string>();
      else if (k == "batch_size") batch_size = v.get<int64_t>();
      else if (k == "epochs") epochs = v.get<int64_t>();
      else if (k == "grad_accum") grad_accum = v.get<int64_t>();
      else if (k == "grad_clip") grad_clip = v.get<double>();
      else if (k == "patience") patience = v.get<int64_t>();
      else if (k == "metric") metric = v.get<std::string>();
      else if (k == "val_fraction") val_fraction = v.get<double>();
      else if (k == "validation") validation = v.get<bool>();
      else if (k == "label_smoothing") label_smoothing = v.get<double>();
      else if (k == "max_len") max_len = v.get<int64_t>();
      else if (k == "seed") seed = v.get<uint64_t>();
      else if (k == "threads") threads = v.get<int>();
      else if (k == "device") device = v.get<std::string>();
      else if (k == "bf16") bf16 = v.get<bool>();
      else if (k == "group_by_length") group_by_length = v.get<bool>();
      else if (k == "head_first") head_first = v.get<bool>();
      else if (k == "lr_decay") lr_decay = v.get<double>();
      else if (k == "class_weights") class_weights = v.get<std::string>();
      else if (k == "balance") balance = v.get<std::string>();
      else if (k == "target_recall") target_recall = v.get<std::string>();
      else if (k == "l1") l1 = v.get<double>();
      else if (k == "augment") augment = v.get<bool>();
      else if (k == "skip_bad") skip_bad = v.get<bool>();
      else if (k == "train_bn_stats") train_bn_stats = v.get<bool>();
      else if (k == "image_size") image_size = v.get<int64_t>();
      else if (k == "mask_pii") mask_pii = v.get<bool>();
      else if (k == "lora_r") lora_r = v.get<int64_t>();
      else if (k == "lora_alpha") lora_alpha = v.get<double>();
      else if (k == "lora_dropout") lora_dropout = v.get<double>();
      else if (k == "lora_targets") lora_targets = v.get<std::string>();
      else if (k == "chat_template") chat_template = v.get<std::string>();
      else if (k == "packing") packing = v.get<bool>();
      else if (k == "rows") rows = v.get<std::vector<int64_t>>();
      else if (k == "labels") labels = v.get<std::vector<std::string>>();
      else throw Error(source, k, "unknown option");
    } catch (const nlohmann::json::exception&) {
      throw Error(source, k, "has the wrong type (" + std::string(v.type_name()) + ")");
    }
  }
}

void TrainOptions::validate() const {
  const std::string src = "options";
  if (model.empty()) throw Error(src, "model", "is required (a Hugging Face model directory)");
  if (data.empty()) throw Error(src, "data", "is required (a .csv, .tsv or .jsonl file; for pictures a class-folder tree, a CSV of path,label or an IDX file)");
  if (out.empty()) throw Error(src, "out", "is required (the run directory)");
  if (strategy != "full" && strategy != "partial" && strategy != "head" && strategy != "lora" && strategy != "contrastive" && strategy != "auto")
    throw Error(src, "strategy", "'" + strategy + "' is not one of auto, full, partial, head, lora, contrastive");
  if (pooling != "auto" && pooling != "cls" && pooling != "mean") throw Error(src, "pooling", "must be auto, cls or mean");
  if (strategy == "contrastive" && init == "random") throw Error(src, "init", "random: the contrastive strategy tunes a pre-trained sentence encoder");
  if (lora_r < 1 || lora_r > 4096) throw Error(src, "lora_r", "must be in [1, 4096]");
  if (lora_alpha <= 0) throw Error(src, "lora_alpha", "must be > 0");
  if (lora_dropout < 0 || lora_dropout >= 1) throw Error(src, "lora_dropout", "must be in [0, 1)");
  if (init != "pretrained" && init != "random") throw Error(src, "init", "must be pretrained or random");
  if (schedule != "linear" && schedule != "cosine" && schedule != "constant")
    throw Error(src, "schedule", "must be linear, cosine or constant");
  if (lr < 0 || lr > 10) throw Error(src, "lr", "must be in (0, 10]");
  if (weight_decay < 0) throw Error(src, "weight_decay", "must be >= 0");
  if (warmup_ratio < 0 || warmup_ratio >= 1) throw Error(src, "warmup_ratio", "must be in [0, 1)");
  if (batch_size < 1 || batch_size > 65536) throw Error(src, "batch_size", "must be in [1, 65536]");
  if (epochs < 0 || epochs > 100000) throw Error(src, "epochs", "must be >= 1 (0: the strategy's default)");
  if (grad_accum < 1) throw Error(src, "grad_accum", "must be >= 1");
  if (grad_clip < 0) throw Error(src, "grad_clip", "must be >= 0");
  if (patience < 0) throw Error(src, "patience", "must be >= 0");
  if (unfreeze < 0) throw Error(src, "unfreeze", "must be >= 0");
  if (!is_metric_name(metric)) throw Error(src, "metric", "'" + metric + "' is not a metric (accuracy, macro_f1, weighted_f1, loss, ...)");
  if (val_fraction < 0 || val_fraction >= 1) throw Error(src, "val_fraction", "must be in (0, 1) (0: the strategy's default)");
  if (label_smoothing < 0 || label_smoothing >= 1) throw Error(src, "label_smoothing", "must be in [0, 1)");
  if (max_len < 4) throw Error(src, "max_len", "must be >= 4");
  if (threads < 0) throw Error(src, "threads", "must be >= 0");
  if (lr_decay <= 0 || lr_decay > 1) throw Error(src, "lr_decay", "must be in (0, 1]");
  if (class_weights != "none" && class_weights != "balanced") throw Error(src, "class_weights", "must be none or balanced");
  if (balance != "auto" && balance != "none" && balance != "oversample" && balance != "undersample" && balance != "class-weights")
    throw Error(src, "balance", "must be auto, none, oversample, undersample or class-weights");
  if (l1 < 0) throw Error(src, "l1", "must be >= 0");
  if (!target_recall.empty()) {
    parse_target_recall(target_recall);
    if (!validation) throw Error(src, "target_recall", "chooses its threshold on the validation split: it needs validation");
  }
  if (image_size != 0 && (image_size < 16 || image_size > 4096)) throw Error(src, "image_size", "must be 0 (the model's) or in [16, 4096]");
  if (device != "cpu" && device.rfind("cuda", 0) != 0) throw Error(src, "device", "must be cpu or cuda[:N]");
  check_device(device);
}

}  // namespace kotsu
