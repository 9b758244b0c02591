// kotsu prompt eval: a causal LM as a classifier by prompting, zero- and k-shot templates side by side
// (infer/prompt_eval).
#include <fmt/format.h>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/infer/prompt_eval.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu::cli {

Action add_prompt(CLI::App& app) {
  struct Flags {
    PromptEvalOptions o;
    std::vector<std::string> verbalizers;
    std::string out;
    bool templates_given = false;
  };
  auto f = std::make_shared<Flags>();
  auto* prompt = app.add_subcommand("prompt", "prompt engineering with causal LMs");
  prompt->require_subcommand(1);
  auto* c = prompt->add_subcommand("eval", "score prompt templates (zero- and k-shot) as a classifier on a labelled file");
  c->add_option("--model", f->o.model, "causal LM directory, or a LoRA adapter directory")->required();
  c->add_option("--data", f->o.data, "labelled file to score (.csv, .tsv, .jsonl)")->required();
  c->add_option("--text-col", f->o.columns.text, "text column")->capture_default_str();
  c->add_option("--label-col", f->o.columns.label, "label column")->capture_default_str();
  c->add_option("--template", f->o.templates, "prompt template with {text} (repeatable: compared side by side)");
  c->add_option("--shots", f->o.shots, "demonstrations before each example (repeatable, e.g. --shots 0 --shots 4)");
  c->add_option("--shots-from", f->o.shots_data, "labelled file the demonstrations are drawn from (class-balanced, seeded)");
  c->add_option("--verbalizer", f->verbalizers, "LABEL=TEXT: the continuation scored for a label (default: a space and the label)");
  c->add_option("--separator", f->o.separator, "text between demonstrations");
  c->add_option("--chat-template", f->o.chat_template, "send each prompt as a user message in this chat format (chatml, llama-3, auto, FILE.jinja)");
  c->add_flag("--mean", f->o.mean, "score verbalizers by mean log-probability per token (default: summed)");
  c->add_option("--seed", f->o.seed, "seed of the demonstrations' draw")->capture_default_str();
  c->add_option("--threads", f->o.threads, "CPU threads (0 = all cores)");
  c->add_option("--out", f->out, "write the full report (every example's scores) as JSON");
  return [f]() {
    for (const auto& v : f->verbalizers) {
      const size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) throw Error("options", "verbalizer", "'" + v + "' is not LABEL=TEXT");
      f->o.verbalizers[v.substr(0, eq)] = v.substr(eq + 1);
    }
    // unescape \n in templates and the separator typed on a command line
    auto unescape = [](std::string s) {
      std::string out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') out += '\n', ++i;
        else out += s[i];
      }
      return out;
    };
    for (auto& t : f->o.templates) t = unescape(t);
    f->o.separator = unescape(f->o.separator);
    const nlohmann::json r = prompt_eval(f->o);
    fmt::print("{:>8}  {:>6}  {:>8}  template\n", "accuracy", "shots", "macro_f1");
    for (const auto& x : r["results"]) {
      std::string t = x["template"].get<std::string>();
      for (size_t at; (at = t.find('\n')) != std::string::npos;) t.replace(at, 1, "\\n");
      fmt::print("{:8.4f}  {:>6}  {:8.4f}  {}\n", x["accuracy"].get<double>(), x["shots"].get<int64_t>(), x["macro_f1"].get<double>(), t);
    }
    if (!f->out.empty()) {
      write_atomic(f->out, r.dump(2) + "\n");
      fmt::print("report (every example's label scores) in {}\n", f->out);
    }
    return 0;
  };
}

}  // namespace kotsu::cli
