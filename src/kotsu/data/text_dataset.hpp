// kotsu/data/text_dataset: labelled (or unlabelled) texts taken from a Table, label sets, stratified splits,
// tokenisation into encodings and padded batches.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kotsu/core/batch.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu {

struct TextColumns {
  std::string text = "text";
  std::string label = "label";  // empty: unlabelled (predict)
  std::string text_pair;         // optional second segment
};

struct TextDataset {
  std::string path;
  std::vector<std::string> texts, pairs, labels;  // pairs empty when no pair column
  std::vector<size_t> lines;
  size_t size() const { return texts.size(); }
};

// Loads a dataset; empty texts or labels are errors naming the line and column.
TextDataset load_text_dataset(const std::string& path, const TextColumns& cols);
// The rows `keep` (0-based, in that order); an index past the end is an error naming the file.
TextDataset subset(const TextDataset& d, const std::vector<int64_t>& keep);
// Sorted distinct labels (numerically when all are integers).
std::vector<std::string> collect_labels(const TextDataset& d);
// Label ids for `d`; a label outside `labels` is an error naming the line.
std::vector<int64_t> label_ids(const TextDataset& d, const std::vector<std::string>& labels);
// Stratified split: about `fraction` of each class (at least one when the class has two or more) goes to
// `second`; deterministic in `seed`.
void stratified_split(const std::vector<int64_t>& y, double fraction, uint64_t seed, std::vector<size_t>& first,
                      std::vector<size_t>& second);

struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
};

struct EncodedTexts {
  std::vector<Encoding> enc;
  std::vector<int64_t> labels;  // empty when unlabelled
  int64_t pad_id = 0;
};

// Token ids with the tokenizer's special tokens ([CLS] ... [SEP], <s> ... </s>), pairs truncated longest
// first, at most max_len tokens each.
EncodedTexts encode_texts(const Tokenizer& tok, const TextDataset& d, size_t max_len,
                          const std::vector<int64_t>& labels = {});
// Cuts a shuffled order into batches of `batch_size`. With group_by_length, each window of 32 batches is
// first sorted by length (rows of similar length share a batch, so little padding is computed), then the
// batches are shuffled with `rng`, so lengths still arrive in random order.
std::vector<std::vector<size_t>> make_batches(const std::vector<size_t>& order, const std::vector<size_t>& lengths,
                                              size_t batch_size, bool group_by_length, std::mt19937_64& rng);
// Pads the rows `idx` to the longest of them.
TextBatch make_batch(const EncodedTexts& e, const std::vector<size_t>& idx);

}  // namespace kotsu
