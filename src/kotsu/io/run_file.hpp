// kotsu/io/run_file: a run file (YAML, which includes JSON) as JSON: scalars become integers, floats or
// booleans when they read as one (quoted scalars stay strings). A missing file or a YAML error is a
// kotsu::Error naming the file and line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace kotsu {

nlohmann::json read_run_file(const std::string& path);

}  // namespace kotsu
