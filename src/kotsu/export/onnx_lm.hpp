// kotsu/export/onnx_lm: the ONNX graph of a GPT-2 causal LM (a LoRA run is merged first), operator for
// operator models/gpt2's forward pass without a key/value cache: every position's next-token logits.
// Inputs: input_ids, attention_mask, int64 [batch, sequence] (positions 0..T-1, as kotsu and Hugging
// Face number them without a cache); output: logits, float [batch, sequence, vocab].
#pragma once
#include "kotsu/export/onnx_graph.hpp"
#include "kotsu/models/causal_lm.hpp"

namespace kotsu {

void build_causal_lm_onnx(OnnxGraph& g, CausalLmModel& m);

}  // namespace kotsu
