// eval/html_report and `kotsu report`: the overfitting check on planted histories, every chart and table
// of the run page, and the page of a real run (train, eval, report) opened in headless Chromium: rendered
// with the named charts and tables, a screenshot taken, no console errors.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "kotsu/eval/html_report.hpp"
#include "kotsu/eval/metrics.hpp"
#include "kotsu/eval/scores.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/vision/image.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

nlohmann::json history(const std::vector<std::array<double, 3>>& epochs) {  // train_loss, val_loss, val_accuracy
  nlohmann::json h = nlohmann::json::array();
  for (size_t i = 0; i < epochs.size(); ++i)
    h.push_back({{"epoch", i + 1}, {"step", 10 * (i + 1)}, {"train_loss", epochs[i][0]}, {"val_loss", epochs[i][1]}, {"val_accuracy", epochs[i][2]}});
  return h;
}

TEST(Report, OverfittingWarnsOnlyWhenValidationDriftsAway) {
  // the validation metric peaks at epoch 2, then the validation loss climbs while the training loss falls
  auto over = check_overfitting(history({{1.0, 0.9, 0.6}, {0.6, 0.5, 0.8}, {0.3, 0.6, 0.78}, {0.15, 0.8, 0.77}, {0.05, 1.1, 0.75}}), "accuracy");
  EXPECT_TRUE(over.warn) << over.message;
  EXPECT_EQ(over.best_epoch, 2);
  EXPECT_NE(over.message.find("peaked at epoch 2"), std::string::npos) << over.message;
  // still improving at the end
  auto good = check_overfitting(history({{1.0, 0.9, 0.6}, {0.6, 0.5, 0.8}, {0.4, 0.45, 0.82}, {0.3, 0.4, 0.85}}), "accuracy");
  EXPECT_FALSE(good.warn);
  EXPECT_NE(good.message.find("no sign of overfitting"), std::string::npos) << good.message;
  // a plateau: no better metric after epoch 2, but the losses stay together
  auto flat = check_overfitting(history({{1.0, 0.9, 0.6}, {0.5, 0.52, 0.8}, {0.49, 0.51, 0.8}, {0.5, 0.5, 0.79}, {0.48, 0.5, 0.8}}), "accuracy");
  EXPECT_FALSE(flat.warn);
  EXPECT_NE(flat.message.find("plateau"), std::string::npos) << flat.message;
  // no validation metric at all
  auto none = check_overfitting(nlohmann::json::array({{{"epoch", 1}, {"train_loss", 0.3}}}), "accuracy");
  EXPECT_FALSE(none.warn);
  EXPECT_NE(none.message.find("cannot be judged"), std::string::npos);
}

// An eval report as kotsu eval writes it, for 3 classes (one label needing escaping).
nlohmann::json eval_report() {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 1);
  std::vector<int64_t> y, pred;
  std::vector<double> probs;
  for (int i = 0; i < 150; ++i) {
    const int64_t c = i % 3;
    double l[3], sum = 0;
    for (int j = 0; j < 3; ++j) sum += (l[j] = std::exp(noise(rng) + (j == c ? 1.5 : 0)));
    for (double v : l) probs.push_back(v / sum);
    y.push_back(c);
    pred.push_back(std::max_element(l, l + 3) - l);
  }
  const std::vector<std::string> labels = {"card", "loan", "<script>alert(1)</script>"};
  nlohmann::json r = metrics_json(classification_metrics(y, pred, 3), labels);
  r["scores"] = score_report(y, probs, 3, labels, 100, 0);
  r["data"] = "test.csv";
  return r;
}

