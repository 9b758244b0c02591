#include "kotsu/text/tokenizer.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/text/byte_level.hpp"
#include "kotsu/text/tokenizer_text.hpp"
#include "kotsu/text/unicode.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

using P = Tokenizer::Pipeline;

namespace {

using namespace tok;

struct Seq {
  std::vector<int64_t> ids;
  std::vector<std::pair<size_t, size_t>> offsets;
};

void trim_offset(std::string_view text, std::pair<size_t, size_t>& o) {
  size_t b = o.first, e = o.second;
  while (b < e && text[b] == ' ') ++b;
  while (e > b && text[e - 1] == ' ') --e;
  if (b < e) o = {b, e};
}

// A token made of some of a character's UTF-8 bytes (byte-level BPE splits rare characters into byte tokens)
// covers the whole character, as the Hugging Face tokenizers' offsets do (they count whole characters).
// Bytes that are not part of a well-formed character (invalid UTF-8, carried byte by byte) stay as they are.
size_t utf8_length(unsigned char lead) { return lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1; }
size_t character_start(std::string_view text, size_t i) {  // of the character holding byte i (i itself if none)
  auto continuation = [&](size_t k) { return (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80; };
  if (i >= text.size() || !continuation(i)) return i;
  size_t j = i;
  while (j > 0 && i - j < 3 && continuation(j)) --j;
  const auto lead = static_cast<unsigned char>(text[j]);
  return lead >= 0xC0 && j + utf8_length(lead) > i ? j : i;
}
void widen_to_characters(std::string_view text, std::pair<size_t, size_t>& o) {
  if (o.second <= o.first) return;
  o.first = character_start(text, o.first);
  const size_t s = character_start(text, o.second);
  if (s < o.second) o.second = std::min(text.size(), s + utf8_length(static_cast<unsigned char>(text[s])));
}

const std::string kSpaceMarker = "\xE2\x96\x81";

void model_run(const P& pl, std::string_view w, std::vector<int64_t>& ids, std::vector<Span>* spans) {
  switch (pl.model) {
    case P::Bpe: pl.bpe->encode(w, ids, spans); break;
    case P::Unigram: pl.unigram->encode(w, ids, spans); break;
    case P::UseLite: pl.use_lite->encode(w, ids, spans); break;
    case P::WordPiece:
      wordpiece_split(w, pl.wp_ids, pl.wp_prefix, pl.wp_max_chars, pl.wp_unk, ids, spans, pl.wp_max_token_bytes);
      break;
  }
}

// Calls f(begin, end) for each stretch of t that starts at a U+2581 following other text (and the first).
template <class F>
void for_each_marker_chunk(std::string_view t, F f) {
  size_t start = 0;
  for (size_t at = t.find(kSpaceMarker, 1); at != std::string_view::npos; at = t.find(kSpaceMarker, at + kSpaceMarker.size())) {
    if (at >= kSpaceMarker.size() && t.compare(at - kSpaceMarker.size(), kSpaceMarker.size(), kSpaceMarker) == 0) continue;
    f(start, at);
    start = at;
  }
  f(start, t.size());
}

void model_encode(const P& pl, const Piece& p, Seq& out, std::string_view original, bool offsets) {
  std::vector<Span> spans;
  std::vector<int64_t>& ids = out.ids;
  if (pl.chunk_at_space_marker) {  // no piece crosses these chunks: each is encoded (and cached) alone
    std::string_view t = p.text;
    for_each_marker_chunk(t, [&](size_t b, size_t e) {
      size_t mark = spans.size();
      model_run(pl, t.substr(b, e - b), ids, offsets ? &spans : nullptr);
      for (size_t k = mark; k < spans.size(); ++k) spans[k] = {spans[k].first + b, spans[k].second + b};
    });
  } else {
    model_run(pl, p.text, ids, offsets ? &spans : nullptr);
  }
  if (!offsets) return;
  for (size_t k = 0; k < spans.size(); ++k) {
    auto [b, e] = spans[k];
    std::pair<size_t, size_t> o{0, 0};
    if (e > b && e <= p.text.size()) {
      Span r = p.range(b, e);
      o = {r.first, r.second};
    } else if (!p.text.empty()) {
      o = {p.orig(std::min<size_t>(b, p.text.size() - 1)).first, p.orig(std::min<size_t>(b, p.text.size() - 1)).first};
    }
    widen_to_characters(original, o);
    if (pl.trim_offsets) trim_offset(original, o);
    out.offsets.push_back(o);
  }
}

// The common pipelines on text that needs no alignment bookkeeping, without building pieces:
// byte-level BPE (no normalizer, one regex ByteLevel pre-tokenizer) and BERT on ASCII text. Same
// results as the general path (the tokenizer tests run both); returns false when it does not apply.
bool fast_path(const P& pl, std::string_view t, uint32_t base, Seq& out, std::string_view original, bool offsets) {
  auto emit_offsets = [&](const std::vector<Span>& sp, size_t from, size_t at) {
    for (size_t k = from; k < sp.size(); ++k) {
      std::pair<size_t, size_t> o{base + at + sp[k].first, base + at + sp[k].second};
      widen_to_characters(original, o);
      if (pl.trim_offsets) trim_offset(original, o);
      out.offsets.push_back(o);
    }
  };
  std::vector<Span> sp;
  if (pl.fast_spm && !offsets) {  // ids only: "▁" + text with spaces as "▁", then the chunks
    if (t.empty()) return true;
    std::string norm = kSpaceMarker;
    norm.reserve(t.size() + 16);
    for (char c : t) {
      if (c == ' ') norm += kSpaceMarker;
      else norm.push_back(c);
    }
    std::string_view nv = norm;
    for_each_marker_chunk(nv, [&](size_t b, size_t e) { model_run(pl, nv.substr(b, e - b), out.ids, nullptr); });
    return true;
  }
  if (pl.fast_byte_level) {
    auto run = [&](size_t b, size_t e) {
      size_t mark = sp.size();
      pl.bpe->encode(t.substr(b, e - b), out.ids, offsets ? &sp : nullptr);
      if (offsets) emit_offsets(sp, mark, b);
    };
    size_t at = 0;
    for (auto [b, e] : pl.pre_tokenizers[0].re->find_all(t)) {
      if (b > at) run(at, b);
      run(b, e);
      at = e;
    }
    if (at < t.size()) run(at, t.size());
    return true;
  }
  if (pl.fast_bert) {  // chunk at ASCII whitespace (BERT's normalizer is per character); plain-ASCII chunks go fast
    const WordPieceOptions& o = pl.normalizers[0].bert;
    auto punct = [](char c) { return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126); };
    std::string low;
    auto run = [&](size_t b, size_t e) {
      size_t mark = sp.size();
      wordpiece_split(std::string_view(low).substr(b, e - b), pl.wp_ids, pl.wp_prefix, pl.wp_max_chars, pl.wp_unk, out.ids,
                      offsets ? &sp : nullptr, pl.wp_max_token_bytes);
      if (offsets) emit_offsets(sp, mark, b);
    };
    low.assign(t);
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    std::vector<Piece> pieces;
    for (size_t i = 0; i < t.size();) {
      while (i < t.size() && space(t[i])) ++i;
      size_t e = i;
      bool plain = true;
      while (e < t.size() && !space(t[e])) {
        auto u = static_cast<unsigned char>(t[e]);
        plain = plain && u >= 0x20 && u < 0x7F;
        ++e;
      }
      if (e == i) break;
      if (!plain) {  // the general pipeline on this chunk
        Piece chunk;
        chunk.text.assign(t.substr(i, e - i));
        chunk.off = base + static_cast<uint32_t>(i);
        normalize(pl, chunk);
        pieces.clear();
        pieces.push_back(std::move(chunk));
        pre_tokenize(pl, pieces);
        for (const auto& p : pieces)
          if (!p.text.empty()) model_encode(pl, p, out, original, offsets);
        i = e;
        continue;
      }
      if (o.lowercase)
        for (size_t k = i; k < e; ++k)
          if (low[k] >= 'A' && low[k] <= 'Z') low[k] = static_cast<char>(low[k] + 32);
      size_t word = i;
      for (size_t k = i; k < e; ++k)
        if (punct(low[k])) {
          if (k > word) run(word, k);
          run(k, k + 1);
          word = k + 1;
        }
      if (e > word) run(word, e);
      i = e;
    }
    return true;
  }
  return false;
}

Seq encode_seq(const P& pl, std::string_view text, bool offsets = true) {
  Seq out;
  Piece whole;
  whole.text.assign(text);
  std::vector<Part> raw;
  if (pl.added.empty()) raw.push_back({std::move(whole), -1});
  else split_added(pl, std::move(whole), false, raw);
  std::vector<Piece> pieces;
  for (auto& part : raw) {
    if (part.added >= 0) {
      out.ids.push_back(part.added);
      Span r = part.text.text.empty() ? Span{0, 0} : part.text.range(0, part.text.text.size());
      out.offsets.emplace_back(r.first, r.second);
      continue;
    }
    if (!part.text.al && fast_path(pl, part.text.text, part.text.off, out, text, offsets)) continue;
    normalize(pl, part.text);
    std::vector<Part> norm;
    if (pl.added.empty()) norm.push_back({std::move(part.text), -1});
    else split_added(pl, std::move(part.text), true, norm);
    for (auto& np : norm) {
      if (np.added >= 0) {
        out.ids.push_back(np.added);
        Span r = np.text.range(0, np.text.text.size());
        out.offsets.emplace_back(r.first, r.second);
        continue;
      }
      pieces.clear();
      pieces.push_back(std::move(np.text));
      pre_tokenize(pl, pieces);
      for (const auto& p : pieces)
        if (!p.text.empty()) model_encode(pl, p, out, text, offsets);
    }
  }
  return out;
}

size_t template_specials(const std::vector<TemplateItem>& t, const P& pl) {
  size_t n = 0;
  for (const auto& it : t)
    if (!it.sequence) n += pl.template_ids.at(it.special).size();
  return n;
}

void truncate(Seq& a, Seq* b, size_t budget, Truncation how, const std::string& source) {
  auto cut = [](Seq& s, size_t n) {
    s.ids.resize(n);
    s.offsets.resize(n);
  };
  size_t na = a.ids.size(), nb = b ? b->ids.size() : 0;
  if (na + nb <= budget) return;
  if (!b || how == Truncation::OnlyFirst) {
    size_t keep = budget > nb ? budget - nb : 0;
    if (b && nb > budget) throw Error(source, "truncation", "the second sequence alone exceeds max_length with only_first");
    cut(a, std::min(na, keep));
  } else if (how == Truncation::OnlySecond) {
    if (na > budget) throw Error(source, "truncation", "the first sequence alone exceeds max_length with only_second");
    cut(*b, budget - na);
  } else {  // longest first, one token at a time (ties: the second loses first, as in tokenizers)
    while (na + nb > budget) {
      if (na > nb) --na;
      else --nb;
    }
    cut(a, na);
    cut(*b, nb);
  }
}

TokenizedText assemble(const P& pl, Seq a, Seq* b, const EncodeOptions& o) {
  const auto& tmpl = b ? pl.pair : pl.single;
  const bool use_template = o.add_special && !tmpl.empty();
  if (o.max_length > 0) {
    size_t specials = use_template ? template_specials(tmpl, pl) : 0;
    size_t budget = o.max_length > specials ? o.max_length - specials : 0;
    truncate(a, b, budget, o.truncation, pl.source);
  }
  TokenizedText t;
  auto add = [&](int64_t id, int64_t type, int8_t seq, std::pair<size_t, size_t> off, bool special) {
    t.ids.push_back(id);
    t.type_ids.push_back(type);
    t.attention_mask.push_back(1);
    t.special_mask.push_back(special ? 1 : 0);
    t.sequence.push_back(seq);
    t.offsets.push_back(off);
  };
  auto add_seq = [&](const Seq& s, int64_t type, int8_t which) {
    for (size_t k = 0; k < s.ids.size(); ++k) add(s.ids[k], type, which, s.offsets[k], false);
  };
  if (!use_template) {
    add_seq(a, 0, 0);
    if (b) add_seq(*b, 1, 1);
    return t;
  }
  for (const auto& it : tmpl) {
    if (it.sequence) {
      if (it.which == 0) add_seq(a, it.type_id, 0);
      else if (b) add_seq(*b, it.type_id, 1);
    } else {
      for (int64_t id : pl.template_ids.at(it.special)) add(id, it.type_id, -1, {0, 0}, true);
    }
  }
  return t;
}

void pad_to(const P& pl, TokenizedText& t, size_t len, bool left) {
  if (t.size() >= len) return;
  size_t n = len - t.size();
  int64_t pad = pl.pad >= 0 ? pl.pad : pl.eos >= 0 ? pl.eos : 0;
  auto ins = [&](auto& v, auto val) {
    if (left) v.insert(v.begin(), n, val);
    else v.insert(v.end(), n, val);
  };
  ins(t.ids, pad);
  ins(t.type_ids, int64_t(0));
  ins(t.attention_mask, int64_t(0));
  ins(t.special_mask, uint8_t(1));
  ins(t.sequence, int8_t(-1));
  ins(t.offsets, std::pair<size_t, size_t>{0, 0});
}

}  // namespace

