#include "kotsu/train/complete.hpp"

#include "kotsu/core/error.hpp"
#include "kotsu/train/lm_data.hpp"

namespace kotsu {

void check_generate_options(const GenerateOptions& o) {
  if (o.max_new_tokens < 1) throw Error("options", "max_new_tokens", "must be >= 1");
  if (o.temperature < 0) throw Error("options", "temperature", "must be >= 0");
  if (o.top_p <= 0 || o.top_p > 1) throw Error("options", "top_p", "must be in (0, 1]");
  if (o.top_k < 0) throw Error("options", "top_k", "must be >= 0");
  if (o.repetition_penalty <= 0) throw Error("options", "repetition_penalty", "must be > 0");
}

Completion complete(CausalLm& model, const Tokenizer& tok, int64_t eos_token_id, const std::string& prompt, GenerateOptions o,
                    const std::vector<std::string>& stop) {
  o.stop_ids.clear();
  if (eos_token_id >= 0) o.stop_ids.push_back(eos_token_id);
  bool stopped = false;
  o.on_token = nullptr;
  if (!stop.empty())  // decoding the text so far each step costs only when there are stop strings to look for
    o.on_token = [&](int64_t, const std::vector<int64_t>& generated) {
      const std::string so_far = tok.decode(generated);
      for (const auto& s : stop)
        if (!s.empty() && so_far.find(s) != std::string::npos) return stopped = true;
      return false;
    };
  const std::vector<int64_t> ids = prompt_ids(tok, prompt);
  const std::vector<int64_t> out = generate(model, ids, o);
  Completion c;
  c.prompt_tokens = static_cast<int64_t>(ids.size());
  c.completion_tokens = static_cast<int64_t>(out.size());
  c.text = tok.decode(out);
  for (const auto& s : stop) {
    const auto at = s.empty() ? std::string::npos : c.text.find(s);
    if (at != std::string::npos) c.text.resize(at);
  }
  const bool eos = eos_token_id >= 0 && !out.empty() && out.back() == eos_token_id;
  c.finish_reason = stopped || eos ? "stop" : "length";
  return c;
}

}  // namespace kotsu
