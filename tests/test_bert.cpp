// Parity of models/bert with a float64 reference forward/backward written from modeling_bert.py
// (tests/fixtures/make_tiny_bert.py): logits, features, hidden states and gradients within 1e-5.
#include <torch/torch.h>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/bert.hpp"
#include "kotsu/models/text_model.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

void check_parity(const std::string& name, bool with_head) {
  auto ref = load_safetensors(test::fixture(name + "_ref.safetensors"));
  std::vector<std::string> labels;
  if (!with_head) labels = {"a", "b", "c"};
  TextModel m = load_text_model(test::fixture(name), labels);
  EXPECT_EQ(m.load_report.head_initialised, !with_head);
  EXPECT_TRUE(m.load_report.unexpected.empty());
  m.model->eval();
  TextBatch b;
  b.input_ids = ref["input_ids"];
  b.attention_mask = ref["attention_mask"];
  b.token_type_ids = ref["token_type_ids"];
  auto hidden = m.model->encode(b);
  // kotsu computes in float32, the reference in float64: each value may carry the rounding of the longest
  // sum of a layer (intermediate_size products) at the values' magnitude, once per sum along the path
  // (query/key/value, scores, mixing, output, the two feed-forward products: 6 per layer, plus the pooler
  // and the head). The bound holds for any summation order a BLAS kernel takes.
  const double depth = 6.0 * static_cast<double>(m.config.num_hidden_layers) + 2;
  auto bound = [&](const torch::Tensor& r) { return test::float32_bound(r.abs().max().item<double>(), static_cast<double>(m.config.intermediate_size), depth); };
  // padded positions are computed but meaningless; compare real tokens only
  auto mask = ref["attention_mask"].unsqueeze(-1).to(torch::kDouble);
  EXPECT_LT(max_abs_diff(hidden * mask, ref["hidden"] * mask), bound(ref["hidden"]));
  auto feats = m.model->features(b);
  EXPECT_LT(max_abs_diff(feats, ref["features"]), bound(ref["hidden"]));
  if (!with_head) return;
  auto logits = m.model->head(feats);
  EXPECT_LT(max_abs_diff(logits, ref["logits"]), bound(ref["hidden"]));
  auto loss = torch::nn::functional::cross_entropy(logits, ref["labels"]);
  EXPECT_NEAR(loss.item<double>(), ref["loss"].item<double>(), bound(ref["logits"]));
  m.model->zero_grad();
  loss.backward();
  std::map<std::string, torch::Tensor> params;
  for (auto& p : m.model->named_parameters(true)) params[p.key()] = p.value();
  int checked = 0;
  // gradients run the same sums backwards: the same bound, at the largest gradient's magnitude (a small
  // gradient is a sum of terms as large as the others' and carries their rounding)
  double largest = 0;
  for (auto& [k, v] : ref)
    if (k.rfind("grad.", 0) == 0) largest = std::max(largest, v.abs().max().item<double>());
  for (auto& [k, v] : ref) {
    if (k.rfind("grad.", 0) != 0) continue;
    auto pname = k.substr(5);
    ASSERT_TRUE(params.count(pname)) << pname;
    EXPECT_LT(max_abs_diff(params[pname].grad(), v), test::float32_bound(largest, static_cast<double>(m.config.intermediate_size), depth)) << pname;
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

}  // namespace

TEST(Bert, ParityWithReferenceForwardAndGradients) { check_parity("tiny_bert", true); }
TEST(Bert, RobertaParityWithReferenceForwardAndGradients) { check_parity("tiny_roberta", true); }
TEST(Bert, DistilBertParityWithReferenceForwardAndGradients) { check_parity("tiny_distilbert", true); }
TEST(Bert, BaseCheckpointWithoutPrefixLoadsAndGetsFreshHead) { check_parity("tiny_bert_base", false); }

TEST(Bert, ParamGroupsCoverEveryParameterOnce) {
  TextModel m = load_text_model(test::fixture("tiny_bert"));
  size_t n = 0;
  std::vector<std::string> names;
  for (auto& g : m.model->param_groups()) {
    names.push_back(g.name);
    n += g.params.size();
  }
  EXPECT_EQ(n, m.model->parameters().size());
  EXPECT_EQ(names, (std::vector<std::string>{"embeddings", "layer.0", "layer.1", "pooler", "head"}));
  TextModel d = load_text_model(test::fixture("tiny_distilbert"));
  n = 0;
  names.clear();
  for (auto& g : d.model->param_groups()) {
    names.push_back(g.name);
    n += g.params.size();
  }
  EXPECT_EQ(n, d.model->parameters().size());
  EXPECT_EQ(names, (std::vector<std::string>{"embeddings", "layer.0", "layer.1", "head"}));
}

TEST(Bert, DistilBertConfigRoundTripsInItsOwnKeys) {
  TextModel m = load_text_model(test::fixture("tiny_distilbert"));
  std::string dir = test::temp_dir("distil-save");
  save_text_model(m, dir);
  auto j = nlohmann::json::parse(read_file(dir + "/config.json"));
  EXPECT_EQ(j["dim"], 32);
  EXPECT_EQ(j["n_layers"], 2);
  EXPECT_FALSE(j.contains("hidden_size"));
  EXPECT_EQ(j["architectures"][0], "DistilBertForSequenceClassification");
  TextModel back = load_text_model(dir);
  EXPECT_EQ(back.config.hidden_size, 32);
}

TEST(Bert, SaveThenLoadGivesIdenticalLogits) {
  TextModel m = load_text_model(test::fixture("tiny_bert"));
  m.model->eval();
  auto ref = load_safetensors(test::fixture("tiny_bert_ref.safetensors"));
  TextBatch b{ref["input_ids"], ref["attention_mask"], ref["token_type_ids"], {}};
  auto before = m.model->logits(b);
  std::string dir = test::temp_dir("bert-save");
  save_text_model(m, dir);
  TextModel back = load_text_model(dir);
  back.model->eval();
  EXPECT_TRUE(torch::equal(before, back.model->logits(b)));
  EXPECT_EQ(back.labels(), m.labels());
}

TEST(Bert, ShapeMismatchNamesTheTensor) {
  std::string dir = test::temp_dir("bert-bad");
  TextModel m = load_text_model(test::fixture("tiny_bert"));
  m.config.raw["intermediate_size"] = 48;
  m.config.intermediate_size = 48;
  auto cfg = m.config;
  save_text_model(m, dir);  // config now says 48, weights say 64
  try {
    load_text_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intermediate.dense.weight"), std::string::npos) << e.what();
  }
}
