#include "kotsu/train/complete.hpp"

#include <algorithm>

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

namespace {
// The end e <= upto, as large as possible, such that s[from, e) does not stop inside a UTF-8 sequence.
size_t utf8_safe_end(const std::string& s, size_t from, size_t upto) {
  if (upto <= from) return from;
  size_t start = upto - 1;  // the lead byte of the last character
  while (start > from && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  const auto lead = static_cast<unsigned char>(s[start]);
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return upto - start >= need ? upto : start;
}
}  // namespace

Completion complete(CausalLm& model, const Tokenizer& tok, int64_t eos_token_id, const std::string& prompt, GenerateOptions o,
                    const std::vector<std::string>& stop, const TextSink& on_text) {
  o.stop_ids.clear();
  if (eos_token_id >= 0) o.stop_ids.push_back(eos_token_id);
  bool stopped = false, cancelled = false;
  size_t hold = 0, sent = 0;
  for (const auto& s : stop) hold = std::max(hold, s.empty() ? 0 : s.size() - 1);
  o.on_token = nullptr;
  if (!stop.empty() || on_text)  // decoding the text so far each step costs only when something needs it
    o.on_token = [&](int64_t, const std::vector<int64_t>& generated) {
      const std::string so_far = tok.decode(generated);
      for (const auto& s : stop)
        if (!s.empty() && so_far.find(s) != std::string::npos) return stopped = true;
      if (on_text) {
        const size_t upto = utf8_safe_end(so_far, sent, so_far.size() > hold ? so_far.size() - hold : 0);
        if (upto > sent) {
          if (!on_text(so_far.substr(sent, upto - sent))) return cancelled = true;
          sent = upto;
        }
      }
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
  if (on_text && !cancelled && c.text.size() > sent) on_text(c.text.substr(sent));
  return c;
}

}  // namespace kotsu
