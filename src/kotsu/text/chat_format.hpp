// kotsu/text/chat_format: renders an instruction example as the text a causal LM trains on, with the byte
// ranges whose tokens are learnt (the completion; each assistant turn with its end marker).
// Built-in chat formats (the conventions the model families were tuned with):
//   chatml   "<|im_start|>{role}\n{content}<|im_end|>\n" per message (Qwen, SmolLM, many others)
//   llama-3  "<|begin_of_text|>" then "<|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>"
// Prompt/completion rows without a chat format are prompt + completion, the completion learnt, and the
// trainer appends EOS (learnt) so that the model learns to stop; with a chat format they are one user and
// one assistant message.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "kotsu/data/instruction_data.hpp"

namespace kotsu {

struct RenderedExample {
  std::string text;
  std::vector<std::pair<size_t, size_t>> trained;  // [begin, end) byte ranges of `text`
  bool needs_eos = false;  // the trainer appends the tokenizer's EOS (learnt)
  bool has_bos = false;    // the text starts with the model's BOS: the tokenizer must not add another
};

// `format`: "" (prompt/completion rows only) or a name of chat_format_names().
RenderedExample render_example(const InstructionExample& e, const std::string& format);
// The prompt a chat model continues to answer `messages` (the assistant header left open).
std::string render_generation_prompt(const std::vector<ChatMessage>& messages, const std::string& format);
const std::vector<std::string>& chat_format_names();

}  // namespace kotsu
