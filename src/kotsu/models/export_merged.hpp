// kotsu/models/export_merged: a LoRA run (a causal LM's, or a text classifier's: PEFT task SEQ_CLS) with its
// adapter folded into the weights, written as a plain Hugging Face model directory (config.json,
// model.safetensors, tokenizer files) that any tool loads without PEFT. The directory appears complete or
// not at all (io/model_dir).
#pragma once
#include <string>

#include "kotsu/io/model_dir.hpp"

namespace kotsu {

// `adapter_dir`: a PEFT adapter directory (a kotsu LoRA run) whose base model is a local directory.
// dtype: "float32", "bfloat16" or "float16" for the written weights.
ImportReport export_merged(const std::string& adapter_dir, const std::string& out, const std::string& dtype, bool overwrite);

}  // namespace kotsu
