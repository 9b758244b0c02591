#include "kotsu/infer/complete.hpp"

#include <algorithm>
#include <memory>

#include "kotsu/core/error.hpp"
#include "kotsu/data/lm_data.hpp"

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

namespace {
// One completion's stop strings and streaming: the on_token hook that generation calls, and the
// Completion made of the tokens it generated.
struct Tracker {
  const Tokenizer& tok;
  CompletionJob job;
  int64_t eos;
  bool stopped = false, cancelled = false;
  size_t hold = 0, sent = 0;
  std::vector<int64_t> ids;

  Tracker(const Tokenizer& t, CompletionJob j, int64_t eos_id) : tok(t), job(std::move(j)), eos(eos_id) {
    for (const auto& s : job.stop) hold = std::max(hold, s.empty() ? 0 : s.size() - 1);
    ids = prompt_ids(tok, job.prompt);
  }

  GenerateOptions options() {
    GenerateOptions o = job.options;
    o.stop_ids.clear();
    if (eos >= 0) o.stop_ids.push_back(eos);
    o.on_token = nullptr;
    if (!job.stop.empty() || job.on_text)  // decoding the text so far each step costs only when something needs it
      o.on_token = [this](int64_t, const std::vector<int64_t>& generated) {
        const std::string so_far = tok.decode(generated);
        for (const auto& s : job.stop)
          if (!s.empty() && so_far.find(s) != std::string::npos) return stopped = true;
        if (job.on_text) {
          const size_t upto = utf8_safe_end(so_far, sent, so_far.size() > hold ? so_far.size() - hold : 0);
          if (upto > sent) {
            if (!job.on_text(so_far.substr(sent, upto - sent))) return cancelled = true;
            sent = upto;
          }
        }
        return false;
      };
    return o;
  }

  Completion finish(const std::vector<int64_t>& out) {
    Completion c;
    c.prompt_tokens = static_cast<int64_t>(ids.size());
    c.completion_tokens = static_cast<int64_t>(out.size());
    c.text = tok.decode(out);
    for (const auto& s : job.stop) {
      const auto at = s.empty() ? std::string::npos : c.text.find(s);
      if (at != std::string::npos) c.text.resize(at);
    }
    const bool eos_seen = eos >= 0 && !out.empty() && out.back() == eos;
    c.finish_reason = stopped || eos_seen ? "stop" : "length";
    if (job.on_text && !cancelled && c.text.size() > sent) job.on_text(c.text.substr(sent));
    return c;
  }
};
}  // namespace

std::vector<Completion> complete_batch(CausalLm& model, const Tokenizer& tok, int64_t eos_token_id, std::vector<CompletionJob> jobs) {
  std::vector<std::unique_ptr<Tracker>> trackers;
  std::vector<GenerateJob> gen;
  for (auto& j : jobs) {
    trackers.push_back(std::make_unique<Tracker>(tok, std::move(j), eos_token_id));
    gen.push_back({trackers.back()->ids, trackers.back()->options()});
  }
  const auto outs = generate_batch(model, gen);
  std::vector<Completion> done;
  for (size_t i = 0; i < trackers.size(); ++i) done.push_back(trackers[i]->finish(outs[i]));
  return done;
}

Completion complete(CausalLm& model, const Tokenizer& tok, int64_t eos_token_id, const std::string& prompt, GenerateOptions o,
                    const std::vector<std::string>& stop, const TextSink& on_text) {
  std::vector<CompletionJob> one;
  one.push_back({prompt, std::move(o), stop, on_text});
  return complete_batch(model, tok, eos_token_id, std::move(one)).front();
}

}  // namespace kotsu
