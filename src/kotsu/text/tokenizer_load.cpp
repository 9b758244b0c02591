// Builders of Tokenizer pipelines from tokenizer.json, GGUF, SentencePiece .model, vocab.json + merges.txt
// and vocab.txt (see tokenizer.hpp).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/gguf.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "kotsu/text/tokenizer_pipeline.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

namespace fs = std::filesystem;
using json = nlohmann::json;
using P = Tokenizer::Pipeline;

namespace {

constexpr size_t kMaxTokenizerFile = size_t(1) << 30;
const std::string kSpace = "\xE2\x96\x81";  // ▁

std::string base64_decode(const std::string& in, const std::string& file, const std::string& field) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
          : c == '+' ? 62 : c == '/' ? 63 : c == '=' ? -2 : -1;
    if (v == -2) break;
    if (v < 0) throw Error(file, field, "is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

Normalizer make_normalizer(Normalizer::Kind k, std::string a = "", std::string b = "") {
  Normalizer n{};
  n.kind = k;
  n.a = std::move(a);
  n.b = std::move(b);
  return n;
}

Decoder make_decoder(Decoder::Kind k, std::string a = "", std::string b = "") {
  Decoder d{};
  d.kind = k;
  d.a = std::move(a);
  d.b = std::move(b);
  return d;
}

PreTokenizer make_pre_tokenizer(PreTokenizer::Kind k) {
  PreTokenizer t{};
  t.kind = k;
  return t;
}

AddedToken make_added(std::string content, int64_t id) {  // a special token matched in text
  AddedToken a{};
  a.content = std::move(content);
  a.id = id;
  a.special = true;
  return a;
}

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

// Split / Replace patterns: {"String": "..."} or {"Regex": "..."}.
void read_pattern(const J& pat, std::string& literal, std::shared_ptr<Regex>& re) {
  if (!pat.j.is_object()) pat.fail("is not a {String|Regex} pattern");
  if (pat.j.contains("Regex")) re = std::make_shared<Regex>(pat.at("Regex").str(), pat.file, pat.field + ".Regex");
  else if (pat.j.contains("String")) literal = pat.at("String").str();
  else pat.fail("is neither {\"String\": ...} nor {\"Regex\": ...}");
}

SplitBehavior read_behavior(const J& b) {
  std::string s = b.str("Isolated");
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  b.fail("unknown split behavior '" + s + "'");
}

int read_prepend(const J& n) {
  if (!n.at("prepend_scheme").null()) {
    std::string s = n.at("prepend_scheme").str();
    if (s == "never") return 0;
    if (s == "first") return 1;
    if (s == "always") return 2;
    n.at("prepend_scheme").fail("unknown prepend_scheme '" + s + "'");
  }
  return n.at("add_prefix_space").boolean(true) ? 2 : 0;
}

void read_normalizer(const J& n, P& p) {
  if (n.null()) return;
  std::string type = n.at("type").str();
  Normalizer x{};
  if (type == "Sequence") {
    const auto& arr = n.at("normalizers").array();
    for (size_t i = 0; i < arr.size(); ++i) read_normalizer(n.at("normalizers").at(i), p);
    return;
  } else if (type == "NFC") x.kind = Normalizer::NFC;
  else if (type == "NFD") x.kind = Normalizer::NFD;
  else if (type == "NFKC") x.kind = Normalizer::NFKC;
  else if (type == "NFKD") x.kind = Normalizer::NFKD;
  else if (type == "Lowercase") x.kind = Normalizer::Lowercase;
  else if (type == "StripAccents") x.kind = Normalizer::StripAccents;
  else if (type == "Strip") {
    x.kind = Normalizer::Strip;
    x.left = n.at("strip_left").boolean(true);
    x.right = n.at("strip_right").boolean(true);
  } else if (type == "Replace") {
    x.kind = Normalizer::Replace;
    read_pattern(n.at("pattern"), x.a, x.re);
    x.b = n.at("content").str();
  } else if (type == "Prepend") {
    x.kind = Normalizer::Prepend;
    x.a = n.at("prepend").str();
  } else if (type == "BertNormalizer") {
    x.kind = Normalizer::Bert;
    x.bert.clean_text = n.at("clean_text").boolean(true);
    x.bert.chinese_chars = n.at("handle_chinese_chars").boolean(true);
    x.bert.lowercase = n.at("lowercase").boolean(true);
    if (!n.at("strip_accents").null()) x.bert.strip_accents = n.at("strip_accents").boolean(false);
  } else if (type == "Precompiled") {
    std::string b64 = n.at("precompiled_charsmap").str();
    if (b64.empty()) return;  // an empty map is the identity
    x.kind = Normalizer::SentencePiece;
    std::string field = n.field + ".precompiled_charsmap";
    x.charsmap = std::make_shared<CharsMap>(base64_decode(b64, n.file, field), n.file, field);
  } else {
    n.at("type").fail("unknown normalizer type '" + type + "'");
  }
  p.normalizers.push_back(std::move(x));
}

void read_pre_tokenizer(const J& n, P& p) {
  if (n.null()) return;
  std::string type = n.at("type").str();
  PreTokenizer x{};
  if (type == "Sequence") {
    const auto& arr = n.at("pretokenizers").array();
    for (size_t i = 0; i < arr.size(); ++i) read_pre_tokenizer(n.at("pretokenizers").at(i), p);
    return;
  } else if (type == "ByteLevel") {
    x.kind = PreTokenizer::ByteLevel;
    x.add_prefix_space = n.at("add_prefix_space").boolean(true);
    if (n.at("use_regex").boolean(true)) x.re = std::make_shared<Regex>(kGpt2Pattern, p.source, n.field + ".use_regex");
  } else if (type == "Split") {
    x.kind = PreTokenizer::Split;
    read_pattern(n.at("pattern"), x.literal, x.re);
    x.behavior = read_behavior(n.at("behavior"));
    x.invert = n.at("invert").boolean(false);
  } else if (type == "Whitespace") x.kind = PreTokenizer::Whitespace;
  else if (type == "WhitespaceSplit") x.kind = PreTokenizer::WhitespaceSplit;
  else if (type == "BertPreTokenizer") x.kind = PreTokenizer::Bert;
  else if (type == "Metaspace") {
    x.kind = PreTokenizer::Metaspace;
    x.literal = n.at("replacement").str(kSpace);
    x.prepend = read_prepend(n);
    x.split = n.at("split").boolean(true);
  } else if (type == "Digits") {
    x.kind = PreTokenizer::Digits;
    x.individual_digits = n.at("individual_digits").boolean(false);
  } else if (type == "Punctuation") {
    x.kind = PreTokenizer::Punctuation;
    x.behavior = read_behavior(n.at("behavior"));
  } else {
    n.at("type").fail("unknown pre_tokenizer type '" + type + "'");
  }
  p.pre_tokenizers.push_back(std::move(x));
}

void read_decoder(const J& n, P& p) {
  if (n.null()) return;
  std::string type = n.at("type").str();
  Decoder x{};
  if (type == "Sequence") {
    const auto& arr = n.at("decoders").array();
    for (size_t i = 0; i < arr.size(); ++i) read_decoder(n.at("decoders").at(i), p);
    return;
  } else if (type == "ByteLevel") x.kind = Decoder::ByteLevel;
  else if (type == "ByteFallback") x.kind = Decoder::ByteFallback;
  else if (type == "Fuse") x.kind = Decoder::Fuse;
  else if (type == "Strip") {
    x.kind = Decoder::Strip;
    x.a = n.at("content").str(" ");
    x.start = static_cast<size_t>(n.at("start").integer(0));
    x.stop = static_cast<size_t>(n.at("stop").integer(0));
  } else if (type == "Replace") {
    x.kind = Decoder::Replace;
    std::shared_ptr<Regex> re;
    read_pattern(n.at("pattern"), x.a, re);
    if (re) n.at("pattern").fail("regex patterns are not supported in a Replace decoder");
    x.b = n.at("content").str();
  } else if (type == "Metaspace") {
    x.kind = Decoder::Metaspace;
    x.a = n.at("replacement").str(kSpace);
    x.prepend = read_prepend(n);
  } else if (type == "WordPiece") {
    x.kind = Decoder::WordPiece;
    x.a = n.at("prefix").str("##");
    x.cleanup = n.at("cleanup").boolean(true);
  } else if (type == "BPEDecoder") {
    x.kind = Decoder::BpeSuffix;
    x.a = n.at("suffix").str("</w>");
  } else {
    n.at("type").fail("unknown decoder type '" + type + "'");
  }
  p.decoders.push_back(std::move(x));
}

void read_template(const J& arr, std::vector<TemplateItem>& out) {
  for (size_t i = 0; i < arr.array().size(); ++i) {
    J it = arr.at(i);
    TemplateItem t;
    if (it.j.contains("Sequence")) {
      t.sequence = true;
      std::string id = it.at("Sequence").at("id").str("A");
      if (id != "A" && id != "B") it.at("Sequence").at("id").fail("is not A or B");
      t.which = id == "A" ? 0 : 1;
      t.type_id = it.at("Sequence").at("type_id").integer(0);
    } else if (it.j.contains("SpecialToken")) {
      t.special = it.at("SpecialToken").at("id").str();
      t.type_id = it.at("SpecialToken").at("type_id").integer(0);
    } else {
      it.fail("is neither a Sequence nor a SpecialToken");
    }
    out.push_back(std::move(t));
  }
}

std::pair<std::string, int64_t> token_and_id(const J& j) {
  const auto& a = j.array();
  if (a.size() != 2 || !a[0].is_string() || !a[1].is_number_integer()) j.fail("is not [token, id]");
  return {a[0].get<std::string>(), a[1].get<int64_t>()};
}

void set_template(P& p, const std::string& single, const std::string& pair,
                  const std::vector<std::pair<std::string, int64_t>>& specials) {
  auto parse = [](const std::string& s, std::vector<TemplateItem>& out) {
    size_t at = 0;
    while (at < s.size()) {
      size_t sp = s.find(' ', at);
      if (sp == std::string::npos) sp = s.size();
      std::string w = s.substr(at, sp - at);
      at = sp + 1;
      if (w.empty()) continue;
      TemplateItem t;
      size_t colon = w.rfind(':');
      if (colon != std::string::npos && colon + 1 < w.size() && std::isdigit(static_cast<unsigned char>(w[colon + 1]))) {
        t.type_id = std::stoll(w.substr(colon + 1));
        w = w.substr(0, colon);
      }
      if (w == "$A" || w == "$B") {
        t.sequence = true;
        t.which = w == "$A" ? 0 : 1;
      } else {
        t.special = w;
      }
      out.push_back(std::move(t));
    }
  };
  p.single.clear();
  p.pair.clear();
  parse(single, p.single);
  parse(pair, p.pair);
  for (const auto& [tok, id] : specials) p.template_ids[tok] = {id};
}

// "<s> $A </s>"-style templates (Llama's add_bos_token / add_eos_token); an id < 0 leaves that token out.
void set_bos_eos_template(P& p, int64_t bos, const std::string& bos_tok, int64_t eos, const std::string& eos_tok) {
  std::string single = "$A", pair = "$A $B:1";
  std::vector<std::pair<std::string, int64_t>> specials;
  if (bos >= 0) {
    single = bos_tok + " $A";
    pair = bos_tok + " $A " + bos_tok + ":1 $B:1";
    specials.emplace_back(bos_tok, bos);
  }
  if (eos >= 0) {
    single += " " + eos_tok;
    pair += " " + eos_tok + ":1";
    specials.emplace_back(eos_tok, eos);
  }
  if (!specials.empty()) set_template(p, single, pair, specials);
}

void read_post_processor(const J& n, P& p) {
  if (n.null()) return;
  std::string type = n.at("type").str();
  if (type == "Sequence") {
    const auto& arr = n.at("processors").array();
    for (size_t i = 0; i < arr.size(); ++i) read_post_processor(n.at("processors").at(i), p);
  } else if (type == "TemplateProcessing") {
    read_template(n.at("single"), p.single);
    read_template(n.at("pair"), p.pair);
    J st = n.at("special_tokens");
    if (!st.null()) {
      if (!st.j.is_object()) st.fail("is not an object");
      for (auto it = st.j.begin(); it != st.j.end(); ++it) {
        J one = st.at(it.key());
        std::vector<int64_t> ids;
        const auto& arr = one.at("ids").array();
        for (size_t i = 0; i < arr.size(); ++i) ids.push_back(one.at("ids").at(i).integer(0));
        p.template_ids[it.key()] = std::move(ids);
      }
    }
    // a template token without a special_tokens entry is looked up in the vocabulary (finish_pipeline)
  } else if (type == "BertProcessing") {
    auto sep = token_and_id(n.at("sep")), cls = token_and_id(n.at("cls"));
    set_template(p, cls.first + " $A " + sep.first, cls.first + " $A " + sep.first + " $B:1 " + sep.first + ":1", {sep, cls});
  } else if (type == "RobertaProcessing") {
    auto sep = token_and_id(n.at("sep")), cls = token_and_id(n.at("cls"));
    set_template(p, cls.first + " $A " + sep.first, cls.first + " $A " + sep.first + " " + sep.first + " $B " + sep.first, {sep, cls});
    if (n.at("trim_offsets").boolean(true)) p.trim_offsets = true;
  } else if (type == "ByteLevel") {
    if (n.at("trim_offsets").boolean(true)) p.trim_offsets = true;
  } else {
    n.at("type").fail("unknown post_processor type '" + type + "'");
  }
}

std::vector<std::string> vocab_from_map(const J& v, size_t extra = 0) {
  if (!v.j.is_object()) v.fail("is missing or not a {token: id} object");
  std::vector<std::string> vocab(v.j.size());
  std::vector<bool> seen(v.j.size());
  for (auto it = v.j.begin(); it != v.j.end(); ++it) {
    if (!it.value().is_number_unsigned()) throw Error(v.file, v.field + "." + it.key(), "id is not a non-negative integer");
    uint64_t id = it.value().get<uint64_t>();
    if (id >= vocab.size() + extra) throw Error(v.file, v.field + "." + it.key(), "id " + std::to_string(id) + " is out of range");
    if (id >= vocab.size()) {
      vocab.resize(id + 1);
      seen.resize(id + 1);
    }
    vocab[id] = it.key();
    seen[id] = true;
  }
  return vocab;
}

std::vector<std::pair<std::string, std::string>> read_merges(const J& m) {
  std::vector<std::pair<std::string, std::string>> out;
  if (m.null()) return out;
  const auto& arr = m.array();
  out.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw Error(m.file, m.field + "[" + std::to_string(i) + "]", "is not 'left right'");
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      out.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      throw Error(m.file, m.field + "[" + std::to_string(i) + "]", "is not a merge");
    }
  }
  return out;
}

