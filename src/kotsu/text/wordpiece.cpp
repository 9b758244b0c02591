#include "kotsu/text/wordpiece.hpp"

#include <utf8proc.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/gguf.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/text/unicode.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

namespace {

void require_token(int64_t id, const std::string& token, const std::string& source) {
  if (id < 0) throw Error(source, "vocab", "has no " + token + " token");
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions opts, std::string source)
    : vocab_(std::move(vocab)), opts_(std::move(opts)), source_(std::move(source)) {
  if (vocab_.empty()) throw Error(source_, "vocab", "is empty");
  ids_ = VocabIndex(vocab_);  // the first of duplicates wins
  unk_ = id_of("[UNK]");
  cls_ = id_of("[CLS]");
  sep_ = id_of("[SEP]");
  pad_ = id_of("[PAD]");
  require_token(unk_, "[UNK]", source_);
}

int64_t WordPieceTokenizer::id_of(const std::string& token) const {
  return ids_.find(token);
}

std::vector<std::string> WordPieceTokenizer::pre_tokenize(std::string_view text) const {
  const bool strip = opts_.strip_accents.value_or(opts_.lowercase);
  std::vector<char32_t> cps = utf8_decode(text);
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  std::vector<char32_t> mapped;
  for (char32_t c : cps) {
    if (opts_.clean_text) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    }
    if (is_whitespace(c)) {
      flush();
      continue;
    }
    if (opts_.chinese_chars && is_cjk(c)) {
      flush();
      std::string w;
      utf8_append(w, c);
      words.push_back(std::move(w));
      continue;
    }
    mapped.clear();
    if (opts_.lowercase) {
      std::vector<char32_t> lowered;
      lower_into(c, lowered);
      for (char32_t l : lowered) {
        if (strip) strip_accents_into(l, mapped);
        else mapped.push_back(l);
      }
    } else if (strip) {
      strip_accents_into(c, mapped);
    } else {
      mapped.push_back(c);
    }
    for (char32_t m : mapped) {
      if (is_punctuation(m)) {
        flush();
        std::string w;
        utf8_append(w, m);
        words.push_back(std::move(w));
      } else {
        utf8_append(cur, m);
      }
    }
  }
  flush();
  return words;
}

void wordpiece_split(std::string_view word, const VocabIndex& ids, const std::string& prefix,
                     size_t max_chars, int64_t unk, std::vector<int64_t>& out, std::vector<std::pair<uint32_t, uint32_t>>* spans,
                     size_t max_token_bytes) {
  std::vector<size_t> bounds;  // character starts
  for (size_t i = 0; i < word.size(); ++i)
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
  bounds.push_back(word.size());
  const size_t n_chars = bounds.size() - 1;
  auto whole_unk = [&](size_t mark_ids, size_t mark_spans) {
    out.resize(mark_ids);
    out.push_back(unk);
    if (spans) {
      spans->resize(mark_spans);
      spans->emplace_back(0, static_cast<uint32_t>(word.size()));
    }
  };
  const size_t mark = out.size(), smark = spans ? spans->size() : 0;
  if (n_chars > max_chars) return whole_unk(mark, smark);
  size_t start = 0;
  std::string piece;
  while (start < n_chars) {
    size_t end = n_chars;
    if (max_token_bytes > 0)  // no token is longer: skip the lookups that cannot match
      while (end > start + 1 && bounds[end] - bounds[start] + (start > 0 ? prefix.size() : 0) > max_token_bytes) --end;
    int64_t found = -1;
    while (start < end) {
      piece.clear();
      if (start > 0) piece = prefix;
      piece.append(word.substr(bounds[start], bounds[end] - bounds[start]));
      found = ids.find(piece);
      if (found >= 0) break;
      --end;
    }
    if (found < 0) return whole_unk(mark, smark);
    out.push_back(found);
    if (spans) spans->emplace_back(static_cast<uint32_t>(bounds[start]), static_cast<uint32_t>(bounds[end]));
    start = end;
  }
}

void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<int64_t>& out) const {
  wordpiece_split(word, ids_, opts_.prefix, opts_.max_chars_per_word, unk_, out, nullptr);
}

std::vector<int64_t> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const auto& w : pre_tokenize(text)) wordpiece(w, ids);
  return ids;
}

Encoding WordPieceTokenizer::encode_for_model(std::string_view text, size_t max_len) const {
  require_token(cls_, "[CLS]", source_);
  require_token(sep_, "[SEP]", source_);
  std::vector<int64_t> ids = encode(text);
  if (max_len < 2) max_len = 2;
  if (ids.size() > max_len - 2) ids.resize(max_len - 2);
  Encoding e;
  e.ids.reserve(ids.size() + 2);
  e.ids.push_back(cls_);
  e.ids.insert(e.ids.end(), ids.begin(), ids.end());
  e.ids.push_back(sep_);
  e.type_ids.assign(e.ids.size(), 0);
  return e;
}

Encoding WordPieceTokenizer::encode_pair_for_model(std::string_view a, std::string_view b, size_t max_len) const {
  require_token(cls_, "[CLS]", source_);
  require_token(sep_, "[SEP]", source_);
  std::vector<int64_t> x = encode(a), y = encode(b);
  if (max_len < 3) max_len = 3;
  while (x.size() + y.size() > max_len - 3) {  // longest first, as Hugging Face truncates pairs
    if (x.size() > y.size()) x.pop_back();
    else y.pop_back();
  }
  Encoding e;
  e.ids.push_back(cls_);
  e.ids.insert(e.ids.end(), x.begin(), x.end());
  e.ids.push_back(sep_);
  e.type_ids.assign(e.ids.size(), 0);
  e.ids.insert(e.ids.end(), y.begin(), y.end());
  e.ids.push_back(sep_);
  e.type_ids.resize(e.ids.size(), 1);
  return e;
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_txt(const std::string& path, WordPieceOptions opts) {
  std::string text = read_file(path, size_t(256) << 20);
  size_t bad = utf8_invalid_at(text);
  if (bad != std::string::npos) throw Error(path, "byte " + std::to_string(bad), "invalid UTF-8");
  std::vector<std::string> vocab;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string tok = text.substr(pos, nl - pos);
    if (!tok.empty() && tok.back() == '\r') tok.pop_back();
    vocab.push_back(std::move(tok));
    pos = nl + 1;
  }
  return WordPieceTokenizer(std::move(vocab), std::move(opts), path);
}

