// kotsu/text/chat_format: renders an instruction example as the text a causal LM trains on, with the byte
// ranges whose tokens are learnt (the completion; each assistant turn with its end of turn).
// A format is one of:
//   ""           prompt/completion rows as prompt + completion (the completion learnt; the trainer appends
//                EOS, learnt, so the model learns to stop); chat rows are refused
//   chatml       "<|im_start|>{role}\n{content}<|im_end|>\n" per message (Qwen, SmolLM, many others)
//   llama-3      "<|begin_of_text|>" then "<|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>"
//   auto         the model's own Jinja chat template: chat_template.jinja, else tokenizer_config.json's
//                chat_template (a string, or the "default" of a list of named templates)
//   FILE.jinja   a Jinja chat template file
// With a Jinja template (text/jinja; messages, add_generation_prompt, bos_token, eos_token as transformers
// passes them) assistant turn i is learnt from where the template's generation prompt after turns 0..i-1
// ends to where turn i+1 begins; a template that does not render conversations as growing prefixes this
// way is refused. Prompt/completion rows become one user and one assistant message under any chat format.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kotsu/text/chat_messages.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

class JinjaTemplate;

struct RenderedExample {
  std::string text;
  std::vector<std::pair<size_t, size_t>> trained;  // [begin, end) byte ranges of `text`
  bool needs_eos = false;  // the trainer appends the tokenizer's EOS (learnt)
  bool has_bos = false;    // the text starts with the model's BOS: the tokenizer must not add another
};

class ChatFormat {
 public:
  // `spec` as above; `model_dir` holds the templates of "auto"; bos/eos: the tokenizer's token strings.
  ChatFormat(const std::string& spec, const std::string& model_dir, const std::string& bos_token, const std::string& eos_token);
  // The same with `tok`'s BOS and EOS token strings ("" where it has none).
  ChatFormat(const std::string& spec, const std::string& model_dir, const Tokenizer& tok);
  ~ChatFormat();
  RenderedExample render(const InstructionExample& e) const;
  // The text a chat model continues to answer `messages` (the assistant turn opened).
  std::string generation_prompt(const std::vector<ChatMessage>& messages) const;
  // The text that ends an assistant turn of a built-in format ("" for Jinja templates and "").
  std::string end_of_turn() const;
  const std::string& spec() const { return spec_; }

 private:
  std::string render_jinja(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  std::string spec_, bos_, eos_;
  std::shared_ptr<JinjaTemplate> jinja_;
};

const std::vector<std::string>& chat_format_names();  // the built-in formats
// The Jinja chat template of a model directory ("" when it has none).
std::string model_chat_template(const std::string& model_dir);

}  // namespace kotsu