// [[piece, score], ...] (Unigram vocabularies); with null_is_zero a null score reads as 0.
std::vector<std::pair<std::string, double>> read_piece_scores(const J& v, bool null_is_zero) {
  const auto& arr = v.array();
  std::vector<std::pair<std::string, double>> pieces;
  pieces.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    J e = v.at(i);
    if (!e.j.is_array() || e.j.size() != 2 || !e.j[0].is_string()) e.fail("is not [piece, score]");
    pieces.emplace_back(e.j[0].get<std::string>(), null_is_zero && e.j[1].is_null() ? 0.0 : e.at(1).number());
  }
  return pieces;
}

void read_model(const J& m, P& p, size_t n_added) {
  if (m.null()) m.fail("is missing");
  std::string type = m.at("type").str();
  if (type.empty()) {  // older files leave the type out; tell the models apart by their fields
    if (m.j.contains("merges")) type = "BPE";
    else if (m.j.contains("unk_id")) type = "Unigram";
    else if (m.j.contains("continuing_subword_prefix") || m.j.contains("max_input_chars_per_word")) type = "WordPiece";
  }
  if (type == "BPE") {
    BpeOptions o;
    o.unk_token = m.at("unk_token").str();
    o.continuing_subword_prefix = m.at("continuing_subword_prefix").str();
    o.end_of_word_suffix = m.at("end_of_word_suffix").str();
    o.fuse_unk = m.at("fuse_unk").boolean(false);
    o.byte_fallback = m.at("byte_fallback").boolean(false);
    o.ignore_merges = m.at("ignore_merges").boolean(false);
    for (const auto& t : p.pre_tokenizers) o.byte_level = o.byte_level || t.kind == PreTokenizer::ByteLevel;
    p.model = P::Bpe;
    p.bpe = std::make_shared<BpeModel>(vocab_from_map(m.at("vocab"), n_added), read_merges(m.at("merges")), o, p.source);
    p.kind = o.byte_level ? "BPE (byte-level)" : o.byte_fallback ? "BPE (SentencePiece-style, byte fallback)" : "BPE";
  } else if (type == "WordPiece") {
    p.model = P::WordPiece;
    p.wp_vocab = vocab_from_map(m.at("vocab"), n_added);
    p.wp_ids = VocabIndex(p.wp_vocab);
    p.wp_prefix = m.at("continuing_subword_prefix").str("##");
    p.wp_max_chars = static_cast<size_t>(m.at("max_input_chars_per_word").integer(100));
    std::string unk = m.at("unk_token").str("[UNK]");
    p.wp_unk = p.wp_ids.find(unk);
    if (p.wp_unk < 0) m.at("unk_token").fail("'" + unk + "' is not in the vocabulary");
    p.kind = "WordPiece";
  } else if (type == "Unigram") {
    auto pieces = read_piece_scores(m.at("vocab"), false);
    int64_t unk = m.at("unk_id").integer(0);
    p.model = P::Unigram;
    p.unigram = std::make_shared<UnigramModel>(std::move(pieces), unk, m.at("byte_fallback").boolean(false), p.source);
    p.kind = "Unigram";
  } else {
    m.at("type").fail("unknown model type '" + type + "' (BPE, Unigram and WordPiece are supported)");
  }
}