WordPieceTokenizer WordPieceTokenizer::from_tokenizer_json(const std::string& path) {
  nlohmann::json j = read_json(path, size_t(512) << 20);
  const auto& model = j["model"];
  if (!model.is_object() || model.value("type", "") != "WordPiece")
    throw Error(path, "model.type", "is not WordPiece (other tokenizers arrive with the tokenizer issue)");
  WordPieceOptions opts;
  opts.prefix = model.value("continuing_subword_prefix", "##");
  opts.max_chars_per_word = model.value("max_input_chars_per_word", size_t(100));
  const auto& norm = j["normalizer"];
  if (norm.is_object() && norm.value("type", "") == "BertNormalizer") {
    opts.lowercase = norm.value("lowercase", true);
    opts.clean_text = norm.value("clean_text", true);
    opts.chinese_chars = norm.value("handle_chinese_chars", true);
    if (norm.contains("strip_accents") && norm["strip_accents"].is_boolean()) opts.strip_accents = norm["strip_accents"].get<bool>();
  } else if (norm.is_null()) {
    opts.lowercase = false;
    opts.clean_text = false;
    opts.chinese_chars = false;
    opts.strip_accents = false;
  } else {
    throw Error(path, "normalizer.type", "only BertNormalizer is supported for WordPiece");
  }
  const auto& v = model["vocab"];
  if (!v.is_object()) throw Error(path, "model.vocab", "missing or not an object");
  std::vector<std::string> vocab(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_unsigned() || it.value().get<uint64_t>() >= vocab.size())
      throw Error(path, "model.vocab." + it.key(), "id out of range");
    vocab[it.value().get<size_t>()] = it.key();
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      size_t id = t.value("id", size_t(0));
      if (id >= vocab.size()) vocab.resize(id + 1);
      vocab[id] = t.value("content", "");
    }
  }
  return WordPieceTokenizer(std::move(vocab), std::move(opts), path);
}

WordPieceTokenizer WordPieceTokenizer::from_gguf(const std::string& path) {
  GgufFile g = read_gguf(path);
  const auto& model = g.at(path, "tokenizer.ggml.model");
  if (!model.is_string() || model.get<std::string>() != "bert")
    throw Error(path, "tokenizer.ggml.model", "is not 'bert' (WordPiece)");
  const auto& toks = g.at(path, "tokenizer.ggml.tokens");
  if (!toks.is_array()) throw Error(path, "tokenizer.ggml.tokens", "is not an array");
  // llama.cpp stores "▁word" for word starts and "piece" for "##piece"; [SPECIAL] tokens unchanged.
  static const std::string kPhantom = "\xE2\x96\x81";
  std::vector<std::string> vocab;
  vocab.reserve(toks.size());
  for (const auto& t : toks) {
    if (!t.is_string()) throw Error(path, "tokenizer.ggml.tokens", "holds a non-string");
    std::string s = t.get<std::string>();
    if (s.rfind(kPhantom, 0) == 0) s = s.substr(kPhantom.size());
    else if (!(s.size() >= 2 && s.front() == '[' && s.back() == ']')) s = "##" + s;
    vocab.push_back(std::move(s));
  }
  WordPieceOptions opts;  // llama.cpp's BERT vocabularies are uncased
  return WordPieceTokenizer(std::move(vocab), opts, path);
}

WordPieceTokenizer WordPieceTokenizer::from_model_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string tj = (fs::path(dir) / "tokenizer.json").string();
  std::string vt = (fs::path(dir) / "vocab.txt").string();
  std::string tc = (fs::path(dir) / "tokenizer_config.json").string();
  if (file_exists(tj)) {
    // a tokenizer.json with another model type still has a vocab.txt beside it in older exports
    try {
      return from_tokenizer_json(tj);
    } catch (const Error&) {
      if (!file_exists(vt)) throw;
    }
  }
  if (!file_exists(vt)) throw Error(dir, "tokenizer", "neither tokenizer.json nor vocab.txt found");
  WordPieceOptions opts;
  if (file_exists(tc)) {
    nlohmann::json c = read_json(tc);
    opts.lowercase = c.value("do_lower_case", true);
    opts.chinese_chars = c.value("tokenize_chinese_chars", true);
    if (c.contains("strip_accents") && c["strip_accents"].is_boolean()) opts.strip_accents = c["strip_accents"].get<bool>();
  }
  return from_vocab_txt(vt, opts);
}

void WordPieceTokenizer::save(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::string v;
  for (const auto& t : vocab_) v += t + "\n";
  write_atomic((fs::path(dir) / "vocab.txt").string(), v);
  nlohmann::ordered_json c = {{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", opts_.lowercase},
                              {"tokenize_chinese_chars", opts_.chinese_chars}, {"unk_token", "[UNK]"},
                              {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"},
                              {"mask_token", "[MASK]"}};
  if (opts_.strip_accents) c["strip_accents"] = *opts_.strip_accents;
  else c["strip_accents"] = nullptr;
  write_atomic((fs::path(dir) / "tokenizer_config.json").string(), c.dump(2) + "\n");
}

}  // namespace kotsu
