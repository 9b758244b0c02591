#include "kotsu/data/lm_data.hpp"

#include <torch/torch.h>

#include <algorithm>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

// How many of `t`'s tokens belong to the text: a template's trailing special tokens (an EOS after it) do not.
size_t text_tokens(const TokenizedText& t) {
  for (size_t i = 1; i < t.size(); ++i)
    if (t.sequence[i] < 0 && t.sequence[i - 1] == 0) return i;
  return t.size();
}

}  // namespace

int64_t LmExample::targets() const {
  int64_t n = 0;
  for (size_t i = 1; i < learn.size(); ++i) n += learn[i];
  return n;
}

LmTokenized tokenize_instructions(const std::vector<InstructionExample>& data, const Tokenizer& tok, const ChatFormat& format,
                                  int64_t max_len, const std::string& source) {
  LmTokenized out;
  for (size_t row = 0; row < data.size(); ++row) {
    const RenderedExample r = format.render(data[row]);
    EncodeOptions eo;
    eo.add_special = !r.has_bos;
    const TokenizedText t = tok.encode(r.text, eo);
    LmExample ex;
    for (size_t i = 0, n = text_tokens(t); i < n; ++i) {
      bool learn = false;
      if (t.sequence[i] == 0)
        for (const auto& [b, e] : r.trained) learn = learn || (t.offsets[i].first >= b && t.offsets[i].first < e);
      ex.ids.push_back(t.ids[i]);
      ex.learn.push_back(learn);
    }
    if (r.needs_eos) {
      if (tok.eos_id() < 0)
        throw Error(source, "completion", "the tokenizer has no EOS token, so the model could never learn where an answer ends; use a chat format");
      ex.ids.push_back(tok.eos_id());
      ex.learn.push_back(1);
    }
    if (static_cast<int64_t>(ex.ids.size()) > max_len) {
      ex.ids.resize(static_cast<size_t>(max_len));
      ex.learn.resize(static_cast<size_t>(max_len));
      if (ex.targets() == 0) {
        ++out.dropped;
        continue;
      }
      ++out.truncated;
    }
    if (ex.targets() == 0) throw Error(source + ":" + std::to_string(row + 1), "completion", "renders to no token to learn");
    out.examples.push_back(std::move(ex));
  }
  if (out.examples.empty()) throw Error(source, "max_len", "every example lost its answer to truncation; raise --max-len");
  return out;
}

std::vector<int64_t> prompt_ids(const Tokenizer& tok, const std::string& text) {
  EncodeOptions eo;
  eo.add_special = !(tok.bos_id() >= 0 && text.rfind(tok.token(tok.bos_id()), 0) == 0 && !tok.token(tok.bos_id()).empty());
  const TokenizedText t = tok.encode(text, eo);
  return std::vector<int64_t>(t.ids.begin(), t.ids.begin() + static_cast<std::ptrdiff_t>(text_tokens(t)));
}

LmBatch make_lm_batch(const std::vector<LmExample>& data, const std::vector<size_t>& idx, int64_t pad_id) {
  size_t T = 0;
  for (size_t i : idx) T = std::max(T, data[i].ids.size());
  const int64_t B = static_cast<int64_t>(idx.size());
  LmBatch b;
  b.ids = torch::full({B, static_cast<int64_t>(T)}, pad_id, torch::kLong);
  b.mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  b.labels = torch::full({B, static_cast<int64_t>(T)}, -100, torch::kLong);
  auto ids = b.ids.accessor<int64_t, 2>();
  auto mask = b.mask.accessor<int64_t, 2>();
  auto labels = b.labels.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const LmExample& ex = data[idx[static_cast<size_t>(r)]];
    for (size_t t = 0; t < ex.ids.size(); ++t) {
      ids[r][static_cast<int64_t>(t)] = ex.ids[t];
      mask[r][static_cast<int64_t>(t)] = 1;
      if (t + 1 < ex.ids.size() && ex.learn[t + 1]) {  // position t predicts token t + 1
        labels[r][static_cast<int64_t>(t)] = ex.ids[t + 1];
        ++b.targets;
      }
    }
  }
  return b;
}

LmBatch pack_lm_batch(const std::vector<LmExample>& data, const std::vector<size_t>& idx, int64_t pad_id, int64_t row_len) {
  std::vector<std::vector<size_t>> rows;  // example indices per row
  std::vector<int64_t> used;
  for (size_t i : idx) {
    const int64_t n = static_cast<int64_t>(data[i].ids.size());
    size_t r = 0;
    while (r < rows.size() && used[r] + n > row_len) ++r;
    if (r == rows.size()) rows.emplace_back(), used.push_back(0);
    rows[r].push_back(i);
    used[r] += n;
  }
  const int64_t T = *std::max_element(used.begin(), used.end()), B = static_cast<int64_t>(rows.size());
  LmBatch b;
  b.ids = torch::full({B, T}, pad_id, torch::kLong);
  b.mask = torch::zeros({B, T, T}, torch::kBool);
  b.positions = torch::zeros({B, T}, torch::kLong);
  b.labels = torch::full({B, T}, -100, torch::kLong);
  auto ids = b.ids.accessor<int64_t, 2>();
  auto pos = b.positions.accessor<int64_t, 2>();
  auto labels = b.labels.accessor<int64_t, 2>();
  auto mask = b.mask.accessor<bool, 3>();
  for (int64_t r = 0; r < B; ++r) {
    int64_t start = 0;
    for (size_t i : rows[static_cast<size_t>(r)]) {
      const LmExample& ex = data[i];
      const int64_t n = static_cast<int64_t>(ex.ids.size());
      for (int64_t t = 0; t < n; ++t) {
        ids[r][start + t] = ex.ids[static_cast<size_t>(t)];
        pos[r][start + t] = t;
        for (int64_t k = 0; k <= t; ++k) mask[r][start + t][start + k] = true;
        if (t + 1 < n && ex.learn[static_cast<size_t>(t + 1)]) {
          labels[r][start + t] = ex.ids[static_cast<size_t>(t + 1)];
          ++b.targets;
        }
      }
      start += n;
    }
    for (int64_t t = start; t < T; ++t) mask[r][t][t] = true;  // padding sees itself: finite, unused
  }
  return b;
}

torch::Tensor lm_loss_sum(const torch::Tensor& logits, const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat), labels.reshape({-1}),
                          F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
}

}  // namespace kotsu
