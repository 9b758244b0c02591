// kotsu/text/tokenizer_build: helpers shared by the Tokenizer loaders (internal to text/tokenizer*.cpp):
// typed access to JSON fields that names the file and field on failure, pipeline-part constructors,
// special-token templates and tokenizer_config.json.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "kotsu/core/error.hpp"
#include "kotsu/text/tokenizer_pipeline.hpp"

namespace kotsu::tok {

using json = nlohmann::json;
using P = Tokenizer::Pipeline;

constexpr size_t kMaxTokenizerFile = size_t(1) << 30;
const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Typed access to tokenizer.json fields; every failure names the file and the field path.
struct J {
  const json& j;
  const std::string& file;
  std::string field;
  J at(const std::string& k) const {
    static const json null_json;
    if (!j.is_object()) throw Error(file, field, "is not an object");
    auto it = j.find(k);
    return {it == j.end() ? null_json : *it, file, field.empty() ? k : field + "." + k};
  }
  J at(size_t i) const { return {j.at(i), file, field + "[" + std::to_string(i) + "]"}; }
  bool null() const { return j.is_null(); }
  std::string str(const std::string& dflt = "") const {
    if (j.is_null()) return dflt;
    if (!j.is_string()) throw Error(file, field, "is not a string");
    return j.get<std::string>();
  }
  bool boolean(bool dflt) const {
    if (j.is_null()) return dflt;
    if (!j.is_boolean()) throw Error(file, field, "is not true or false");
    return j.get<bool>();
  }
  int64_t integer(int64_t dflt) const {
    if (j.is_null()) return dflt;
    if (!j.is_number_integer()) throw Error(file, field, "is not an integer");
    return j.get<int64_t>();
  }
  double number() const {
    if (!j.is_number()) throw Error(file, field, "is not a number");
    return j.get<double>();
  }
  const json& array() const {
    if (!j.is_array()) throw Error(file, field, "is not an array");
    return j;
  }
  [[noreturn]] void fail(const std::string& why) const { throw Error(file, field, why); }
};

Normalizer make_normalizer(Normalizer::Kind k, std::string a = "", std::string b = "");
Decoder make_decoder(Decoder::Kind k, std::string a = "", std::string b = "");
PreTokenizer make_pre_tokenizer(PreTokenizer::Kind k);
// A special token matched in text.
AddedToken make_added(std::string content, int64_t id);
// Templates written as "[CLS] $A [SEP]" / "[CLS] $A [SEP] $B:1 [SEP]:1" (":N" sets the type id).
void set_template(P& p, const std::string& single, const std::string& pair,
                  const std::vector<std::pair<std::string, int64_t>>& specials);
// "<s> $A </s>"-style templates (Llama's add_bos_token / add_eos_token); an id < 0 leaves that token out.
void set_bos_eos_template(P& p, int64_t bos, const std::string& bos_tok, int64_t eos, const std::string& eos_tok);
// {token: id} -> tokens by id; ids may run `extra` past the map's size (room for added tokens).
std::vector<std::string> vocab_from_map(const J& v, size_t extra = 0);
// [[piece, score], ...] (Unigram vocabularies); with null_is_zero a null score reads as 0.
std::vector<std::pair<std::string, double>> read_piece_scores(const J& v, bool null_is_zero);
// tokenizer_config.json: special token names, model_max_length, padding side.
void read_config(const std::string& path, P& p, const Tokenizer& view);
std::shared_ptr<P> new_pipeline(const std::string& source);
// "left right" -> (left, right); refused with Error(file, field) when there is no separating space.
std::pair<std::string, std::string> split_merge(const std::string& s, const std::string& file, const std::string& field);
// GPT-2-style byte-level BPE: one ByteLevel regex pre-tokenizer (`pattern`), the model (its errors name
// merges_source), the ByteLevel decoder.
void set_byte_level_bpe(P& p, std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                        const std::string& merges_source, const char* pattern, bool ignore_merges, const std::string& field);

}  // namespace kotsu::tok
