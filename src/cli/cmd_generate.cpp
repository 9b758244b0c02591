// kotsu generate --model DIR --prompt TEXT: continues a prompt with a causal LM (models/generate), greedy by
// default, sampled with --temperature (and --top-k / --top-p); stops at the model's EOS, at any --stop
// string (cut before it) or after --max-new-tokens.
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/infer/complete.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu::cli {

Action add_generate(CLI::App& app) {
  struct Flags {
    std::string model, prompt, chat_template;
    std::vector<std::string> stop;
    GenerateOptions o;
    int threads = 0;
    bool no_cache = false;
  };
  auto f = std::make_shared<Flags>();
  f->o.max_new_tokens = 64;
  auto* c = app.add_subcommand("generate", "continue a prompt with a causal language model (GPT-2)");
  c->add_option("--model", f->model, "Hugging Face model directory (config.json, model.safetensors, tokenizer files), or a LoRA adapter directory (PEFT format, e.g. a kotsu train --strategy lora run)")->required();
  c->add_option("--chat-template", f->chat_template, "send the prompt as a user message in this chat format (chatml, llama-3, auto: the model's own Jinja template, or a .jinja file)");
  c->add_option("--prompt", f->prompt, "the text to continue")->required();
  c->add_option("--max-new-tokens", f->o.max_new_tokens, "tokens to generate at most")->capture_default_str();
  c->add_option("--temperature", f->o.temperature, "0: greedy; > 0: sample from softmax(logits / temperature)")->capture_default_str();
  c->add_option("--top-k", f->o.top_k, "sample among the k most likely tokens (0: all)")->capture_default_str();
  c->add_option("--top-p", f->o.top_p, "sample within the smallest set of tokens whose probability reaches p")->capture_default_str();
  c->add_option("--repetition-penalty", f->o.repetition_penalty, "> 1 discourages tokens already present")->capture_default_str();
  c->add_option("--stop", f->stop, "stop before this text (repeatable)");
  c->add_option("--seed", f->o.seed, "sampling seed")->capture_default_str();
  c->add_flag("--no-cache", f->no_cache, "recompute the whole sequence each step (slow; the cache's reference)");
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  return [f]() {
    runtime_init(f->threads);
    check_generate_options(f->o);
    CausalLmModel m = load_causal_lm_or_adapter(f->model);
    Tokenizer tok = Tokenizer::load(f->model);
    GenerateOptions o = f->o;
    o.use_cache = !f->no_cache;
    std::string prompt = f->prompt;
    if (!f->chat_template.empty()) {
      // an adapter directory carries the base model's tokenizer files, templates included
      const ChatFormat format(f->chat_template, f->model, tok);
      prompt = format.generation_prompt({{"user", f->prompt}});
      if (!format.end_of_turn().empty()) f->stop.push_back(format.end_of_turn());
    }
    const std::string text = complete(*m.model, tok, m.config.eos_token_id, prompt, o, f->stop).text;
    fmt::print("{}\n", text);
    return 0;
  };
}

}  // namespace kotsu::cli
