// Builders of Tokenizer pipelines from GGUF, SentencePiece .model, vocab.json + merges.txt, vocab.txt and
// USE-Lite vocab.json; the dispatcher Tokenizer::load, finish_pipeline and save (see tokenizer.hpp).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/gguf.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/text/tokenizer.hpp"
#include "kotsu/text/tokenizer_build.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

namespace fs = std::filesystem;
using json = nlohmann::json;
using P = Tokenizer::Pipeline;

namespace tok {

Normalizer make_normalizer(Normalizer::Kind k, std::string a, std::string b) {
  Normalizer n{};
  n.kind = k;
  n.a = std::move(a);
  n.b = std::move(b);
  return n;
}

Decoder make_decoder(Decoder::Kind k, std::string a, std::string b) {
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

std::vector<std::string> vocab_from_map(const J& v, size_t extra) {
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

std::pair<std::string, std::string> split_merge(const std::string& s, const std::string& file, const std::string& field) {
  size_t sp = s.find(' ', 1);
  if (sp == std::string::npos) throw Error(file, field, "'" + s + "' is not 'left right'");
  return {s.substr(0, sp), s.substr(sp + 1)};
}

void set_byte_level_bpe(P& p, std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                        const std::string& merges_source, const char* pattern, bool ignore_merges, const std::string& field) {
  PreTokenizer t = make_pre_tokenizer(PreTokenizer::ByteLevel);
  t.add_prefix_space = false;
  t.re = std::make_shared<Regex>(pattern, p.source, field);
  p.pre_tokenizers.push_back(t);
  BpeOptions o;
  o.byte_level = true;
  o.ignore_merges = ignore_merges;
  p.bpe = std::make_shared<BpeModel>(std::move(vocab), merges, o, merges_source);
  p.model = P::Bpe;
  p.decoders.push_back(make_decoder(Decoder::ByteLevel));
  p.kind = "BPE (byte-level)";
}

std::shared_ptr<P> new_pipeline(const std::string& source) {
  auto p = std::make_shared<P>();
  p->source = source;
  p->source_dir = fs::path(source).parent_path().string();
  if (p->source_dir.empty()) p->source_dir = ".";
  return p;
}

}  // namespace tok

using namespace tok;

namespace {

const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                       "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
                                       "encoder.json", "vocab.bpe", "tokenizer.model", "spiece.model",
                                       "sentencepiece.bpe.model"};

}  // namespace

constexpr int64_t kMaxTokenId = int64_t(1) << 24;

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
    if (p.added[i].id >= kMaxTokenId)  // real vocabularies stop near 2^18; an id like 10^9 is a corrupt file
      throw Error(p.source, "added_tokens", "'" + p.added[i].content + "' has id " + std::to_string(p.added[i].id) +
                                                ", over the limit of " + std::to_string(kMaxTokenId));
    p.added_by_id[p.added[i].id] = i;
    const auto& a = p.added[i];
    if (a.match && !a.content.empty()) p.added_first_byte[a.normalized ? 1 : 0][static_cast<unsigned char>(a.content[0])] = true;
  }
  // every id a template emits must name a row of the vocabulary (model + added tokens): an id outside it
  // would only fail later, deep in the model's embedding lookup
  int64_t vocab = static_cast<int64_t>(p.model_vocab_size());
  for (const auto& a : p.added) vocab = std::max(vocab, a.id + 1);
  for (const auto& [token, ids] : p.template_ids)
    for (int64_t id : ids)
      if (id < 0 || id >= vocab)
        throw Error(p.source, "post_processor.special_tokens." + token,
                    "id " + std::to_string(id) + " is outside the vocabulary (0 to " + std::to_string(vocab - 1) + ")");
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
    for (size_t i = 0; i < t.size(); ++i) {
      // llama.cpp's token types: 0 undefined, 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
      if (!t[i].is_number_integer() || t[i].get<int64_t>() < 0 || t[i].get<int64_t>() > 6)
        throw Error(path, "tokenizer.ggml.token_type[" + std::to_string(i) + "]", "is " + t[i].dump() + ", not a token type (0 to 6)");
      types[i] = t[i].get<int64_t>();
    }
  }
  auto check_id = [&](const char* key) {
    int64_t id = integer(key, -1);
    if (id < -1 || id >= static_cast<int64_t>(tokens.size())) throw Error(path, key, std::to_string(id) + " is not a token id");
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
    for (const auto& m : strings("tokenizer.ggml.merges")) merges.push_back(split_merge(m, path, "tokenizer.ggml.merges"));
    std::string pre = g.has("tokenizer.ggml.pre") && g.kv.at("tokenizer.ggml.pre").is_string() ? g.kv.at("tokenizer.ggml.pre").get<std::string>() : "default";
    const char* pattern = nullptr;
    bool ignore_merges = false, digits_apart = false;
    if (pre == "default" || pre == "gpt-2" || pre == "gpt2") pattern = kGpt2Pattern;
    else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell" ||
             pre == "exaone" || pre == "minerva-7b") {
      // llama.cpp splits these with "\p{N}" and then GPT-2's pattern: the tokenizer.json of such models has a
      // Digits(individual_digits) pre-tokenizer before the ByteLevel one (the same Unicode number class)
      pattern = kGpt2Pattern;
      digits_apart = true;
    }
    else if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3" || pre == "smaug-bpe") {
      pattern = kLlama3Pattern;
      ignore_merges = true;
    } else if (pre == "qwen2") pattern = kQwen2Pattern;
    else throw Error(path, "tokenizer.ggml.pre", "pre-tokenizer '" + pre + "' is not known (gpt-2, llama3/llama-bpe, qwen2 and smollm/starcoder are)");
    if (digits_apart) {
      PreTokenizer d = make_pre_tokenizer(PreTokenizer::Digits);
      d.individual_digits = true;
      p->pre_tokenizers.push_back(d);
    }
    set_byte_level_bpe(*p, tokens, merges, path, pattern, ignore_merges, "tokenizer.ggml.pre");
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
    merges.push_back(split_merge(l, merges_txt, "line " + std::to_string(line)));
  }
  set_byte_level_bpe(*p, std::move(vocab), merges, merges_txt, kGpt2Pattern, false, "pre_tokenizer");
  p->trim_offsets = false;  // as GPT-2's converted tokenizer.json: offsets keep the leading space
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
