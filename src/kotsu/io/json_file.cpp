#include "kotsu/io/json_file.hpp"

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

nlohmann::json read_json(const std::string& path, size_t max_bytes) {
  std::string text = read_file(path, max_bytes);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, "", std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace kotsu
