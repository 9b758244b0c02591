// kotsu generate --model DIR --prompt TEXT: continues a prompt with a causal LM (models/generate), greedy by
// default, sampled with --temperature (and --top-k / --top-p); stops at the model's EOS, at any --stop
// string (cut before it) or after --max-new-tokens.
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/models/generate.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/text/chat_format.hpp"
#include "kotsu/train/lm_data.hpp"
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
    if (f->o.max_new_tokens < 1) throw Error("options", "max_new_tokens", "must be >= 1");
    if (f->o.temperature < 0) throw Error("options", "temperature", "must be >= 0");
    if (f->o.top_p <= 0 || f->o.top_p > 1) throw Error("options", "top_p", "must be in (0, 1]");
    if (f->o.top_k < 0) throw Error("options", "top_k", "must be >= 0");
    if (f->o.repetition_penalty <= 0) throw Error("options", "repetition_penalty", "must be > 0");
    CausalLmModel m = load_causal_lm_or_adapter(f->model);
    Tokenizer tok = Tokenizer::load(f->model);
    GenerateOptions o = f->o;
    o.use_cache = !f->no_cache;
    if (m.config.eos_token_id >= 0) o.stop_ids.push_back(m.config.eos_token_id);
    std::string prompt = f->prompt;
    if (!f->chat_template.empty()) {
      // an adapter directory carries the base model's tokenizer files, templates included
      const ChatFormat format(f->chat_template, f->model, tok);
      prompt = format.generation_prompt({{"user", f->prompt}});
      if (!format.end_of_turn().empty()) f->stop.push_back(format.end_of_turn());
    }
    if (!f->stop.empty())  // decoding the text so far each step costs only when there are stop strings to look for
      o.on_token = [&](int64_t, const std::vector<int64_t>& generated) {
        const std::string so_far = tok.decode(generated);
        for (const auto& s : f->stop)
          if (!s.empty() && so_far.find(s) != std::string::npos) return true;
        return false;
      };
    std::string text = tok.decode(generate(*m.model, prompt_ids(tok, prompt), o));
    for (const auto& s : f->stop) {
      const auto at = s.empty() ? std::string::npos : text.find(s);
      if (at != std::string::npos) text.resize(at);
    }
    fmt::print("{}\n", text);
    return 0;
  };
}

}  // namespace kotsu::cli
