#include "kotsu/text/chat_format.hpp"

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

void check_format(const std::string& format) {
  for (const auto& n : chat_format_names())
    if (n == format) return;
  std::string list;
  for (const auto& n : chat_format_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("options", "chat_template", "'" + format + "' is not a built-in chat format (" + list + ")");
}

// Appends the messages in `format`; assistant contents (with their end marker) become trained ranges.
void render_messages(const std::vector<ChatMessage>& messages, const std::string& format, RenderedExample& r) {
  if (format == "llama-3") {
    r.text += "<|begin_of_text|>";
    r.has_bos = true;
  }
  for (const auto& m : messages) {
    const bool learn = m.role == "assistant";
    std::string head, body, end;
    if (format == "chatml") {
      head = "<|im_start|>" + m.role + "\n", body = m.content, end = "<|im_end|>";
    } else {  // llama-3
      head = "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n", body = trim(m.content), end = "<|eot_id|>";
    }
    r.text += head;
    const size_t begin = r.text.size();
    r.text += body + end;
    if (learn) r.trained.emplace_back(begin, r.text.size());
    if (format == "chatml") r.text += "\n";
  }
}

}  // namespace

const std::vector<std::string>& chat_format_names() {
  static const std::vector<std::string> names{"chatml", "llama-3"};
  return names;
}

RenderedExample render_example(const InstructionExample& e, const std::string& format) {
  RenderedExample r;
  if (format.empty()) {
    if (e.is_chat()) throw Error("options", "chat_template", "chat data (messages) needs a chat format: --chat-template chatml or llama-3");
    r.text = e.prompt + e.completion;
    r.trained.emplace_back(e.prompt.size(), r.text.size());
    r.needs_eos = true;
    return r;
  }
  check_format(format);
  if (e.is_chat()) render_messages(e.messages, format, r);
  else render_messages({{"user", e.prompt}, {"assistant", e.completion}}, format, r);
  return r;
}

std::string render_generation_prompt(const std::vector<ChatMessage>& messages, const std::string& format) {
  check_format(format);
  RenderedExample r;
  render_messages(messages, format, r);
  r.text += format == "chatml" ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return r.text;
}

}  // namespace kotsu
