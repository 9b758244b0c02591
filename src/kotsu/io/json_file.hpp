// kotsu/io/json_file: reads a whole JSON file; a missing, oversized or malformed file is a kotsu::Error
// naming the file and the parser's reason.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace kotsu {

nlohmann::json read_json(const std::string& path, size_t max_bytes = size_t(64) << 20);

}  // namespace kotsu