std::string token_name(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

// tokenizer_config.json: special token names, model_max_length, padding side.
void read_config(const std::string& path, P& p, const Tokenizer& view) {
  if (path.empty() || !file_exists(path)) return;
  json c = read_json(path);
  if (!c.is_object()) throw Error(path, "", "is not a JSON object");
  auto id = [&](const char* key, int64_t& slot) {
    if (!c.contains(key)) return;
    std::string name = token_name(c[key]);
    if (name.empty()) return;
    int64_t i = view.id_of(name);
    if (i >= 0) slot = i;
  };
  id("bos_token", p.bos);
  id("eos_token", p.eos);
  id("pad_token", p.pad);
  id("unk_token", p.unk);
  if (c.contains("model_max_length") && c["model_max_length"].is_number()) {
    double m = c["model_max_length"].get<double>();
    p.model_max_length = m > 0 && m < 1e9 ? static_cast<size_t>(m) : 0;
  }
  if (c.contains("padding_side") && c["padding_side"].is_string()) p.pad_left = c["padding_side"].get<std::string>() == "left";
}

std::shared_ptr<P> new_pipeline(const std::string& source) {
  auto p = std::make_shared<P>();
  p->source = source;
  p->source_dir = fs::path(source).parent_path().string();
  if (p->source_dir.empty()) p->source_dir = ".";
  return p;
}

const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                       "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
                                       "encoder.json", "vocab.bpe", "tokenizer.model", "spiece.model",
                                       "sentencepiece.bpe.model"};

}  // namespace

