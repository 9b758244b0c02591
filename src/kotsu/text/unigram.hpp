// kotsu/text/unigram: the Unigram subword model (SentencePiece unigram_model.cc, Hugging Face
// models/unigram): the segmentation of a word that maximises the sum of piece log-probabilities (Viterbi),
// ties going to the path found first. Characters no piece covers become the unknown piece (runs of them
// fused into one), or their <0xXX> byte pieces with byte_fallback. Written by hand: libsentencepiece only
// reads its own .model protobufs, and a model directory may hold only tokenizer.json.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kotsu/text/vocab_index.hpp"

namespace kotsu {

class UnigramModel {
 public:
  // pieces with their scores (log-probabilities); unk_id must name a piece. `matchable` (empty: all) says
  // which pieces segmentation may produce (SentencePiece leaves out control, unused and byte pieces).
  UnigramModel(std::vector<std::pair<std::string, double>> pieces, int64_t unk_id, bool byte_fallback, std::string source,
               const std::vector<bool>& matchable = {});

  void encode(std::string_view word, std::vector<int64_t>& ids, std::vector<std::pair<uint32_t, uint32_t>>* spans) const;

  int64_t id_of(std::string_view piece) const;
  const std::string& token(int64_t id) const { return pieces_.at(static_cast<size_t>(id)).first; }
  size_t vocab_size() const { return pieces_.size(); }
  const std::vector<std::pair<std::string, double>>& pieces() const { return pieces_; }
  int64_t unk_id() const { return unk_; }
  bool byte_fallback() const { return byte_fallback_; }

 private:
  std::vector<std::pair<std::string, double>> pieces_;
  VocabIndex ids_;  // matchable pieces only
  int64_t unk_;
  bool byte_fallback_;
  double unk_score_;
  size_t max_piece_bytes_ = 1;
  int64_t byte_ids_[256];
  std::string source_;
};

}  // namespace kotsu
