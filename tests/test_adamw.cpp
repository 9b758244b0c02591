// train/adamw against torch::optim::AdamW with dense gradients and torch's clip_grad_norm_: the fused,
// row-sparse optimizer must give the same weights (rows never seen, rows seen once, rows seen often).
#include "kotsu/train/adamw.hpp"

#include <cmath>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/models/bert.hpp"
#include "kotsu/models/ops.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

using namespace kotsu;

namespace {

EncoderConfig tiny_config() { return test::tiny_encoder_config(300, 32, 4, 64); }

bool no_decay(const std::string& n) { return n.find("bias") != std::string::npos || n.find("LayerNorm") != std::string::npos; }

}  // namespace

TEST(FusedAdamW, EqualsTorchAdamWWithDenseGradients) {
  auto c = tiny_config();
  BertClassifier a(c, 3), b(c, 3);
  a.init_all(1);
  b.init_all(1);
  a.eval();  // no dropout: both see identical computations
  b.eval();
  std::vector<torch::Tensor> da, pa;
  for (auto& p : a.named_parameters()) (no_decay(p.key()) ? pa : da).push_back(p.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(da, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.1)));
  groups.emplace_back(pa, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).weight_decay(0.0)));
  torch::optim::AdamW ref(groups, torch::optim::AdamWOptions(1e-2));

  auto sparse = b.use_sparse_embedding_grads();
  ASSERT_EQ(sparse.size(), 1u);
  FusedAdamW::Group gd{{}, 0.1}, gp{{}, 0.0};
  for (auto& p : b.named_parameters()) (no_decay(p.key()) ? gp : gd).params.push_back(p.value());
  FusedAdamW fused({gd, gp}, sparse);

  torch::manual_seed(0);
  for (int step = 0; step < 6; ++step) {
    // ids from a window that moves: some rows appear once, some often, most never
    auto ids = torch::randint(5 + step * 20, 60 + step * 20, {4, 10}, torch::kLong);
    ids.index_put_({0, 0}, 0);  // the padding row
    TextBatch batch{ids, torch::ones({4, 10}, torch::kLong), {}, torch::randint(0, 3, {4}, torch::kLong)};
    const double lr = 1e-2 * (1.0 - 0.1 * step);

    auto la = torch::nn::functional::cross_entropy(a.logits(batch), batch.labels);
    ref.zero_grad();
    la.backward();
    torch::nn::utils::clip_grad_norm_(a.parameters(), 0.5);
    for (auto& g : ref.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    ref.step();

    fused.prepare(ids);
    auto lb = torch::nn::functional::cross_entropy(b.logits(batch), batch.labels);
    lb.backward();
    EXPECT_TRUE(sparse[0].grad().is_sparse());
    fused.step(lr, 0.5);
    EXPECT_NEAR(la.item<double>(), lb.item<double>(), 1e-5) << "step " << step;
  }
  fused.flush();
  auto pa_ = a.named_parameters(), pb_ = b.named_parameters();
  for (auto& p : pa_) {
    auto diff = (p.value() - pb_[p.key()]).abs().max().item<double>();
    // attention key biases have a mathematically zero gradient (softmax ignores a shift), so Adam
    // normalises float noise there and the last bits of the clip factor show: allow lr * 1e-3
    const double tol = p.key().find("key.bias") != std::string::npos ? 1e-5 : 2e-6;
    EXPECT_LT(diff, tol) << p.key();
  }
}

