// bench/tokenize: single-thread encoding throughput (MB of UTF-8 text per second) of one tokenizer over
// a text file, one text per line (--lines) or the whole file as one text (--whole). Prints one JSON line:
// the first pass (cold caches) and the median of the following passes.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "kotsu/io/file.hpp"
#include "kotsu/text/tokenizer.hpp"

using namespace kotsu;
using clk = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string model, path;
  bool whole = false;
  int passes = 5;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--model") model = next();
    else if (k == "--text") path = next();
    else if (k == "--whole") whole = true;
    else if (k == "--passes") passes = std::stoi(next());
    else {
      fmt::print(stderr, "unknown argument {}\n", k);
      return 2;
    }
  }
  Tokenizer tok = Tokenizer::load(model);
  std::string all = read_file(path);
  std::vector<std::string> texts;
  if (whole) {
    texts.push_back(all);
  } else {
    for (size_t at = 0; at < all.size();) {
      size_t nl = all.find('\n', at);
      if (nl == std::string::npos) nl = all.size();
      if (nl > at) texts.push_back(all.substr(at, nl - at));
      at = nl + 1;
    }
  }
  size_t bytes = 0;
  for (auto& t : texts) bytes += t.size();
  std::vector<double> rates;
  size_t tokens = 0;
  for (int p = 0; p < passes; ++p) {
    tokens = 0;
    auto t0 = clk::now();
    for (const auto& t : texts) tokens += tok.encode_ids(t).size();
    double s = std::chrono::duration<double>(clk::now() - t0).count();
    rates.push_back(static_cast<double>(bytes) / 1e6 / s);
  }
  double first = rates.front();
  std::vector<double> rest(rates.begin() + 1, rates.end());
  if (rest.empty()) rest = rates;
  std::sort(rest.begin(), rest.end());
  fmt::print("{{\"tokenizer\": \"{}\", \"mb\": {:.3f}, \"texts\": {}, \"tokens\": {}, \"first_mb_s\": {:.2f}, \"mb_s\": {:.2f}}}\n",
             tok.describe(), static_cast<double>(bytes) / 1e6, texts.size(), tokens, first, rest[rest.size() / 2]);
  return 0;
}
