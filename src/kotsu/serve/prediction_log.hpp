// kotsu/serve/prediction_log: a JSONL record of what the server predicted, the input of `kotsu drift`.
// Each sampled input is one line: {"time", "model", "version", "input_sha256", "input_length", "label",
// "confidence"} (+ "input", texts only, with store_inputs: by default inputs are hashed, not stored, since they
// may hold personal data). input_length is the text's length in characters, or a picture's width x height as decoded.
// Sampling: each input is kept with probability `rate`, drawn from a seeded generator. Lines are buffered
// and written by a background thread every 200 ms and at close, whole lines only (a crash loses at most
// the last fraction of a second, never corrupts a line in the middle of the file).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "kotsu/eval/drift.hpp"

namespace kotsu {

struct PredictionLogOptions {
  std::string path;  // empty: no log
  double rate = 1.0;
  bool store_inputs = false;
  uint64_t seed = 0;
};

class PredictionLog {
 public:
  explicit PredictionLog(PredictionLogOptions o);  // opens for appending; kotsu::Error if it cannot
  ~PredictionLog();                                 // writes what is buffered
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  // Whether the next input is sampled (call once per input).
  bool sample();
  // input: the text, or the picture's bytes; length as above.
  void write(const std::string& model, const std::string& version, std::string_view input, bool is_text, int64_t length,
             const std::string& label, double confidence);
  void flush();

 private:
  void loop();
  PredictionLogOptions o_;
  int fd_ = -1;
  std::mutex m_;
  std::condition_variable cv_;
  std::string buffer_;
  uint64_t counter_ = 0;
  bool closing_ = false;
  std::thread writer_;
};

// The logged inputs of `model` as a drift sample (label, confidence, input_length per line); with `model`
// empty, every line, but a log that holds several models is then refused naming them. A malformed line is
// an error naming the file, the line and the field.
DriftSample read_prediction_log(const std::string& path, const std::string& model);

// Lowercase hex SHA-256 of the bytes (OpenSSL).
std::string sha256_hex(std::string_view bytes);

}  // namespace kotsu