TEST(FusedAdamW, SaveLoadContinuesIdentically) {
  auto c = tiny_config();
  BertClassifier a(c, 2), b(c, 2);
  a.init_all(3);
  b.init_all(3);
  a.eval();
  b.eval();
  auto make = [](BertClassifier& m) {
    auto sp = m.use_sparse_embedding_grads();
    FusedAdamW::Group g{{}, 0.01};
    for (auto& p : m.parameters()) g.params.push_back(p);
    return std::make_unique<FusedAdamW>(std::vector<FusedAdamW::Group>{g}, sp);
  };
  auto oa = make(a), ob = make(b);
  auto run_step = [](BertClassifier& m, FusedAdamW& o, int s) {
    torch::manual_seed(s);
    auto ids = torch::randint(1, 200, {2, 8}, torch::kLong);
    TextBatch batch{ids, torch::ones({2, 8}, torch::kLong), {}, torch::tensor({0, 1}, torch::kLong)};
    o.prepare(ids);
    torch::nn::functional::cross_entropy(m.logits(batch), batch.labels).backward();
    o.step(1e-2, 1.0);
  };
  for (int s = 0; s < 3; ++s) {
    run_step(a, *oa, s);
    run_step(b, *ob, s);
  }
  const std::string dir = test::temp_dir("adamw-file");
  ob->save_file(dir + "/optimizer.pt");  // streamed: the same bytes as to_bytes()
  ASSERT_EQ(read_file(dir + "/optimizer.pt"), ob->to_bytes());
  auto oc = make(b);  // a fresh optimizer for b, state restored from the file a checkpoint holds
  oc->load_file(dir + "/optimizer.pt");
  { std::ofstream(dir + "/broken.pt", std::ios::binary) << ob->to_bytes().substr(0, 100); }
  try {
    make(b)->load_file(dir + "/broken.pt");
    ADD_FAILURE() << "a truncated optimizer.pt loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/broken.pt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unreadable optimizer state"), std::string::npos) << e.what();
  }
  for (int s = 3; s < 6; ++s) {
    run_step(a, *oa, s);
    run_step(b, *oc, s);
  }
  oa->flush();
  oc->flush();
  auto pb = b.named_parameters();
  for (auto& p : a.named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

// A data-parallel run trains embeddings with dense gradients, a one-process run with row-sparse ones: a
// checkpoint of either must resume in the other to the same weights as an uninterrupted run.
TEST(FusedAdamW, StateCrossesBetweenRowSparseAndDenseOptimizers) {
  auto c = tiny_config();
  auto fresh = [&] {
    auto m = std::make_unique<BertClassifier>(c, 2);
    m->init_all(5);
    m->eval();
    return m;
  };
  auto optimizer = [](BertClassifier& m, bool sparse) {
    std::vector<torch::Tensor> sp;
    if (sparse) sp = m.use_sparse_embedding_grads();
    FusedAdamW::Group g{{}, 0.01};
    for (auto& p : m.parameters()) g.params.push_back(p);
    return std::make_unique<FusedAdamW>(std::vector<FusedAdamW::Group>{g}, sp);
  };
  // The gradients of step s, computed once on `whole` (row-sparse embedding gradients) and handed to every
  // optimizer compared (densified for a dense one): the weights then differ only by what the optimizers
  // compute, never by a model whose weights moved apart feeding back through Adam's normalised steps (where
  // a gradient near 0, as an attention key bias's is, turns any rounding into a step of size lr).
  auto ids_of = [](int s) { return torch::randint(1 + 20 * s, 60 + 20 * s, {2, 8}, torch::kLong); };  // rows come and go
  auto gradients = [&](BertClassifier& m, FusedAdamW& o, int s) {
    torch::manual_seed(s);
    auto ids = ids_of(s);
    TextBatch batch{ids, torch::ones({2, 8}, torch::kLong), {}, torch::tensor({0, 1}, torch::kLong)};
    o.prepare(ids);
    torch::nn::functional::cross_entropy(m.logits(batch), batch.labels).backward();
    std::map<std::string, torch::Tensor> g;
    for (auto& p : m.named_parameters()) g[p.key()] = p.value().grad().clone();
    o.step(1e-2, 1.0);
    return std::make_pair(ids, g);
  };
  auto apply = [](BertClassifier& m, FusedAdamW& o, const torch::Tensor& ids, const std::map<std::string, torch::Tensor>& g, bool sparse) {
    o.prepare(ids);
    for (auto& p : m.named_parameters()) {
      const torch::Tensor& src = g.at(p.key());
      p.value().mutable_grad() = src.is_sparse() && !sparse ? src.to_dense() : src.clone();
    }
    o.step(1e-2, 1.0);
  };
  auto saved = [](FusedAdamW& o) {
    o.flush();  // as the trainer does before a checkpoint
    return o.to_bytes();
  };
  auto whole = fresh();
  auto ow = optimizer(*whole, true);
  std::vector<std::pair<torch::Tensor, std::map<std::string, torch::Tensor>>> steps;
  for (int s = 0; s < 6; ++s) steps.push_back(gradients(*whole, *ow, s));
  ow->flush();
  for (bool first_sparse : {true, false}) {
    auto before = fresh();
    auto ob = optimizer(*before, first_sparse);
    for (int s = 0; s < 3; ++s) apply(*before, *ob, steps[s].first, steps[s].second, first_sparse);
    const std::string state = saved(*ob);
    auto after = fresh();
    {
      torch::NoGradGuard ng;
      auto pb = before->named_parameters();
      for (auto& p : after->named_parameters()) p.value().copy_(pb[p.key()]);
    }
    auto oa = optimizer(*after, !first_sparse);
    oa->from_bytes(state);
    for (int s = 3; s < 6; ++s) apply(*after, *oa, steps[s].first, steps[s].second, !first_sparse);
    oa->flush();
    auto pw = whole->named_parameters();
    for (auto& p : after->named_parameters()) {
      // With the same gradients, m and v agree to the last bit between the paths (a dense gradient of 0 on
      // an unseen row leaves them 0 as the sparse path does); what differs is the weight decay of rows
      // not yet seen: one product of the steps' (1 - lr wd) factors on the sparse path, a multiplication per
      // step on the dense one: at most 2 x 6 x eps = 1.4e-6 of a weight (|w| <= 0.15: init std 0.02, 7
      // standard deviations, plus 6 steps of at most 3.2 lr), so 2.2e-7; 2e-6 leaves room and still fails
      // any real mismatch of the state (a step missed or taken twice moves a weight by up to lr = 1e-2).
      EXPECT_LT((p.value() - pw[p.key()]).abs().max().item<double>(), 2e-6) << p.key() << (first_sparse ? " sparse -> dense" : " dense -> sparse");
    }
  }
}

TEST(Dropout, HashMaskKeepsTheRightShareAndIsReproducible) {
  auto x = torch::ones({1000, 1000});
  auto y = hash_dropout(x, 0.1, 42);
  const double dropped = (y == 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(dropped, 0.1, 0.002);
  EXPECT_NEAR(y.max().item<double>(), 1.0 / 0.9, 1e-6);
  EXPECT_TRUE(torch::equal(y, hash_dropout(x, 0.1, 42)));
  EXPECT_FALSE(torch::equal(y, hash_dropout(x, 0.1, 43)));
  // neighbouring elements are independent: P(both dropped) ~ p^2
  auto d = (y == 0).to(torch::kDouble);
  auto both = (d.slice(1, 0, 999) * d.slice(1, 1, 1000)).mean().item<double>();
  EXPECT_NEAR(both, 0.01, 0.001);
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  auto x = torch::randn({64, 64}, torch::requires_grad());
  torch::manual_seed(5);
  auto y = kotsu::dropout(x, 0.3, true);
  y.sum().backward();
  auto kept = (y != 0).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(x.grad(), kept / 0.7));
  EXPECT_TRUE(torch::equal(kotsu::dropout(x, 0.3, false), x));
  torch::manual_seed(5);
  auto x2 = x.detach().clone();
  EXPECT_TRUE(torch::equal(kotsu::dropout(x2, 0.3, true), y.detach()));  // seeded by torch::manual_seed
}

// The moments of a row-sparse parameter (word embeddings) are written only on the rows the data touches,
// and a checkpoint streams the state to its file: a 200,000 x 128 embedding (102 MB a moment) costs its
// optimizer, a step and a checkpoint a few pages, where zeroed moments would make 205 MB resident and a
// checkpoint built in memory about twice that again.
TEST(FusedAdamW, RowSparseMomentsAndCheckpointsCostMemoryOnlyForTouchedRows) {
  auto emb = torch::randn({200000, 128}).requires_grad_();
  const auto before = emb.detach().clone();
  const int64_t moment_bytes = emb.numel() * 4;
  ASSERT_TRUE(test::reset_peak_resident()) << "/proc/self/clear_refs refused: cannot measure peak memory";
  const int64_t base = test::resident_bytes();
  FusedAdamW opt({FusedAdamW::Group{{emb}, 0.01}}, {emb});
  const auto rows = torch::tensor({3, 70000, 199999}, torch::kLong);
  for (int s = 0; s < 2; ++s) {
    opt.prepare(rows);
    emb.mutable_grad() = torch::sparse_coo_tensor(rows.unsqueeze(0), torch::ones({3, 128}), emb.sizes());
    opt.step(1e-3, 1.0);
  }
  const std::string path = test::temp_dir("adamw-sparse") + "/optimizer.pt";
  opt.save_file(path);
  const int64_t grew = test::peak_resident_bytes() - base;
  EXPECT_LT(grew, moment_bytes / 5) << "peak grew by " << grew / 1e6 << " MB; one moment is " << moment_bytes / 1e6 << " MB";
  // the state is whole: a fresh optimizer reads it back and continues identically
  auto emb2 = emb.detach().clone().requires_grad_();
  FusedAdamW opt2({FusedAdamW::Group{{emb2}, 0.01}}, {emb2});
  opt2.load_file(path);
  for (auto* o : {&opt, &opt2}) {
    auto& p = o == &opt ? emb : emb2;
    o->prepare(rows);
    p.mutable_grad() = torch::sparse_coo_tensor(rows.unsqueeze(0), torch::full({3, 128}, -1.0f), p.sizes());
    o->step(1e-3, 1.0);
    o->flush();
  }
  EXPECT_TRUE(torch::equal(emb.detach(), emb2.detach()));
  // the others only decayed (3 steps of 1 - 1e-3 * 0.01); a touched row also moved by Adam's steps: -lr for
  // each of the two gradients +g (m-hat / sqrt(v-hat) = 1, whatever the clipping scale), then about
  // -0.227 lr for -g (m = 0.071, v = 0.004g^2 before bias correction): 2.23e-3 in all, far above rounding
  const float decay = std::pow(1.0f - 1e-5f, 3.0f);
  EXPECT_LT(emb[3][0].item<float>(), before[3][0].item<float>() * decay - 2e-3f);
  EXPECT_GT(emb[3][0].item<float>(), before[3][0].item<float>() * decay - 2.5e-3f);
  EXPECT_FLOAT_EQ(emb[5][7].item<float>(), before[5][7].item<float>() * decay);
}
