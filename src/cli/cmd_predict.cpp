// kotsu predict --run DIR [TEXT...]: label and probabilities per text; reads lines from stdin without TEXT.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/run_status.hpp"
#include "kotsu/text/pii.hpp"
#include "kotsu/text/utf8.hpp"
#include "kotsu/vision/image.hpp"

namespace kotsu::cli {

namespace {
struct PredictFlags {
    std::string run, device = "cpu";
    std::vector<std::string> texts;
    bool json = false;
    int threads = 0;
    int64_t batch = 64, top = 5;
};

// Top classes of each picture: "path<TAB>label=p<TAB>..." or one JSON object per picture.
int predict_pictures(const PredictFlags& f) {
  ImageModel m = load_image_model(f.run);
  if (m.config.labels.empty()) throw Error(f.run, "id2label", "the model has no labels: train it first (kotsu train)");
  std::vector<std::string> paths = f.texts;
  if (paths.empty())
    for (std::string line; std::getline(std::cin, line);)
      if (!line.empty()) paths.push_back(line.back() == '\r' ? line.substr(0, line.size() - 1) : line);
  const int64_t k = std::min<int64_t>(f.top, static_cast<int64_t>(m.config.labels.size()));
  const DecisionRule rule = run_decision_rule(f.run, m.config.labels);  // --target-recall's threshold, if the run set one
  for (size_t s = 0; s < paths.size(); s += static_cast<size_t>(f.batch)) {
    std::vector<Image> images;
    const size_t e = std::min(paths.size(), s + static_cast<size_t>(f.batch));
    for (size_t i = s; i < e; ++i) images.push_back(decode_image(paths[i], static_cast<int>(m.preprocess.decode_side())));
    auto probs = predict_images(m, images, f.batch, f.device).to(torch::kFloat).contiguous();
    auto [p, c] = probs.topk(k, 1);
    for (size_t i = s; i < e; ++i) {
      const int64_t r = static_cast<int64_t>(i - s);
      if (f.json) {
        nlohmann::ordered_json j;
        j["image"] = paths[i];
        j["label"] = m.config.labels[static_cast<size_t>(decide(probs[r].data_ptr<float>(), probs.size(1), rule))];
        nlohmann::ordered_json top = nlohmann::ordered_json::array();
        for (int64_t t = 0; t < k; ++t)
          top.push_back({{"label", m.config.labels[c[r][t].item<int64_t>()]}, {"probability", p[r][t].item<float>()}});
        j["top"] = top;
        fmt::print("{}\n", j.dump());
      } else {
        std::string line = paths[i];
        for (int64_t t = 0; t < k; ++t)
          line += fmt::format("\t{}={:.4f}", m.config.labels[c[r][t].item<int64_t>()], p[r][t].item<float>());
        if (rule.active())  // the run's threshold may pick another class than the most probable
          line += "\tdecision=" + m.config.labels[static_cast<size_t>(decide(probs[r].data_ptr<float>(), probs.size(1), rule))];
        fmt::print("{}\n", line);
      }
    }
    std::fflush(stdout);
  }
  return 0;
}
}  // namespace

Action add_predict(CLI::App& app) {
  using Flags = PredictFlags;
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("predict", "predict labels for texts (arguments, or one per stdin line) or picture files");
  c->add_option("--run", f->run, "run directory written by kotsu train (or any labelled model directory)")->required();
  c->add_option("texts", f->texts, "texts to classify (picture files for an image model; stdin: one path per line)");
  c->add_option("--top", f->top, "pictures: how many classes to print")->capture_default_str();
  c->add_flag("--json", f->json, "one JSON object per line");
  c->add_option("--threads", f->threads, "CPU threads (0 = all cores)");
  c->add_option("--batch-size", f->batch, "lines per forward pass when reading stdin")->capture_default_str();
  c->add_option("--device", f->device, "cpu or cuda[:N]")->capture_default_str();
  return [f]() {
    check_device(f->device);
    if (const auto w = unfinished_run_warning(f->run); !w.empty()) fmt::print(stderr, "kotsu: {}\n", w);
    runtime_init(f->threads);
    if (is_image_model_dir(f->run)) return predict_pictures(*f);
    TextModel m = load_text_model(f->run);
    const int64_t max_len = run_max_len(f->run);
    std::unique_ptr<PiiMasker> masker;
    if (run_masks_pii(f->run)) masker = std::make_unique<PiiMasker>();
    const DecisionRule rule = run_decision_rule(f->run, m.config.labels);  // --target-recall's threshold, if the run set one
    auto emit = [&](std::vector<std::string> texts) {
      if (masker)  // the run was trained on masked texts: predict (and echo) them masked
        for (auto& t : texts) t = masker->mask(t);
      auto preds = predict_texts(m, texts, max_len, f->batch, f->device, rule);
      for (size_t i = 0; i < preds.size(); ++i) {
        const auto& p = preds[i];
        if (f->json) {
          nlohmann::ordered_json j;
          j["text"] = texts[i];
          j["label"] = p.label;
          nlohmann::ordered_json probs;
          for (size_t k = 0; k < p.probs.size(); ++k) probs[m.config.labels[k]] = p.probs[k];
          j["probabilities"] = probs;
          fmt::print("{}\n", j.dump());
        } else {
          std::string line = p.label;
          for (size_t k = 0; k < p.probs.size(); ++k) line += fmt::format("\t{}={:.4f}", m.config.labels[k], p.probs[k]);
          fmt::print("{}\n", line);
        }
      }
      std::fflush(stdout);
    };
    if (!f->texts.empty()) {
      for (const auto& t : f->texts)
        if (utf8_invalid_at(t) != std::string::npos) throw Error("<argument>", "text", "invalid UTF-8");
      emit(f->texts);
      return 0;
    }
    std::vector<std::string> batch;
    std::string line;
    size_t lineno = 0;
    while (std::getline(std::cin, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t bad = utf8_invalid_at(line);
      if (bad != std::string::npos) throw Error("<stdin>", "line " + std::to_string(lineno) + ", byte " + std::to_string(bad + 1), "invalid UTF-8");
      batch.push_back(line);
      if (static_cast<int64_t>(batch.size()) >= f->batch) {
        emit(batch);
        batch.clear();
      }
    }
    if (!batch.empty()) emit(batch);
    return 0;
  };
}

}  // namespace kotsu::cli