// --- Pipeline vocabulary ---

size_t P::model_vocab_size() const {
  switch (model) {
    case Bpe: return bpe->vocab_size();
    case Unigram: return unigram->vocab_size();
    case UseLite: return use_lite->vocab_size();
    case WordPiece: return wp_vocab.size();
  }
  return 0;
}

std::string P::model_token(int64_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= model_vocab_size()) return "";
  switch (model) {
    case Bpe: return bpe->token(id);
    case Unigram: return unigram->token(id);
    case UseLite: return use_lite->token(id);
    case WordPiece: return wp_vocab[static_cast<size_t>(id)];
  }
  return "";
}

int64_t P::model_id(std::string_view t) const {
  switch (model) {
    case Bpe: return bpe->id_of(t);
    case Unigram: return unigram->id_of(t);
    case UseLite: return use_lite->id_of(t);
    case WordPiece: {
      return wp_ids.find(t);
    }
  }
  return -1;
}

// --- Tokenizer ---

std::vector<int64_t> Tokenizer::encode_ids(std::string_view text) const { return encode_seq(*p_, text, false).ids; }

TokenizedText Tokenizer::encode(std::string_view text, const EncodeOptions& o) const {
  TokenizedText t = assemble(*p_, encode_seq(*p_, text), nullptr, o);
  if (o.pad && o.pad_to > 0) pad_to(*p_, t, o.pad_to, o.pad_left.value_or(p_->pad_left));
  return t;
}

