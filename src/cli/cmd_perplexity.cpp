// kotsu perplexity --model DIR --data FILE: perplexity of a causal LM on a text file (infer/evaluate_lm),
// the whole file tokenised as one text (no special tokens added), read in sliding windows.
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/infer/evaluate_lm.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu::cli {

Action add_perplexity(CLI::App& app) {
  struct Flags {
    std::string model, data;
    int64_t max_len = 0, stride = 0;
    int threads = 0;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("perplexity", "perplexity of a causal language model on a held-out text file");
  c->add_option("--model", f->model, "Hugging Face model directory (GPT-2, Llama, Mistral, Qwen2) with its tokenizer")->required();
  c->add_option("--data", f->data, "UTF-8 text file")->required();
  c->add_option("--max-len", f->max_len, "window length in tokens (default: the model's positions, at most 1024)");
  c->add_option("--stride", f->stride, "tokens the window moves by (default: half the window)");
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_flag("--json", f->json, "print a JSON object");
  return [f]() {
    runtime_init(f->threads);
    CausalLmModel m = load_causal_lm(f->model);
    Tokenizer tok = Tokenizer::load(f->model);
    const std::vector<int64_t> ids = tok.encode_ids(read_file(f->data));
    if (ids.size() < 2) throw Error(f->data, "", "has fewer than two tokens: nothing to score");
    const int64_t max_len = f->max_len > 0 ? f->max_len : std::min<int64_t>(m.config.max_positions, 1024);
    const int64_t stride = f->stride > 0 ? f->stride : std::max<int64_t>(1, max_len / 2);
    const Perplexity p = evaluate_perplexity(*m.model, ids, max_len, stride);
    if (f->json) {
      fmt::print("{}\n", nlohmann::json{{"model", f->model}, {"data", f->data}, {"tokens", p.tokens}, {"windows", p.windows}, {"max_len", max_len},
                                        {"stride", stride}, {"nll", p.nll}, {"mean_nll", p.mean_nll()}, {"perplexity", p.perplexity()}}
                                .dump(2));
    } else {
      fmt::print("{} on {}: perplexity {:.4f} (mean NLL {:.4f} nats over {} tokens; {} windows of {} moving by {})\n", f->model, f->data,
                 p.perplexity(), p.mean_nll(), p.tokens, p.windows, max_len, stride);
    }
    return 0;
  };
}

}  // namespace kotsu::cli
