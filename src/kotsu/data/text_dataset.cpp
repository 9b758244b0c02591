#include "kotsu/data/text_dataset.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <random>

#include "kotsu/core/error.hpp"
#include "kotsu/data/table.hpp"

namespace kotsu {

namespace {
bool is_integer(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = (s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}
std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}
}  // namespace

TextDataset load_text_dataset(const std::string& path, const TextColumns& cols) {
  Table t = read_table(path);
  size_t ti = t.column(cols.text, "--text-col");
  size_t li = cols.label.empty() ? 0 : t.column(cols.label, "--label-col");
  size_t pi = cols.text_pair.empty() ? 0 : t.column(cols.text_pair, "--text-pair-col");
  TextDataset d;
  d.path = path;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    std::string where = "line " + std::to_string(t.lines[r]);
    if (trim(row[ti]).empty()) throw Error(path, where + ", column '" + cols.text + "'", "empty text");
    d.texts.push_back(row[ti]);
    if (!cols.text_pair.empty()) d.pairs.push_back(row[pi]);
    if (!cols.label.empty()) {
      std::string l = trim(row[li]);
      if (l.empty()) throw Error(path, where + ", column '" + cols.label + "'", "empty label");
      d.labels.push_back(l);
    }
    d.lines.push_back(t.lines[r]);
  }
  if (d.texts.empty()) throw Error(path, "", "no rows");
  return d;
}

TextDataset subset(const TextDataset& d, const std::vector<int64_t>& keep) {
  TextDataset out;
  out.path = d.path;
  for (int64_t k : keep) {
    if (k < 0 || static_cast<size_t>(k) >= d.size())
      throw Error(d.path, "rows", "row " + std::to_string(k) + " is past the " + std::to_string(d.size()) + " rows");
    const auto i = static_cast<size_t>(k);
    out.texts.push_back(d.texts[i]);
    if (!d.pairs.empty()) out.pairs.push_back(d.pairs[i]);
    if (!d.labels.empty()) out.labels.push_back(d.labels[i]);
    out.lines.push_back(d.lines[i]);
  }
  return out;
}

std::vector<std::string> collect_labels(const TextDataset& d) {
  std::vector<std::string> labels(d.labels);
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  if (std::all_of(labels.begin(), labels.end(), is_integer))
    std::sort(labels.begin(), labels.end(), [](auto& a, auto& b) { return std::stoll(a) < std::stoll(b); });
  return labels;
}

std::vector<int64_t> label_ids(const TextDataset& d, const std::vector<std::string>& labels) {
  std::map<std::string, int64_t> id;
  for (size_t i = 0; i < labels.size(); ++i) id[labels[i]] = static_cast<int64_t>(i);
  std::vector<int64_t> y;
  y.reserve(d.labels.size());
  for (size_t i = 0; i < d.labels.size(); ++i) {
    auto it = id.find(d.labels[i]);
    if (it == id.end()) {
      std::string known;
      for (size_t k = 0; k < labels.size() && k < 20; ++k) known += (k ? ", " : "") + labels[k];
      throw Error(d.path, "line " + std::to_string(d.lines[i]), "unknown label '" + d.labels[i] + "' (the model knows: " + known + ")");
    }
    y.push_back(it->second);
  }
  return y;
}

void stratified_split(const std::vector<int64_t>& y, double fraction, uint64_t seed, std::vector<size_t>& first,
                      std::vector<size_t>& second) {
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < y.size(); ++i) by_class[y[i]].push_back(i);
  std::mt19937_64 rng(seed);
  first.clear();
  second.clear();
  for (auto& [c, idx] : by_class) {
    std::shuffle(idx.begin(), idx.end(), rng);
    size_t k = static_cast<size_t>(std::llround(fraction * static_cast<double>(idx.size())));
    if (k == 0 && idx.size() >= 2 && fraction > 0) k = 1;
    if (k >= idx.size()) k = idx.size() - 1;
    second.insert(second.end(), idx.begin(), idx.begin() + static_cast<long>(k));
    first.insert(first.end(), idx.begin() + static_cast<long>(k), idx.end());
  }
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
}

EncodedTexts encode_texts(const Tokenizer& tok, const TextDataset& d, size_t max_len,
                          const std::vector<int64_t>& labels) {
  EncodedTexts e;
  e.pad_id = tok.pad_id();
  e.enc.reserve(d.size());
  EncodeOptions o;
  o.max_length = max_len;
  // a text with no tokens (empty or only whitespace, with a tokenizer that adds no special tokens) is
  // classified as one unknown token: a model cannot run over zero positions
  const int64_t nothing = tok.unk_id() >= 0 ? tok.unk_id() : tok.pad_id();
  for (size_t i = 0; i < d.size(); ++i) {
    TokenizedText t = d.pairs.empty() ? tok.encode(d.texts[i], o) : tok.encode_pair(d.texts[i], d.pairs[i], o);
    if (t.ids.empty()) {
      t.ids.push_back(nothing);
      t.type_ids.assign(1, 0);
    }
    e.enc.push_back(Encoding{std::move(t.ids), std::move(t.type_ids)});
  }
  e.labels = labels;
  return e;
}

std::vector<std::vector<size_t>> make_batches(const std::vector<size_t>& order, const std::vector<size_t>& lengths,
                                              size_t batch_size, bool group_by_length, std::mt19937_64& rng) {
  std::vector<size_t> ord = order;
  if (group_by_length) {
    const size_t window = batch_size * 32;
    for (size_t w = 0; w < ord.size(); w += window) {
      auto b = ord.begin() + static_cast<long>(w);
      auto e = ord.begin() + static_cast<long>(std::min(ord.size(), w + window));
      std::stable_sort(b, e, [&](size_t x, size_t y) { return lengths[x] > lengths[y]; });
    }
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t lo = 0; lo < ord.size(); lo += batch_size)
    batches.emplace_back(ord.begin() + static_cast<long>(lo), ord.begin() + static_cast<long>(std::min(ord.size(), lo + batch_size)));
  if (group_by_length) std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

TextBatch make_batch(const EncodedTexts& e, const std::vector<size_t>& idx) {
  size_t T = 0;
  for (size_t i : idx) T = std::max(T, e.enc[i].ids.size());
  const int64_t B = static_cast<int64_t>(idx.size());
  auto ids = torch::full({B, static_cast<int64_t>(T)}, e.pad_id, torch::kLong);
  auto mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  auto tt = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  auto pi = ids.accessor<int64_t, 2>();
  auto pm = mask.accessor<int64_t, 2>();
  auto pt = tt.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Encoding& en = e.enc[idx[static_cast<size_t>(b)]];
    for (size_t t = 0; t < en.ids.size(); ++t) {
      pi[b][static_cast<int64_t>(t)] = en.ids[t];
      pm[b][static_cast<int64_t>(t)] = 1;
      pt[b][static_cast<int64_t>(t)] = en.type_ids[t];
    }
  }
  TextBatch batch{ids, mask, tt, {}};
  if (!e.labels.empty()) {
    auto y = torch::empty({B}, torch::kLong);
    for (int64_t b = 0; b < B; ++b) y[b] = e.labels[idx[static_cast<size_t>(b)]];
    batch.labels = y;
  }
  return batch;
}

}  // namespace kotsu