void finish_pipeline(P& p) {
  for (const auto& t : p.wp_vocab) p.wp_max_token_bytes = std::max(p.wp_max_token_bytes, t.size());
  for (const auto* t : {&p.single, &p.pair})
    for (const auto& it : *t) {
      if (it.sequence || p.template_ids.count(it.special)) continue;
      int64_t id = -1;
      for (const auto& a : p.added)
        if (a.content == it.special) id = a.id;
      if (id < 0) id = p.model_id(it.special);
      if (id < 0) throw Error(p.source, "post_processor", "template token '" + it.special + "' is neither in special_tokens nor in the vocabulary");
      p.template_ids[it.special] = {id};
    }
  std::stable_sort(p.added.begin(), p.added.end(), [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  p.added_by_id.clear();
  for (size_t i = 0; i < p.added.size(); ++i) {
    if (p.added[i].id < 0) throw Error(p.source, "added_tokens", "'" + p.added[i].content + "' has a negative id");
    p.added_by_id[p.added[i].id] = i;
    const auto& a = p.added[i];
    if (a.match && !a.content.empty()) p.added_first_byte[a.normalized ? 1 : 0][static_cast<unsigned char>(a.content[0])] = true;
  }
  auto find = [&](std::initializer_list<const char*> names) -> int64_t {
    for (const char* n : names) {
      for (const auto& a : p.added)
        if (a.content == n) return a.id;
      int64_t id = p.model_id(n);
      if (id >= 0) return id;
    }
    return -1;
  };
  // pieces hold U+2581 only as a leading run, and U+2581 alone is a piece: stretches can be encoded apart
  if (p.model == P::Bpe ? !p.bpe->options().byte_level : p.model == P::Unigram) {
    bool ok = p.model_id(kSpace) >= 0;
    for (size_t i = 0; ok && i < p.model_vocab_size(); ++i) {
      std::string t = p.model_token(static_cast<int64_t>(i));
      size_t k = 0;
      while (t.compare(k, kSpace.size(), kSpace) == 0) k += kSpace.size();
      ok = t.find(kSpace, k) == std::string::npos;
    }
    p.chunk_at_space_marker = ok;
  }
  bool normalized_added = false;
  for (bool b : p.added_first_byte[1]) normalized_added = normalized_added || b;
  p.fast_byte_level = p.model == P::Bpe && p.bpe->options().byte_level && p.normalizers.empty() && !normalized_added &&
                      p.pre_tokenizers.size() == 1 && p.pre_tokenizers[0].kind == PreTokenizer::ByteLevel &&
                      !p.pre_tokenizers[0].add_prefix_space && p.pre_tokenizers[0].re;
  p.fast_bert = p.model == P::WordPiece && !normalized_added && p.normalizers.size() == 1 &&
                p.normalizers[0].kind == Normalizer::Bert && p.normalizers[0].bert.clean_text &&
                p.pre_tokenizers.size() == 1 && p.pre_tokenizers[0].kind == PreTokenizer::Bert;
  {
    const auto& n = p.normalizers;
    bool llama_style = n.size() == 2 && n[0].kind == Normalizer::Prepend && n[0].a == kSpace && n[1].kind == Normalizer::Replace &&
                       !n[1].re && n[1].a == " " && n[1].b == kSpace;
    bool spm_plain = n.size() == 1 && n[0].kind == Normalizer::SentencePiece && !n[0].charsmap && !n[0].remove_extra_whitespaces &&
                     n[0].add_dummy_prefix && n[0].escape_whitespaces;
    p.fast_spm = p.chunk_at_space_marker && !normalized_added && p.pre_tokenizers.empty() && (llama_style || spm_plain);
  }
  if (p.bos < 0) p.bos = find({"<s>", "<|begin_of_text|>", "<bos>", "[CLS]"});
  if (p.eos < 0) p.eos = find({"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "[SEP]"});
  if (p.pad < 0) p.pad = find({"<pad>", "[PAD]", "<|pad|>"});
  if (p.unk < 0) p.unk = find({"<unk>", "[UNK]"});
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path, const std::string& config_path) {
  json doc = read_json(path, kMaxTokenizerFile);
  if (!doc.is_object()) throw Error(path, "", "is not a JSON object");
  auto p = new_pipeline(path);
  J root{doc, path, ""};
  J added = root.at("added_tokens");
  if (!added.null()) {
    for (size_t i = 0; i < added.array().size(); ++i) {
      J a = added.at(i);
      AddedToken t;
      t.id = a.at("id").integer(-1);
      t.content = a.at("content").str();
      if (t.id < 0 || t.content.empty()) a.fail("needs a non-negative id and non-empty content");
      t.special = a.at("special").boolean(false);
      t.single_word = a.at("single_word").boolean(false);
      t.lstrip = a.at("lstrip").boolean(false);
      t.rstrip = a.at("rstrip").boolean(false);
      t.normalized = a.at("normalized").boolean(!t.special);
      p->added.push_back(std::move(t));
    }
  }
  read_normalizer(root.at("normalizer"), *p);
  read_pre_tokenizer(root.at("pre_tokenizer"), *p);
  read_model(root.at("model"), *p, p->added.size());
  read_post_processor(root.at("post_processor"), *p);
  read_decoder(root.at("decoder"), *p);
  // template tokens that name no ids fall back to the vocabulary
  finish_pipeline(*p);
  Tokenizer t(p);
  std::string cfg = config_path.empty() ? (fs::path(path).parent_path() / "tokenizer_config.json").string() : config_path;
  read_config(cfg, *p, t);
  return t;
}

Tokenizer Tokenizer::from_gguf(const std::string& path) {
  GgufFile g = read_gguf(path);
  auto p = new_pipeline(path);
  p->source_dir.clear();
  auto strings = [&](const char* key) {
    const auto& a = g.at(path, key);
    if (!a.is_array()) throw Error(path, key, "is not an array");
    std::vector<std::string> out;
    out.reserve(a.size());
    for (const auto& v : a) {
      if (!v.is_string()) throw Error(path, key, "holds a non-string");
      out.push_back(v.get<std::string>());
    }
    return out;
  };
  auto integer = [&](const char* key, int64_t dflt) -> int64_t {
    if (!g.has(key)) return dflt;
    const auto& v = g.kv.at(key);
    if (!v.is_number_integer()) throw Error(path, key, "is not an integer");
    return v.get<int64_t>();
  };
  auto boolean = [&](const char* key, bool dflt) -> bool {
    if (!g.has(key)) return dflt;
    const auto& v = g.kv.at(key);
    if (!v.is_boolean()) throw Error(path, key, "is not a boolean");
    return v.get<bool>();
  };
  const auto& mk = g.at(path, "tokenizer.ggml.model");
  std::string model = mk.is_string() ? mk.get<std::string>() : "";
  std::vector<std::string> tokens = strings("tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), 1);
  if (g.has("tokenizer.ggml.token_type")) {
    const auto& t = g.kv.at("tokenizer.ggml.token_type");
    if (!t.is_array() || t.size() != tokens.size())
      throw Error(path, "tokenizer.ggml.token_type", "does not hold one type per token");
    for (size_t i = 0; i < t.size(); ++i) types[i] = t[i].is_number_integer() ? t[i].get<int64_t>() : 1;
  }
  auto check_id = [&](const char* key) {
    int64_t id = integer(key, -1);
    if (id >= static_cast<int64_t>(tokens.size())) throw Error(path, key, std::to_string(id) + " is not a token id");
    return id;
  };
  p->bos = check_id("tokenizer.ggml.bos_token_id");
  p->eos = check_id("tokenizer.ggml.eos_token_id");
  p->pad = check_id("tokenizer.ggml.padding_token_id");
  p->unk = check_id("tokenizer.ggml.unknown_token_id");
  // control (3) tokens are special; user-defined (4) ones are matched in text as they are
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 3 || types[i] == 4) {
      AddedToken a;
      a.id = static_cast<int64_t>(i);
      a.content = tokens[i];
      a.special = types[i] == 3;
      p->added.push_back(std::move(a));
    }
  bool add_bos = false, add_eos = false;
  if (model == "gpt2") {
    std::vector<std::pair<std::string, std::string>> merges;
    for (const auto& m : strings("tokenizer.ggml.merges")) {
      size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) throw Error(path, "tokenizer.ggml.merges", "'" + m + "' is not 'left right'");
      merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    std::string pre = g.has("tokenizer.ggml.pre") && g.kv.at("tokenizer.ggml.pre").is_string() ? g.kv.at("tokenizer.ggml.pre").get<std::string>() : "default";
    const char* pattern = nullptr;
    bool ignore_merges = false;
    if (pre == "default" || pre == "gpt-2" || pre == "gpt2") pattern = kGpt2Pattern;
    else if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3" || pre == "smaug-bpe") {
      pattern = kLlama3Pattern;
      ignore_merges = true;
    } else if (pre == "qwen2") pattern = kQwen2Pattern;
    else throw Error(path, "tokenizer.ggml.pre", "pre-tokenizer '" + pre + "' is not known (gpt-2, llama3/llama-bpe and qwen2 are)");
    PreTokenizer t{};
    t.kind = PreTokenizer::ByteLevel;
    t.add_prefix_space = false;
    t.re = std::make_shared<Regex>(pattern, path, "tokenizer.ggml.pre");
    p->pre_tokenizers.push_back(t);
    BpeOptions o;
    o.byte_level = true;
    o.ignore_merges = ignore_merges;
    p->bpe = std::make_shared<BpeModel>(tokens, merges, o, path);
    p->model = P::Bpe;
    p->decoders.push_back(make_decoder(Decoder::ByteLevel));
    p->kind = "BPE (byte-level)";
    add_bos = boolean("tokenizer.ggml.add_bos_token", false);
    add_eos = boolean("tokenizer.ggml.add_eos_token", false);
  } else if (model == "llama") {
    std::vector<float> scores(tokens.size(), 0.f);
    const auto& s = g.at(path, "tokenizer.ggml.scores");
    if (!s.is_array() || s.size() != tokens.size()) throw Error(path, "tokenizer.ggml.scores", "does not hold one score per token");
    for (size_t i = 0; i < s.size(); ++i) {
      if (!s[i].is_number()) throw Error(path, "tokenizer.ggml.scores", "holds a non-number");
      scores[i] = s[i].get<float>();
    }
    BpeOptions o;
    o.byte_fallback = true;
    if (p->unk >= 0) o.unk_token = tokens[static_cast<size_t>(p->unk)];
    p->bpe = std::make_shared<BpeModel>(BpeModel::from_scores(tokens, scores, o, path));
    p->model = P::Bpe;
    if (boolean("tokenizer.ggml.add_space_prefix", true)) p->normalizers.push_back(make_normalizer(Normalizer::Prepend, kSpace));
    p->normalizers.push_back(make_normalizer(Normalizer::Replace, " ", kSpace));
    p->decoders.push_back(make_decoder(Decoder::Replace, kSpace, " "));
    p->decoders.push_back(make_decoder(Decoder::ByteFallback));
    p->decoders.push_back(make_decoder(Decoder::Fuse));
    Decoder strip = make_decoder(Decoder::Strip, " ");
    strip.start = 1;
    p->decoders.push_back(strip);
    p->kind = "BPE (SentencePiece-style, byte fallback)";
    add_bos = boolean("tokenizer.ggml.add_bos_token", true);
    add_eos = boolean("tokenizer.ggml.add_eos_token", false);
  } else if (model == "bert") {
    // llama.cpp stores "▁word" for word starts and "piece" for "##piece"; [SPECIAL] tokens unchanged
    p->model = P::WordPiece;
    for (auto& s : tokens) {
      if (s.rfind(kSpace, 0) == 0) s = s.substr(kSpace.size());
      else if (!(s.size() >= 2 && s.front() == '[' && s.back() == ']')) s = "##" + s;
    }
    p->wp_vocab = tokens;
    p->wp_ids = VocabIndex(tokens);
    p->wp_unk = p->wp_ids.find("[UNK]");
    if (p->wp_unk < 0) throw Error(path, "tokenizer.ggml.tokens", "has no [UNK] token");
    p->normalizers.push_back(make_normalizer(Normalizer::Bert));
    p->pre_tokenizers.push_back(make_pre_tokenizer(PreTokenizer::Bert));
    p->decoders.push_back(make_decoder(Decoder::WordPiece, "##"));
    p->kind = "WordPiece";
    p->added.clear();  // BERT's [CLS] etc. are not matched inside text by BertTokenizer's GGUF vocabularies
    int64_t cls = p->wp_ids.find("[CLS]"), sep = p->wp_ids.find("[SEP]");
    if (cls >= 0 && sep >= 0) set_template(*p, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", {{"[CLS]", cls}, {"[SEP]", sep}});
  } else {
    throw Error(path, "tokenizer.ggml.model", "tokenizer model '" + model + "' is not supported (gpt2, llama and bert are)");
  }
  if (model != "bert")
    set_bos_eos_template(*p, add_bos ? p->bos : -1, add_bos && p->bos >= 0 ? tokens[static_cast<size_t>(p->bos)] : "",
                         add_eos ? p->eos : -1, add_eos && p->eos >= 0 ? tokens[static_cast<size_t>(p->eos)] : "");
  if (g.has("tokenizer.ggml.context_length")) p->model_max_length = static_cast<size_t>(integer("tokenizer.ggml.context_length", 0));
  finish_pipeline(*p);
  return Tokenizer(p);
}

Tokenizer Tokenizer::from_sentencepiece(const std::string& path) {
  SentencePieceSpec spec = read_sentencepiece_model(path);
  if (spec.treat_whitespace_as_suffix)
    throw Error(path, "trainer_spec.treat_whitespace_as_suffix", "whitespace as a suffix is not supported");
  auto p = new_pipeline(path);
  const size_t n = spec.pieces.size();
  std::vector<bool> usable(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& pc = spec.pieces[i];
    usable[i] = pc.type == 1 || pc.type == 4;
    if (pc.type == 2 || pc.type == 3 || pc.type == 4) {
      AddedToken a;
      a.id = static_cast<int64_t>(i);
      a.content = pc.text;
      a.special = pc.type != 4;
      a.normalized = true;
      a.match = pc.type == 4;  // SentencePiece never reads <s> or <unk> out of text; user-defined pieces it does
      p->added.push_back(std::move(a));
    }
  }
  Normalizer norm = make_normalizer(Normalizer::SentencePiece);
  if (!spec.charsmap.empty()) norm.charsmap = std::make_shared<CharsMap>(spec.charsmap, path, "normalizer_spec.precompiled_charsmap");
  norm.remove_extra_whitespaces = spec.remove_extra_whitespaces;
  norm.add_dummy_prefix = spec.add_dummy_prefix;
  norm.escape_whitespaces = spec.escape_whitespaces;
  p->normalizers.push_back(std::move(norm));
  if (spec.model_type == 1) {
    std::vector<std::pair<std::string, double>> pieces;
    pieces.reserve(n);
    for (const auto& pc : spec.pieces) pieces.emplace_back(pc.text, pc.score);
    p->unigram = std::make_shared<UnigramModel>(std::move(pieces), spec.unk_id, spec.byte_fallback, path, usable);
    p->model = P::Unigram;
    p->kind = "SentencePiece Unigram";
  } else {
    std::vector<std::string> vocab;
    std::vector<float> scores;
    for (const auto& pc : spec.pieces) {
      vocab.push_back(pc.text);
      scores.push_back(pc.score);
    }
    BpeOptions o;
    o.byte_fallback = spec.byte_fallback;
    if (spec.unk_id >= 0) o.unk_token = spec.pieces[static_cast<size_t>(spec.unk_id)].text;
    p->bpe = std::make_shared<BpeModel>(BpeModel::from_scores(std::move(vocab), scores, o, path, usable));
    p->model = P::Bpe;
    p->kind = "SentencePiece BPE";
  }
  if (spec.escape_whitespaces) p->decoders.push_back(make_decoder(Decoder::Replace, kSpace, " "));
  p->decoders.push_back(make_decoder(Decoder::ByteFallback));
  p->decoders.push_back(make_decoder(Decoder::Fuse));
  if (spec.add_dummy_prefix) {
    Decoder strip = make_decoder(Decoder::Strip, " ");
    strip.start = 1;
    p->decoders.push_back(strip);
  }
  p->bos = spec.bos_id;
  p->eos = spec.eos_id;
  p->pad = spec.pad_id;
  p->unk = spec.unk_id;
  bool add_bos = p->bos >= 0, add_eos = false;
  std::string cfg = (fs::path(path).parent_path() / "tokenizer_config.json").string();
  if (file_exists(cfg)) {
    json c = read_json(cfg);
    if (c.is_object() && c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) add_bos = c["add_bos_token"].get<bool>();
    if (c.is_object() && c.contains("add_eos_token") && c["add_eos_token"].is_boolean()) add_eos = c["add_eos_token"].get<bool>();
  }
  set_bos_eos_template(*p, add_bos ? p->bos : -1, add_bos && p->bos >= 0 ? spec.pieces[static_cast<size_t>(p->bos)].text : "",
                       add_eos ? p->eos : -1, add_eos && p->eos >= 0 ? spec.pieces[static_cast<size_t>(p->eos)].text : "");
  finish_pipeline(*p);
  Tokenizer t(p);
  read_config(cfg, *p, t);
  return t;
}

Tokenizer Tokenizer::from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt) {
  json v = read_json(vocab_json, kMaxTokenizerFile);
  auto p = new_pipeline(vocab_json);
  std::vector<std::string> vocab = vocab_from_map(J{v, vocab_json, ""});
  std::string text = read_file(merges_txt, kMaxTokenizerFile);
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string l = text.substr(at, nl - at);
    at = nl + 1;
    ++line;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.empty() || (line == 1 && l.rfind("#version", 0) == 0)) continue;
    size_t sp = l.find(' ', 1);
    if (sp == std::string::npos) throw Error(merges_txt, "line " + std::to_string(line), "is not 'left right'");
    merges.emplace_back(l.substr(0, sp), l.substr(sp + 1));
  }
  PreTokenizer t{};
  t.kind = PreTokenizer::ByteLevel;
  t.add_prefix_space = false;
  t.re = std::make_shared<Regex>(kGpt2Pattern, vocab_json, "pre_tokenizer");
  p->pre_tokenizers.push_back(t);
  BpeOptions o;
  o.byte_level = true;
  p->bpe = std::make_shared<BpeModel>(std::move(vocab), merges, o, merges_txt);
  p->model = P::Bpe;
  p->decoders.push_back(make_decoder(Decoder::ByteLevel));
  p->trim_offsets = false;  // as GPT-2's converted tokenizer.json: offsets keep the leading space
  p->kind = "BPE (byte-level)";
  int64_t eot = p->bpe->id_of("<|endoftext|>");
  if (eot >= 0) p->added.push_back(make_added("<|endoftext|>", eot));
  finish_pipeline(*p);
  Tokenizer tok(p);
  read_config((fs::path(vocab_json).parent_path() / "tokenizer_config.json").string(), *p, tok);
  return tok;
}

Tokenizer Tokenizer::from_vocab_txt(const std::string& path, const std::string& config_path) {
  WordPieceOptions opts;
  std::string cfg = config_path.empty() ? (fs::path(path).parent_path() / "tokenizer_config.json").string() : config_path;
  if (file_exists(cfg)) {
    json c = read_json(cfg);
    if (c.is_object()) {
      opts.lowercase = c.value("do_lower_case", true);
      opts.chinese_chars = c.value("tokenize_chinese_chars", true);
      if (c.contains("strip_accents") && c["strip_accents"].is_boolean()) opts.strip_accents = c["strip_accents"].get<bool>();
    }
  }
  auto p = new_pipeline(path);
  p->model = P::WordPiece;
  p->wp_vocab = read_vocab_txt(path);
  p->wp_ids = VocabIndex(p->wp_vocab);
  p->wp_unk = p->wp_ids.find("[UNK]");
  if (p->wp_unk < 0) throw Error(path, "vocab", "has no [UNK] token");
  Normalizer n = make_normalizer(Normalizer::Bert);
  n.bert = opts;
  p->normalizers.push_back(n);
  p->pre_tokenizers.push_back(make_pre_tokenizer(PreTokenizer::Bert));
  p->decoders.push_back(make_decoder(Decoder::WordPiece, "##"));
  for (const char* s : {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"})
    if (p->wp_ids.find(s) >= 0) p->added.push_back(make_added(s, p->wp_ids.find(s)));
  int64_t cls = p->wp_ids.find("[CLS]"), sep = p->wp_ids.find("[SEP]");
  if (cls >= 0 && sep >= 0) set_template(*p, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", {{"[CLS]", cls}, {"[SEP]", sep}});
  p->kind = "WordPiece";
  finish_pipeline(*p);
  Tokenizer t(p);
  read_config(cfg, *p, t);
  return t;
}

void Tokenizer::save(const std::string& dir) const {
  if (p_->source_dir.empty())
    throw Error(p_->source, "tokenizer", "a tokenizer read from a GGUF file has no Hugging Face files to save");
  std::error_code ec;
  if (fs::equivalent(p_->source_dir, dir, ec)) return;  // already there
  make_dirs(dir);
  for (const char* f : kTokenizerFiles) {
    fs::path from = fs::path(p_->source_dir) / f;
    if (file_exists(from.string())) write_atomic((fs::path(dir) / f).string(), read_file(from.string(), kMaxTokenizerFile));
  }
}

Tokenizer Tokenizer::from_use_lite_vocab(const std::string& path) {
  json v = read_json(path, kMaxTokenizerFile);
  // a few USE-Lite pieces have a null score, which the package's JavaScript adds as 0
  auto pieces = read_piece_scores(J{v, path, ""}, true);
  auto p = new_pipeline(path);
  p->model = P::UseLite;
  p->use_lite = std::make_shared<UseLiteVocab>(std::move(pieces), 6, path);  // the package reserves 6 ids
  p->kind = "USE-Lite unigram";
  p->normalizers.push_back(make_normalizer(Normalizer::NFKC));
  p->normalizers.push_back(make_normalizer(Normalizer::Prepend, kSpace));
  p->normalizers.push_back(make_normalizer(Normalizer::Replace, " ", kSpace));
  p->decoders.push_back(make_decoder(Decoder::Replace, kSpace, " "));
  p->decoders.push_back(make_decoder(Decoder::Fuse));
  Decoder strip = make_decoder(Decoder::Strip, " ");
  strip.start = 1;
  p->decoders.push_back(strip);
  p->unk = 0;
  finish_pipeline(*p);
  return Tokenizer(p);
}

Tokenizer Tokenizer::load(const std::string& path) {
  fs::path fp(path);
  if (fs::is_directory(fp)) {
    for (const char* f : {"tokenizer.json"})
      if (file_exists((fp / f).string())) return from_tokenizer_json((fp / f).string());
    if (file_exists((fp / "tokenizer.model").string())) return from_sentencepiece((fp / "tokenizer.model").string());
    if (file_exists((fp / "vocab.json").string()) && !file_exists((fp / "merges.txt").string()))
      return load((fp / "vocab.json").string());
    if (file_exists((fp / "vocab.json").string()) && file_exists((fp / "merges.txt").string()))
      return from_vocab_merges((fp / "vocab.json").string(), (fp / "merges.txt").string());
    if (file_exists((fp / "encoder.json").string()) && file_exists((fp / "vocab.bpe").string()))
      return from_vocab_merges((fp / "encoder.json").string(), (fp / "vocab.bpe").string());
    if (file_exists((fp / "vocab.txt").string())) return from_vocab_txt((fp / "vocab.txt").string());
    throw Error(path, "tokenizer", "no tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt found");
  }
  if (!file_exists(path)) throw Error(path, "tokenizer", "no such file or directory");
  std::string name = fp.filename().string(), ext = fp.extension().string();
  if (ext == ".gguf") return from_gguf(path);
  if (ext == ".model") return from_sentencepiece(path);
  if (name == "vocab.txt" || ext == ".txt") return from_vocab_txt(path);
  if (name == "vocab.json" || name == "encoder.json") {
    // USE-Lite's vocab.json is a list of [piece, score]; GPT-2's is a {token: id} object
    std::ifstream f(path, std::ios::binary);
    char c = 0;
    while (f.get(c) && std::isspace(static_cast<unsigned char>(c))) {
    }
    if (c == '[') return from_use_lite_vocab(path);
    fs::path dir = fp.parent_path();
    for (const char* m : {"merges.txt", "vocab.bpe"})
      if (file_exists((dir / m).string())) return from_vocab_merges(path, (dir / m).string());
    throw Error(path, "merges", "no merges.txt or vocab.bpe beside it");
  }
  if (ext == ".json") return from_tokenizer_json(path);
  // GGUF files need no extension: look at the magic
  char head[4] = {};
  std::ifstream(path, std::ios::binary).read(head, 4);
  if (std::string_view(head, 4) == "GGUF") return from_gguf(path);
  throw Error(path, "tokenizer", "unrecognised tokenizer file (expected tokenizer.json, .gguf, .model, vocab.txt or vocab.json)");
}

}  // namespace kotsu
