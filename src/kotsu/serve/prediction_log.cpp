#include "kotsu/serve/prediction_log.hpp"

#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/core/hash.hpp"

namespace kotsu {

namespace {
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) out += hex[c >> 4], out += hex[c & 15];
  return out;
}

PredictionLog::PredictionLog(PredictionLogOptions o) : o_(std::move(o)) {
  if (o_.rate < 0 || o_.rate > 1) throw Error(o_.path, "log rate", "must be in [0, 1]");
  fd_ = ::open(o_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(o_.path, "", std::string("cannot open the prediction log: ") + std::strerror(errno));
  writer_ = std::thread([this] { loop(); });
}

PredictionLog::~PredictionLog() {
  {
    std::lock_guard<std::mutex> lk(m_);
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  flush();
  ::close(fd_);
}

bool PredictionLog::sample() {
  if (o_.rate >= 1) return true;
  if (o_.rate <= 0) return false;
  std::lock_guard<std::mutex> lk(m_);
  const uint64_t r = mix64(o_.seed * 0x9e3779b97f4a7c15ULL + ++counter_);
  return static_cast<double>(r >> 11) * 0x1.0p-53 < o_.rate;
}

void PredictionLog::write(const std::string& model, const std::string& version, std::string_view input, bool is_text, int64_t length,
                          const std::string& label, double confidence) {
  nlohmann::ordered_json j;
  j["time"] = utc_now();
  j["model"] = model;
  j["version"] = version;
  j["input_sha256"] = sha256_hex(input);
  j["input_length"] = length;
  j["label"] = label;
  j["confidence"] = confidence;
  if (o_.store_inputs && is_text) j["input"] = std::string(input);
  std::string line = j.dump() + "\n";
  std::lock_guard<std::mutex> lk(m_);
  buffer_ += line;
}

void PredictionLog::flush() {
  std::string out;
  {
    std::lock_guard<std::mutex> lk(m_);
    out.swap(buffer_);
  }
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // disk full or gone: the server keeps answering; the log is best effort
    done += static_cast<size_t>(n);
  }
}

void PredictionLog::loop() {
  std::unique_lock<std::mutex> lk(m_);
  while (!closing_) {
    cv_.wait_for(lk, std::chrono::milliseconds(200), [&] { return closing_; });
    lk.unlock();
    flush();
    lk.lock();
  }
}

DriftSample read_prediction_log(const std::string& path, const std::string& model) {
  std::ifstream f(path);
  if (!f) throw Error(path, "", "cannot open the prediction log");
  DriftSample out;
  std::set<std::string> models;
  size_t lineno = 0;
  for (std::string line; std::getline(f, line);) {
    ++lineno;
    if (line.empty()) continue;
    const std::string where = "line " + std::to_string(lineno);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(path, where, "not a JSON object (a prediction log line is one)");
    }
    auto field = [&](const char* k, bool number) -> const nlohmann::json& {
      if (!j.is_object() || !j.contains(k) || (number ? !j[k].is_number() : !j[k].is_string()))
        throw Error(path, where + ": " + k, number ? "missing or not a number" : "missing or not a string");
      return j[k];
    };
    const std::string m = field("model", false).get<std::string>();
    models.insert(m);
    if (!model.empty() && m != model) continue;
    out.labels.push_back(field("label", false).get<std::string>());
    out.confidence.push_back(field("confidence", true).get<double>());
    out.length.push_back(field("input_length", true).get<double>());
  }
  if (model.empty() && models.size() > 1) {
    std::string names;
    for (const auto& m : models) names += (names.empty() ? "" : ", ") + m;
    throw Error(path, "model", "the log holds several models (" + names + "): choose one with --model");
  }
  if (out.size() == 0)
    throw Error(path, "", model.empty() ? "no predictions logged" : "no predictions of model '" + model + "' logged");
  return out;
}

}  // namespace kotsu
