#include "kotsu/infer/prompt_eval.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/data/lm_data.hpp"
#include "kotsu/eval/metrics.hpp"
#include "kotsu/models/lora.hpp"
#include "kotsu/text/chat_format.hpp"

namespace kotsu {

namespace {

std::string fill(const std::string& tpl, const std::string& text) {
  std::string out;
  size_t a = 0, at;
  while ((at = tpl.find("{text}", a)) != std::string::npos) {
    out += tpl.substr(a, at - a) + text;
    a = at + 6;
  }
  return out + tpl.substr(a);
}

// k demonstrations drawn class-balanced (round-robin over the labels in a seeded order of each class).
std::vector<size_t> draw_shots(const TextDataset& d, int64_t k, uint64_t seed) {
  std::map<std::string, std::vector<size_t>> by_label;
  for (size_t i = 0; i < d.size(); ++i) by_label[d.labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  for (auto& [l, v] : by_label) std::shuffle(v.begin(), v.end(), rng);
  std::vector<size_t> out;
  for (size_t round = 0; static_cast<int64_t>(out.size()) < k; ++round) {
    bool any = false;
    for (auto& [l, v] : by_label)
      if (round < v.size() && static_cast<int64_t>(out.size()) < k) out.push_back(v[round]), any = true;
    if (!any) throw Error(d.path, "shots", "has fewer than " + std::to_string(k) + " examples for the demonstrations");
  }
  std::shuffle(out.begin(), out.end(), rng);  // no label order to copy
  return out;
}

}  // namespace

nlohmann::json prompt_eval(const PromptEvalOptions& o) {
  runtime_init(o.threads);
  for (const auto& t : o.templates)
    if (t.find("{text}") == std::string::npos) throw Error("options", "template", "'" + t + "' has no {text} placeholder");
  const TextDataset data = load_text_dataset(o.data, o.columns);
  const std::vector<std::string> labels = collect_labels(data);
  const std::vector<int64_t> y = label_ids(data, labels);
  TextDataset shots_data;
  const bool need_shots = std::any_of(o.shots.begin(), o.shots.end(), [](int64_t k) { return k > 0; });
  if (need_shots) {
    if (o.shots_data.empty()) throw Error("options", "shots_from", "k-shot prompts need a file of demonstrations (not the evaluated file)");
    shots_data = load_text_dataset(o.shots_data, o.columns);
  }
  for (const auto& [label, v] : o.verbalizers)
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) throw Error("options", "verbalizer", "'" + label + "' is not a label of " + o.data);
  auto verbalizer = [&](const std::string& label) {
    auto it = o.verbalizers.find(label);
    return it != o.verbalizers.end() ? it->second : " " + label;
  };

  CausalLmModel m = load_causal_lm_or_adapter(o.model);
  m.model->eval();
  const Tokenizer tok = Tokenizer::load(o.model);
  const ChatFormat format(o.chat_template, o.model, tok);
  std::vector<std::vector<int64_t>> cont(labels.size());
  for (size_t l = 0; l < labels.size(); ++l) {
    cont[l] = tok.encode_ids(verbalizer(labels[l]));
    if (cont[l].empty()) throw Error("options", "verbalizer", "label '" + labels[l] + "' has an empty verbalizer");
  }
  torch::NoGradGuard ng;
  nlohmann::json results = nlohmann::json::array();
  for (const auto& tpl : o.templates) {
    for (const int64_t k : o.shots) {
      if (k < 0) throw Error("options", "shots", "must be >= 0");
      std::string demos;
      if (k > 0)
        for (size_t i : draw_shots(shots_data, k, o.seed)) demos += fill(tpl, shots_data.texts[i]) + verbalizer(shots_data.labels[i]) + o.separator;
      std::vector<int64_t> pred;
      nlohmann::json examples = nlohmann::json::array();
      int64_t longest = 0;
      for (size_t i = 0; i < data.size(); ++i) {
        std::string prompt = demos + fill(tpl, data.texts[i]);
        if (!o.chat_template.empty()) prompt = format.generation_prompt({{"user", prompt}});
        const std::vector<int64_t> ids = prompt_ids(tok, prompt);
        longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
        KvCache cache;
        const auto last = m.model->logits(torch::tensor(ids, torch::kLong).unsqueeze(0), &cache).select(1, -1).squeeze(0).to(torch::kFloat);
        std::vector<double> score(labels.size());
        for (size_t l = 0; l < labels.size(); ++l) {
          // log p(first token | prompt), then the rest from a copy of the prompt's cache
          double s = torch::log_softmax(last, -1)[cont[l][0]].item<double>();
          if (cont[l].size() > 1) {
            KvCache c = cache;
            const auto lp = torch::log_softmax(m.model->logits(torch::tensor(std::vector<int64_t>(cont[l].begin(), cont[l].end() - 1), torch::kLong).unsqueeze(0), &c)
                                                   .squeeze(0)
                                                   .to(torch::kFloat),
                                               -1);
            for (size_t t = 1; t < cont[l].size(); ++t) s += lp[static_cast<int64_t>(t - 1)][cont[l][t]].item<double>();
          }
          score[l] = o.mean ? s / static_cast<double>(cont[l].size()) : s;
        }
        const int64_t p = static_cast<int64_t>(std::max_element(score.begin(), score.end()) - score.begin());
        pred.push_back(p);
        examples.push_back({{"line", data.lines[i]}, {"label", data.labels[i]}, {"predicted", labels[static_cast<size_t>(p)]}, {"scores", score}});
      }
      const ClassificationMetrics met = classification_metrics(y, pred, static_cast<int64_t>(labels.size()));
      nlohmann::json r = {{"template", tpl}, {"shots", k}, {"examples", data.size()}, {"longest_prompt_tokens", longest}, {"metrics", metrics_json(met, labels)},
                          {"accuracy", met.accuracy}, {"macro_f1", met.macro_f1}, {"predictions", examples}};
      results.push_back(r);
    }
  }
  nlohmann::json verbs = nlohmann::json::object();
  for (const auto& l : labels) verbs[l] = verbalizer(l);
  return {{"model", o.model}, {"data", o.data}, {"labels", labels}, {"verbalizers", verbs}, {"score", o.mean ? "mean log-probability per token" : "summed log-probability"},
          {"chat_template", o.chat_template}, {"results", results}};
}

}  // namespace kotsu
