// int8 (models/quantize, export/int8_export, serve --int8): per-channel weight quantisation, int8 dense
// layers close to float ones, the int8 directory format read back by every loader, and the served model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "kotsu/core/error.hpp"
#include "kotsu/export/int8_export.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/models/causal_lm.hpp"
#include "kotsu/models/dense.hpp"
#include "kotsu/models/image_model.hpp"
#include "kotsu/models/quantize.hpp"
#include "kotsu/models/text_model.hpp"
#include "kotsu/serve/served_model.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

namespace fs = std::filesystem;

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs().max() / want.abs().max()).item<double>();
}

TEST(Quantize, WeightsRoundTripWithinHalfAStepPerOutputChannel) {
  torch::manual_seed(1);
  for (bool fifo : {false, true}) {
    torch::Tensor w = torch::randn({24, 40});
    w[3].mul_(100);  // one channel much larger: its scale must not spoil the others
    const Int8Weight q = quantize_weight_int8(fifo ? w.t().contiguous() : w, fifo);
    EXPECT_EQ(q.q.scalar_type(), torch::kInt8);
    const torch::Tensor back = dequantize_weight_int8(q);
    const torch::Tensor rows_scale = fifo ? q.scale.t() : q.scale;  // [24, 1]
    ASSERT_EQ(rows_scale.sizes(), (std::vector<int64_t>{24, 1}));
    const torch::Tensor err = ((fifo ? back.t() : back) - w).abs();
    EXPECT_TRUE((err <= rows_scale / 2 + 1e-6).all().item<bool>()) << "fifo " << fifo;
    EXPECT_EQ(q.q.abs().amax().item<int>(), 127);
    EXPECT_LT(rows_scale[0].item<float>() * 10, rows_scale[3].item<float>());
  }
  // a convolution [out, in, kh, kw], and an all-zero channel (scale 1, zeros back)
  torch::Tensor c = torch::randn({8, 3, 3, 3});
  c[5].zero_();
  const Int8Weight q = quantize_weight_int8(c, false);
  ASSERT_EQ(q.scale.sizes(), (std::vector<int64_t>{8, 1, 1, 1}));
  EXPECT_TRUE(torch::equal(dequantize_weight_int8(q)[5], torch::zeros({3, 3, 3})));
  EXPECT_LT(rel_err(dequantize_weight_int8(q), c), 0.01);
}

