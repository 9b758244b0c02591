// kotsu/core/batch: the tensors a text batch carries from data/ to models/ (padded to the batch's longest row).
#pragma once
#include <torch/types.h>

namespace kotsu {

struct TextBatch {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64, 1 = real token
  torch::Tensor token_type_ids;  // [B, T] int64, may be undefined (zeros)
  torch::Tensor labels;          // [B] int64, may be undefined
  TextBatch to(const torch::Device& d) const {
    TextBatch b;
    b.input_ids = input_ids.to(d);
    b.attention_mask = attention_mask.to(d);
    if (token_type_ids.defined()) b.token_type_ids = token_type_ids.to(d);
    if (labels.defined()) b.labels = labels.to(d);
    return b;
  }
};

}  // namespace kotsu
