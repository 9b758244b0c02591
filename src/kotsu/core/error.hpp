// kotsu/core/error: the one exception type of the library.
// Contract: every failure a user can cause (bad file, bad field, bad value) is thrown as kotsu::Error
// naming the file (or "<input>"), the field inside it, and the reason; the CLI prints what() on one line.
#pragma once
#include <stdexcept>
#include <string>

namespace kotsu {

class Error : public std::runtime_error {
 public:
  Error(std::string file, std::string field, std::string reason)
      : std::runtime_error(format(file, field, reason)),
        file_(std::move(file)), field_(std::move(field)), reason_(std::move(reason)) {}
  const std::string& file() const { return file_; }
  const std::string& field() const { return field_; }
  const std::string& reason() const { return reason_; }

 private:
  static std::string format(const std::string& file, const std::string& field, const std::string& reason) {
    std::string s = file.empty() ? std::string("<input>") : file;
    if (!field.empty()) s += ": " + field;
    s += ": " + reason;
    return s;
  }
  std::string file_, field_, reason_;
};

}  // namespace kotsu