TokenizedText Tokenizer::encode_pair(std::string_view a, std::string_view b, const EncodeOptions& o) const {
  Seq sb = encode_seq(*p_, b);
  TokenizedText t = assemble(*p_, encode_seq(*p_, a), &sb, o);
  if (o.pad && o.pad_to > 0) pad_to(*p_, t, o.pad_to, o.pad_left.value_or(p_->pad_left));
  return t;
}

std::vector<TokenizedText> Tokenizer::encode_batch(const std::vector<std::string>& texts, const EncodeOptions& o,
                                                   const std::vector<std::string>& second) const {
  if (!second.empty() && second.size() != texts.size())
    throw Error(p_->source, "encode_batch", std::to_string(texts.size()) + " first texts but " + std::to_string(second.size()) + " second");
  std::vector<TokenizedText> out;
  out.reserve(texts.size());
  EncodeOptions one = o;
  one.pad = false;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    out.push_back(second.empty() ? encode(texts[i], one) : encode_pair(texts[i], second[i], one));
    longest = std::max(longest, out.back().size());
  }
  if (o.pad)
    for (auto& t : out) pad_to(*p_, t, o.pad_to > 0 ? std::max(o.pad_to, t.size()) : longest, o.pad_left.value_or(p_->pad_left));
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  const P& pl = *p_;
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int64_t id : ids) {
    if (skip_special && is_special(id)) continue;
    std::string t = token(id);
    if (!t.empty()) toks.push_back(std::move(t));
  }
  if (pl.decoders.empty()) {
    std::string out;
    for (size_t k = 0; k < toks.size(); ++k) out += (k ? " " : "") + toks[k];
    return out;
  }
  std::string out;
  for (auto& t : run_decoders(pl, std::move(toks))) out += t;
  return out;
}

