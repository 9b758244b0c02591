// kotsu/infer/complete: one text completion with a causal LM, as `kotsu generate` and the server's
// /v1/completions and /v1/chat/completions give it: the prompt's tokens (data/lm_data's prompt_ids),
// generation until EOS, a stop string (the text is cut before it) or max_new_tokens, and the token counts.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/generate.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

struct Completion {
  std::string text;
  std::string finish_reason;  // "stop" (EOS or a stop string) or "length" (max_new_tokens reached)
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// Checks o's values (kotsu::Error naming the option: max_new_tokens >= 1, temperature >= 0, top_p in
// (0, 1], top_k >= 0, repetition_penalty > 0).
void check_generate_options(const GenerateOptions& o);

// Streaming: on_text receives the text as it is generated, in pieces that concatenate to the final text:
// a piece never ends inside a UTF-8 sequence, and the last (longest stop string - 1) bytes are held back
// until they cannot begin a stop string, so nothing is sent that the stop would cut. on_text returning
// false cancels the generation (the client went away).
using TextSink = std::function<bool(const std::string& piece)>;

// eos_token_id < 0: no EOS stop. o.on_token and o.stop_ids are set here (o's other fields are used as given).
Completion complete(CausalLm& model, const Tokenizer& tok, int64_t eos_token_id, const std::string& prompt, GenerateOptions o,
                    const std::vector<std::string>& stop, const TextSink& on_text = {});

// Several completions generated together (models/generate's generate_batch), each as complete() gives it.
struct CompletionJob {
  std::string prompt;
  GenerateOptions options;
  std::vector<std::string> stop;
  TextSink on_text;
};
std::vector<Completion> complete_batch(CausalLm& model, const Tokenizer& tok, int64_t eos_token_id, std::vector<CompletionJob> jobs);

}  // namespace kotsu
