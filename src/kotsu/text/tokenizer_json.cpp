// Hugging Face tokenizer.json -> Tokenizer pipeline (normalizer, pre_tokenizer, model, post_processor,
// decoder, added_tokens) and tokenizer_config.json beside it.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "kotsu/text/tokenizer_build.hpp"

namespace kotsu {

namespace fs = std::filesystem;
using namespace tok;

namespace {

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

std::vector<std::pair<std::string, std::string>> read_merges(const J& m) {
  std::vector<std::pair<std::string, std::string>> out;
  if (m.null()) return out;
  const auto& arr = m.array();
  out.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& e = arr[i];
    if (e.is_string()) {
      out.push_back(split_merge(e.get_ref<const std::string&>(), m.file, m.field + "[" + std::to_string(i) + "]"));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      out.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      throw Error(m.file, m.field + "[" + std::to_string(i) + "]", "is not a merge");
    }
  }
  return out;
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

}  // namespace

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

}  // namespace kotsu
