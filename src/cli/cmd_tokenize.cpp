// kotsu tokenize --model DIR|FILE [TEXT...] | --file PATH: token ids and pieces of texts, one line per text
// (or one JSON object per line with --json: ids, tokens, offsets). Without TEXT or --file, reads stdin lines.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/text/tokenizer.hpp"

namespace kotsu::cli {

Action add_tokenize(CLI::App& app) {
  struct Flags {
    std::string model, file, pair;
    std::vector<std::string> texts;
    bool json = false, no_special = false, ids_only = false, decode = false, show_special = false;
    size_t max_length = 0;
  };
  auto f = std::make_shared<Flags>();
  auto* c = app.add_subcommand("tokenize", "print the token ids and pieces of texts");
  c->add_option("--model", f->model,
                "model directory, tokenizer.json, .gguf, SentencePiece .model, vocab.txt or vocab.json")->required();
  c->add_option("texts", f->texts, "texts to tokenize (default: one per stdin line)");
  c->add_option("--file", f->file, "tokenize every line of this file");
  c->add_option("--pair", f->pair, "second text of a pair (with a single TEXT)");
  c->add_flag("--json", f->json, "one JSON object per line: ids, tokens, offsets, type_ids");
  c->add_flag("--ids", f->ids_only, "print only the ids");
  c->add_flag("--no-special", f->no_special, "leave out the template's special tokens (BOS, [CLS], ...)");
  c->add_flag("--decode", f->decode, "read whitespace-separated ids and print the decoded text");
  c->add_flag("--show-special", f->show_special, "with --decode: keep special tokens (<s>, [CLS], ...) in the text");
  c->add_option("--max-length", f->max_length, "truncate to this many tokens (special ones included)");
  return [f]() {
    Tokenizer tok = Tokenizer::load(f->model);
    EncodeOptions o;
    o.add_special = !f->no_special;
    o.max_length = f->max_length;
    auto emit = [&](const std::string& text, const std::string* second) {
      if (f->decode) {
        std::vector<int64_t> ids;
        size_t at = 0;
        while (at < text.size()) {
          size_t end = text.find_first_of(" \t,", at);
          if (end == std::string::npos) end = text.size();
          std::string w = text.substr(at, end - at);
          at = end + 1;
          if (w.empty()) continue;
          try {
            ids.push_back(std::stoll(w));
          } catch (const std::exception&) {
            throw Error("<input>", "id '" + w + "'", "is not an integer");
          }
        }
        fmt::print("{}\n", tok.decode(ids, !f->show_special));
        return;
      }
      TokenizedText e = second ? tok.encode_pair(text, *second, o) : tok.encode(text, o);
      if (f->json) {
        nlohmann::ordered_json j;
        j["text"] = text;
        j["ids"] = e.ids;
        std::vector<std::string> toks;
        for (int64_t id : e.ids) toks.push_back(tok.token(id));
        j["tokens"] = toks;
        j["offsets"] = e.offsets;
        if (second) j["type_ids"] = e.type_ids;
        fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else if (f->ids_only) {
        fmt::print("{}\n", fmt::join(e.ids, " "));
      } else {
        std::string line;
        for (size_t k = 0; k < e.size(); ++k) line += fmt::format("{}{}:{}", k ? " " : "", e.ids[k], tok.token(e.ids[k]));
        fmt::print("{}\n", line);
      }
    };
    if (!f->pair.empty()) {
      if (f->texts.size() != 1) throw Error("<arguments>", "--pair", "needs exactly one TEXT");
      emit(f->texts[0], &f->pair);
      return 0;
    }
    for (const auto& t : f->texts) emit(t, nullptr);
    if (!f->texts.empty()) return 0;
    std::ifstream file;
    if (!f->file.empty()) {
      file.open(f->file, std::ios::binary);
      if (!file) throw Error(f->file, "--file", "cannot be opened");
    }
    std::istream& in = f->file.empty() ? std::cin : file;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      emit(line, nullptr);
    }
    std::fflush(stdout);
    return 0;
  };
}

}  // namespace kotsu::cli
