// kotsu/train/auto_strategy: what --strategy auto (the default) picks for a run, from the model and the
// data, and why; and the strategy-dependent defaults (epochs 0) filled in before a run starts, so that
// run.json records what actually ran.
#pragma once
#include <string>

#include "kotsu/train/options.hpp"

namespace kotsu {

struct StrategyChoice {
  std::string strategy;  // full | contrastive | head
  std::string why;       // one sentence for the log and run.json
};

// The training examples up to which a text classifier is few-shot and auto picks contrastive. Measured on
// all-MiniLM-L6-v2 (bench/vs_anchors, docs/results.md, seed 0): contrastive was best or within 0.7 points of the
// best at 100 to 500 examples (SST-2 N=100 and 500, SMS N=200, BANKING77 5 per intent = 385), full
// fine-tuning best from 770 (BANKING77 10 and 20 per intent); the bound sits between.
constexpr size_t kFewShotExamples = 600;
// Below this median of examples per class, few-shot data trains the head alone: with 5 per intent on
// BANKING77 (77 classes, 3 seeds) the head on the frozen embedding reached 80.4% and contrastive 79.7% at 13
// times the CPU time; SetFit's smallest setting is 8 per class.
constexpr double kMinPerClassForPairs = 8;

// What auto picks for `o` (its strategy is not read): full for pictures, causal LMs, --init random and
// data-parallel runs; for a text classifier, contrastive when `data` (its `rows`) has at most
// kFewShotExamples examples and a median class of at least kMinPerClassForPairs, head when it has fewer per
// class, full above kFewShotExamples.
StrategyChoice choose_strategy(const TrainOptions& o, bool causal_lm, bool distributed);

// Classes count as imbalanced when the largest has at least this many times the examples of the smallest.
constexpr double kImbalanceRatio = 4;

// --balance auto for imbalanced text classes (measured: bench/vs_anchors sst2imb-200 and sms-200).
constexpr const char* kAutoBalance = "class-weights";

// --epochs 0 for the contrastive strategy: enough epochs for at least kContrastiveMinSteps optimizer steps
// (batches of batch_size * grad_accum examples), no fewer than 5 (about 40 pairs per example, SetFit's
// budget) and no more than 20. Measured on SST-2 N=100 (3 seeds, bench/vs_anchors): 5 epochs (35 steps)
// 74.3%, 10 epochs (70 steps) 76.6%, 20 epochs no better (seeds 0-1); from 200 examples 5 epochs already
// make 65 steps.
constexpr int64_t kContrastiveMinSteps = 64;
int64_t contrastive_epochs(size_t examples, int64_t examples_per_step);

// Why the automatic choices were made ("" for what was named).
struct ResolvedDefaults {
  std::string strategy_why;
  std::string balance_why;
};

// Replaces o.strategy "auto" by choose_strategy's pick, o.epochs 0 by contrastive_epochs (contrastive on the
// data's size) or effective_epochs(), and o.balance
// "auto" by kAutoBalance for a text classifier with imbalanced classes (else none: pictures and causal LMs
// are not rebalanced by default).
ResolvedDefaults resolve_defaults(TrainOptions& o, bool causal_lm, bool distributed);

}  // namespace kotsu
