// eval/metrics against scikit-learn's values on the same random predictions (fixtures/make_metrics_reference.py).
#include "kotsu/eval/metrics.hpp"

#include "kotsu/io/file.hpp"
#include "test_util.hpp"

using namespace kotsu;

TEST(Metrics, EqualScikitLearn) {
  auto cases = nlohmann::json::parse(read_file(test::fixture("metrics_reference.json")));
  ASSERT_GE(cases.size(), 4u);
  for (const auto& c : cases) {
    auto yt = c["y_true"].get<std::vector<int64_t>>();
    auto yp = c["y_pred"].get<std::vector<int64_t>>();
    auto m = classification_metrics(yt, yp, c["n_classes"].get<int64_t>());
    EXPECT_NEAR(m.accuracy, c["accuracy"].get<double>(), 1e-12);
    EXPECT_EQ(m.confusion, c["confusion"].get<std::vector<std::vector<int64_t>>>());
    EXPECT_EQ(m.support, c["support"].get<std::vector<int64_t>>());
    for (size_t k = 0; k < m.precision.size(); ++k) {
      EXPECT_NEAR(m.precision[k], c["precision"][k].get<double>(), 1e-12);
      EXPECT_NEAR(m.recall[k], c["recall"][k].get<double>(), 1e-12);
      EXPECT_NEAR(m.f1[k], c["f1"][k].get<double>(), 1e-12);
    }
    EXPECT_NEAR(m.macro_precision, c["macro"]["precision"].get<double>(), 1e-12);
    EXPECT_NEAR(m.macro_recall, c["macro"]["recall"].get<double>(), 1e-12);
    EXPECT_NEAR(m.macro_f1, c["macro"]["f1"].get<double>(), 1e-12);
    EXPECT_NEAR(m.weighted_precision, c["weighted"]["precision"].get<double>(), 1e-12);
    EXPECT_NEAR(m.weighted_recall, c["weighted"]["recall"].get<double>(), 1e-12);
    EXPECT_NEAR(m.weighted_f1, c["weighted"]["f1"].get<double>(), 1e-12);
    EXPECT_NEAR(m.micro_f1, c["micro"]["f1"].get<double>(), 1e-12);
  }
}

TEST(Metrics, JsonReportCarriesEverything) {
  auto m = classification_metrics({0, 1, 1, 2}, {0, 1, 2, 2}, 3);
  auto j = metrics_json(m, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.75);
  EXPECT_EQ(j["confusion_matrix"][1][2].get<int>(), 1);
  EXPECT_DOUBLE_EQ(j["per_class"]["c"]["precision"].get<double>(), 0.5);
  EXPECT_NE(metrics_text(m, {"a", "b", "c"}).find("macro avg"), std::string::npos);
}