TEST(Report, PageHasEveryChartAndTableAndEscapesLabels) {
  nlohmann::json run = {{"status", "finished"}, {"task", "text-classification"}, {"n_train", 450}, {"n_val", 50},
                        {"labels", {"card", "loan", "x"}},
                        {"options", {{"model", "m"}, {"strategy", "full"}, {"metric", "accuracy"}, {"data", "train.csv"}, {"lr", 2e-5}}},
                        {"history", history({{1.0, 0.9, 0.6}, {0.6, 0.5, 0.8}, {0.3, 0.6, 0.78}, {0.15, 0.8, 0.77}, {0.05, 1.1, 0.75}})}};
  const std::string html = run_report_html(run, eval_report(), "runs/a");
  for (const char* id : {"summary", "overfitting", "learning-curves-loss", "learning-curves-metric", "headline-metrics", "per-class",
                         "confusion-matrix", "roc-curve", "pr-curve", "reliability-diagram", "history"})
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_NE(html.find("class=\"warn\""), std::string::npos);  // the planted overfitting
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);   // labels are escaped
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("src=\""), std::string::npos);  // nothing fetched: no external script, image or style
  EXPECT_EQ(html.find("<link"), std::string::npos);
  // 4 ROC curves (micro + 3 classes), 9 heat-map cells
  size_t paths = 0, cells = 0;
  const size_t roc = html.find("id=\"roc-curve\""), pr = html.find("id=\"pr-curve\"");
  for (size_t p = html.find("class=\"series\"", roc); p != std::string::npos && p < pr; p = html.find("class=\"series\"", p + 1)) ++paths;
  for (size_t p = html.find("class=\"cell\""); p != std::string::npos; p = html.find("class=\"cell\"", p + 1)) ++cells;
  EXPECT_EQ(paths, 4u);
  EXPECT_EQ(cells, 9u);
  // without an evaluation the page says how to make one
  const std::string bare = run_report_html(run, nlohmann::json(), "runs/a");
  EXPECT_NE(bare.find("kotsu eval --run runs/a"), std::string::npos);
  EXPECT_EQ(bare.find("id=\"confusion-matrix\""), std::string::npos);
}

TEST(Report, CliReportOfARealRunRendersInChromium) {
  const std::string dir = test::temp_dir("report");
  const std::string cli = KOTSU_CLI;
  int status = 0;
  std::string out = test::run_command(cli + " train --model " + test::fixture("tiny_bert_init") + " --data " + test::fixture("task/train.csv") +
                                          " --out " + dir + "/run --strategy full --lr 1e-3 --batch-size 8 --epochs 4 --patience 0 --seed 5 --quiet",
                                      &status);
  ASSERT_EQ(status, 0) << out;
  out = test::run_command(cli + " report " + dir + "/run", &status);  // before any evaluation: curves only, and a hint
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("no evaluation report"), std::string::npos) << out;
  out = test::run_command(cli + " eval --run " + dir + "/run --data " + test::fixture("task/test.jsonl"), &status);
  ASSERT_EQ(status, 0) << out;
  out = test::run_command(cli + " report " + dir + "/run --out " + dir + "/page.html", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("eval-test.json"), std::string::npos) << out;
  out = test::run_command(cli + " report " + dir + "/nowhere", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("nowhere"), std::string::npos) << out;

  auto page = test::open_in_chromium(dir + "/page.html", dir + "/page.png");
  if (!page.available) KOTSU_SKIP() << "chromium is not installed (scripts/setup installs it)";
  EXPECT_EQ(page.console, "") << "console messages";
  for (const char* id : {"summary", "overfitting", "learning-curves-loss", "learning-curves-metric", "headline-metrics", "per-class",
                         "confusion-matrix", "roc-curve", "pr-curve", "reliability-diagram", "history"})
    EXPECT_NE(page.dom.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  Image shot = decode_image(dir + "/page.png");
  EXPECT_EQ(shot.width, 1200);
  std::set<uint32_t> colours;
  for (size_t i = 0; i + 2 < shot.pixels.size(); i += 3 * 7)
    colours.insert(shot.pixels[i] << 16 | shot.pixels[i + 1] << 8 | shot.pixels[i + 2]);
  EXPECT_GT(colours.size(), 50u) << "the screenshot looks blank";
}

}  // namespace
}  // namespace kotsu
