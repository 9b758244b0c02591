#include "kotsu/io/run_file.hpp"

#include <yaml-cpp/yaml.h>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

nlohmann::json yaml_to_json(const YAML::Node& n, const std::string& path) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      try { size_t pos; long long v = std::stoll(s, &pos); if (pos == s.size()) return v; } catch (...) {}
      try { size_t pos; double v = std::stod(s, &pos); if (pos == s.size()) return v; } catch (...) {}
      if (s == "true" || s == "yes") return true;
      if (s == "false" || s == "no") return false;
      return s;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : n) a.push_back(yaml_to_json(e, path));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second, path);
      return o;
    }
    default: throw Error(path, "", "unsupported YAML node");
  }
}

}  // namespace

nlohmann::json read_run_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(path, "", "cannot open run file");
  } catch (const YAML::Exception& e) {
    throw Error(path, "line " + std::to_string(e.mark.line + 1), e.msg);
  }
  nlohmann::json j = yaml_to_json(root, path);
  if (!j.is_object()) throw Error(path, "", "a run file is a map of option: value");
  return j;
}

}  // namespace kotsu
