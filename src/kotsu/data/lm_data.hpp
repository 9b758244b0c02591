// kotsu/data/lm_data: instruction examples as token ids with a learnt/not-learnt flag per token, and
// padded batches of them with next-token labels (-100 where nothing is learnt: prompts, user turns,
// padding). Which tokens are learnt comes from their byte offsets in the rendered text, never from their
// ids, so an EOS that is also the padding token (GPT-2, many Llama tokenizers) is still learnt.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kotsu/data/instruction_data.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

struct LmExample {
  std::vector<int64_t> ids;
  std::vector<uint8_t> learn;  // learn[i]: token i is a target (predicted from the tokens before it)
  int64_t targets() const;
};

struct LmTokenized {
  std::vector<LmExample> examples;
  int64_t truncated = 0;  // cut to max_len (still with learnt tokens)
  int64_t dropped = 0;    // nothing learnt left after the cut
};

// Refuses a tokenizer without EOS when a completion needs one (the model could never learn to stop).
LmTokenized tokenize_instructions(const std::vector<InstructionExample>& data, const Tokenizer& tok, const ChatFormat& format,
                                  int64_t max_len, const std::string& source);

// The ids of a prompt as training saw its start: the tokenizer's leading special tokens (BOS) unless the
// text already begins with a BOS token, no trailing ones.
std::vector<int64_t> prompt_ids(const Tokenizer& tok, const std::string& text);

struct LmBatch {
  torch::Tensor ids, mask, labels;  // [B, T] int64: right-padded ids, 1/0 attention, next-token label or -100
  torch::Tensor positions;          // packed batches: [B, T] positions restarting at each example; else undefined
  int64_t targets = 0;
};
LmBatch make_lm_batch(const std::vector<LmExample>& data, const std::vector<size_t>& idx, int64_t pad_id);
// The examples `idx` packed first-fit, in order, into as few rows of at most `row_len` tokens as they fit:
// mask [B, T, T] lets each token see only its own example (block-diagonal, causal within), positions
// restart at 0 for each example, labels never cross from one example into the next. The loss and the
// logits of every example equal those of make_lm_batch (tested): less padding, the same training.
LmBatch pack_lm_batch(const std::vector<LmExample>& data, const std::vector<size_t>& idx, int64_t pad_id, int64_t row_len);

// Summed next-token cross-entropy over the labelled positions (float32), logits [B, T, V].
torch::Tensor lm_loss_sum(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace kotsu
