// kotsu/train/lm_trainer: instruction-tunes a causal LM (GPT-2, the Llama family) on prompt/completion or
// chat data (data/instruction_data, text/chat_format): the loss is the next-token cross-entropy on the
// learnt tokens only (completions, assistant turns, the EOS that ends them), summed over a whole optimizer
// step and divided by that step's learnt-token count, so that --grad-accum K with batch B gives the
// gradient of one batch of K * B. Strategies: lora (adapters, models/lora; the base weights frozen, kept
// in bf16 with --bf16) or full. Validation: the mean loss per learnt token on --val-data (or a seeded
// split of --data), which picks the best epoch and drives early stopping. With TrainHooks::workers it runs
// data-parallel as train/trainer does: each worker its part of every global micro-batch, the loss divided
// by the whole step's learnt tokens, gradients summed during backward, validation sums added up, rank 0
// writing the run.
// ensures: OUT holds the best epoch's model: for lora a PEFT adapter directory (adapter_config.json with
//          base_model_name_or_path, adapter_model.safetensors) plus the tokenizer files; for full a Hugging
//          Face model directory; and run.json (task "causal-lm", options, history, best validation loss).
#pragma once
#include <string>

#include "kotsu/train/options.hpp"
#include "kotsu/train/trainer.hpp"

namespace kotsu {

TrainResult train_causal_lm(const TrainOptions& o, const TrainHooks& hooks = {});
// After every epoch OUT holds a checkpoint (the training parameters, the optimizer state, trainer_state.json);
// resume continues a killed run from it to the result an uninterrupted run gives.
bool is_causal_lm_run(const std::string& run_dir);
TrainResult resume_causal_lm(const std::string& run_dir, const TrainHooks& hooks = {});

}  // namespace kotsu