Tokenizer Tokenizer::general_path_only() const {
  auto p = std::make_shared<Pipeline>(*p_);
  p->fast_byte_level = p->fast_bert = p->fast_spm = false;
  return Tokenizer(p);
}

size_t Tokenizer::vocab_size() const {
  size_t n = p_->model_vocab_size();
  for (const auto& a : p_->added) n = std::max(n, static_cast<size_t>(a.id) + 1);
  return n;
}

std::string Tokenizer::token(int64_t id) const {
  auto it = p_->added_by_id.find(id);
  if (it != p_->added_by_id.end()) return p_->added[it->second].content;
  return p_->model_token(id);
}

int64_t Tokenizer::id_of(std::string_view t) const {
  for (const auto& a : p_->added)
    if (a.content == t) return a.id;
  return p_->model_id(t);
}

bool Tokenizer::is_special(int64_t id) const {
  auto it = p_->added_by_id.find(id);
  if (it != p_->added_by_id.end()) return p_->added[it->second].special;
  return false;
}

int64_t Tokenizer::bos_id() const { return p_->bos; }
int64_t Tokenizer::eos_id() const { return p_->eos; }
int64_t Tokenizer::pad_id() const { return p_->pad >= 0 ? p_->pad : p_->eos >= 0 ? p_->eos : 0; }
int64_t Tokenizer::unk_id() const { return p_->unk; }
size_t Tokenizer::model_max_length() const { return p_->model_max_length; }
std::string Tokenizer::describe() const {
  return p_->kind + ", " + std::to_string(vocab_size()) + " tokens, from " + p_->source;
}

}  // namespace kotsu