TEST(Quantize, Int8DenseLayersComputeCloseToFloat) {
  if (!int8_supported()) KOTSU_SKIP() << "this libtorch has no quantized engine";
  torch::manual_seed(2);
  for (bool fifo : {false, true}) {
    Dense d(64, 48, true, fifo);
    {
      torch::NoGradGuard ng;
      d->bias.copy_(torch::randn({48}) * 0.1);
    }
    const torch::Tensor x = torch::randn({3, 5, 64});
    torch::NoGradGuard ng;
    const torch::Tensor want = d->forward(x);
    EXPECT_GT(d->quantize_int8(), 0);
    EXPECT_TRUE(d->is_int8());
    EXPECT_EQ(d->weight.numel(), 0);  // the float weight is released
    const torch::Tensor got = d->forward(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(rel_err(got, want), 0.03) << "fifo " << fifo;
    EXPECT_GT((got - want).abs().max().item<double>(), 0.0);  // it really is another computation
  }
  // a layer with a LoRA branch is refused
  Dense l(16, 16, true);
  l->add_lora({4, 8, 0, false}, 1);
  EXPECT_THROW(l->quantize_int8(), Error);
}

TEST(Quantize, Int8TextClassifierAgreesWithFloat) {
  if (!int8_supported()) KOTSU_SKIP() << "this libtorch has no quantized engine";
  TextModel m = load_text_model(test::fixture("tiny_bert"));
  m.model->eval();
  torch::manual_seed(3);
  TextBatch b;
  b.input_ids = torch::randint(5, m.config.vocab_size, {16, 12}, torch::kLong);
  b.attention_mask = torch::ones({16, 12}, torch::kLong);
  torch::NoGradGuard ng;
  const torch::Tensor want = torch::softmax(m.model->logits(b), -1);
  const QuantizeReport r = quantize_dynamic_int8(*m.model);
  EXPECT_EQ(r.layers, m.config.num_hidden_layers * 6);  // q, k, v, attention output, intermediate, output
  EXPECT_EQ(r.float_bytes, 4 * r.int8_bytes);
  const torch::Tensor got = torch::softmax(m.model->logits(b), -1);
  EXPECT_LT((got - want).abs().max().item<double>(), 0.02);
  EXPECT_TRUE(torch::equal(got.argmax(-1), want.argmax(-1)));
}

TEST(Int8Export, WritesAQuarterSizeDirectoryThatEveryLoaderReads) {
  const std::string dir = test::temp_dir("int8-export");
  // text classifier
  const Int8ExportReport r = export_int8(test::fixture("tiny_bert"), dir + "/bert", false);
  EXPECT_EQ(r.architecture, "bert");
  EXPECT_GT(r.tensors, 0);
  EXPECT_TRUE(is_int8_model_dir(dir + "/bert"));
  EXPECT_FALSE(is_int8_model_dir(test::fixture("tiny_bert")));
  EXPECT_TRUE(fs::exists(dir + "/bert/vocab.txt") || fs::exists(dir + "/bert/tokenizer.json"));
  SafetensorsReader st(dir + "/bert/model.safetensors");
  const TensorInfo* q = st.find("bert.encoder.layer.0.attention.self.query.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, "I8");
  ASSERT_NE(st.find("bert.encoder.layer.0.attention.self.query.weight_scale"), nullptr);
  EXPECT_LT(fs::file_size(dir + "/bert/model.safetensors"), fs::file_size(test::fixture("tiny_bert/model.safetensors")));
  TextModel a = load_text_model(test::fixture("tiny_bert")), b = load_text_model(dir + "/bert");
  a.model->eval(), b.model->eval();
  TextBatch batch;
  batch.input_ids = torch::randint(5, a.config.vocab_size, {4, 9}, torch::kLong);
  batch.attention_mask = torch::ones({4, 9}, torch::kLong);
  {
    torch::NoGradGuard ng;
    EXPECT_LT(rel_err(b.model->logits(batch), a.model->logits(batch)), 0.05);
  }
  // GPT-2 (Conv1D weights [in, out]: scales per column)
  export_int8(test::fixture("tiny_gpt2"), dir + "/gpt2", false);
  CausalLmModel g0 = load_causal_lm(test::fixture("tiny_gpt2")), g1 = load_causal_lm(dir + "/gpt2");
  g0.model->eval(), g1.model->eval();
  const torch::Tensor ids = torch::randint(0, g0.config.vocab_size, {2, 7}, torch::kLong);
  {
    torch::NoGradGuard ng;
    EXPECT_LT(rel_err(g1.model->logits(ids), g0.model->logits(ids)), 0.05);
  }
  // a LoRA adapter must be merged first; an existing output is kept
  EXPECT_THROW(export_int8(test::fixture("tiny_gpt2_lora"), dir + "/lora", false), Error);
  EXPECT_FALSE(fs::exists(dir + "/lora"));
  EXPECT_THROW(export_int8(test::fixture("tiny_bert"), dir + "/bert", false), Error);
  // a scale that does not fit its weight is named on load
  save_safetensors(dir + "/bad.safetensors", {{"w", torch::ones({4, 3}, torch::kInt8)}, {"w_scale", torch::ones({3, 1})}});
  try {
    load_safetensors(dir + "/bad.safetensors");
    ADD_FAILURE() << "a mis-shaped scale was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("w_scale"), std::string::npos) << e.what();
  }
}

TEST(Int8Export, ImageClassifierConvolutionsAreInt8) {
  ImageConfig c;
  c.model_type = "resnet";
  c.embedding_size = 8, c.hidden_sizes = {8, 16}, c.depths = {1, 1}, c.layer_type = "basic";
  c.labels = {"a", "b"};
  ImageModel m;
  m.config = c;
  m.model = make_image_classifier(c, 2);
  m.model->init_all(4);
  m.model->eval();
  const std::string dir = test::temp_dir("int8-image");
  save_image_model(m, dir + "/float");
  const Int8ExportReport r = export_int8(dir + "/float", dir + "/int8", false);
  EXPECT_EQ(r.architecture, "resnet");
  EXPECT_EQ(r.tensors, 6);  // stem, 2 + 2 block convs, 1 shortcut
  SafetensorsReader st(dir + "/int8/model.safetensors");
  EXPECT_EQ(st.find("resnet.embedder.embedder.convolution.weight")->dtype, "I8");
  EXPECT_EQ(st.find("classifier.1.weight")->dtype, "F32");  // the head stays float
  ImageModel back = load_image_model(dir + "/int8");
  back.model->eval();
  torch::NoGradGuard ng;
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  EXPECT_LT(rel_err(back.model->features(x), m.model->features(x)), 0.05);
}

TEST(Int8Serve, ServedModelRunsInt8AndAnswersLikeFloat) {
  if (!int8_supported()) KOTSU_SKIP() << "this libtorch has no quantized engine";
  ServedModel f({test::fixture("tiny_bert"), "1"}, "cpu", "", false);
  ServedModel q({test::fixture("tiny_bert"), "1"}, "cpu", "", true);
  EXPECT_FALSE(f.int8());
  EXPECT_TRUE(q.int8());
  std::vector<ServeInput> a(3), b(3);
  const char* texts[] = {"where is my card", "the transfer failed twice", "thank you"};
  for (int i = 0; i < 3; ++i) a[i].text = b[i].text = texts[i];
  const auto fo = f.classify(a), qo = q.classify(b);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(fo[i].label, qo[i].label);
    for (size_t k = 0; k < fo[i].probs.size(); ++k) EXPECT_NEAR(fo[i].probs[k], qo[i].probs[k], 0.02);
  }
  // a directory written by export --int8 is served in int8 without the flag
  const std::string dir = test::temp_dir("int8-serve");
  export_int8(test::fixture("tiny_bert"), dir + "/m", false);
  ServedModel e({dir + "/m", "1"}, "cpu", "", false);
  EXPECT_TRUE(e.int8());
}

}  // namespace
}  // namespace kotsu
