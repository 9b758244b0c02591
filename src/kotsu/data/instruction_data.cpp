#include "kotsu/data/instruction_data.hpp"

#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

std::vector<InstructionExample> read_instruction_data(const std::string& path) {
  if (!file_exists(path)) throw Error(path, "", "no such file");
  const std::string text = read_file(path);
  std::vector<InstructionExample> out;
  size_t start = 0, line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string_view row(text.data() + start, end - start);
    start = end + 1;
    if (row.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path + ":" + std::to_string(line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(row);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where, "", std::string("not JSON: ") + e.what());
    }
    if (!j.is_object()) throw Error(where, "", "must be a JSON object with prompt/completion or messages");
    InstructionExample ex;
    if (j.contains("messages")) {
      const auto& m = j["messages"];
      if (!m.is_array() || m.empty()) throw Error(where, "messages", "must be a non-empty list of {role, content}");
      bool assistant = false;
      for (size_t i = 0; i < m.size(); ++i) {
        const std::string field = "messages[" + std::to_string(i) + "]";
        if (!m[i].is_object() || !m[i].contains("role") || !m[i]["role"].is_string() || !m[i].contains("content") || !m[i]["content"].is_string())
          throw Error(where, field, "must be an object with string role and content");
        ChatMessage msg{m[i]["role"].get<std::string>(), m[i]["content"].get<std::string>()};
        if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
          throw Error(where, field + ".role", "'" + msg.role + "' is not system, user or assistant");
        assistant = assistant || msg.role == "assistant";
        ex.messages.push_back(std::move(msg));
      }
      if (!assistant) throw Error(where, "messages", "has no assistant message: nothing to learn");
    } else if (j.contains("prompt") || j.contains("completion")) {
      for (const char* k : {"prompt", "completion"})
        if (!j.contains(k) || !j[k].is_string()) throw Error(where, k, "missing or not a string");
      ex.prompt = j["prompt"].get<std::string>();
      ex.completion = j["completion"].get<std::string>();
      if (ex.completion.empty()) throw Error(where, "completion", "is empty: nothing to learn");
    } else {
      throw Error(where, "", "has neither prompt/completion nor messages");
    }
    out.push_back(std::move(ex));
  }
  if (out.empty()) throw Error(path, "", "holds no examples");
  return out;
}

}  // namespace kotsu
