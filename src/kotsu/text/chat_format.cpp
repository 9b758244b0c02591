#include "kotsu/text/chat_format.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/json_file.hpp"
#include "kotsu/text/jinja.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

bool is_builtin(const std::string& spec) {
  for (const auto& n : chat_format_names())
    if (n == spec) return true;
  return false;
}

// The built-in formats: assistant contents (with their end marker) become trained ranges.
void render_builtin(const std::vector<ChatMessage>& messages, const std::string& format, RenderedExample& r) {
  if (format == "llama-3") {
    r.text += "<|begin_of_text|>";
    r.has_bos = true;
  }
  for (const auto& m : messages) {
    std::string head, body, end;
    if (format == "chatml") {
      head = "<|im_start|>" + m.role + "\n", body = m.content, end = "<|im_end|>";
    } else {  // llama-3
      head = "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n", body = trim(m.content), end = "<|eot_id|>";
    }
    r.text += head;
    const size_t begin = r.text.size();
    r.text += body + end;
    if (m.role == "assistant") r.trained.emplace_back(begin, r.text.size());
    if (format == "chatml") r.text += "\n";
  }
}

std::vector<ChatMessage> as_messages(const InstructionExample& e) {
  return e.is_chat() ? e.messages : std::vector<ChatMessage>{{"user", e.prompt}, {"assistant", e.completion}};
}

}  // namespace

const std::vector<std::string>& chat_format_names() {
  static const std::vector<std::string> names{"chatml", "llama-3"};
  return names;
}

std::string model_chat_template(const std::string& model_dir) {
  const fs::path file = fs::path(model_dir) / "chat_template.jinja";
  if (fs::exists(file)) return read_file(file.string());
  const fs::path cfg = fs::path(model_dir) / "tokenizer_config.json";
  if (!fs::exists(cfg)) return "";
  const nlohmann::json c = read_json(cfg.string());
  if (!c.contains("chat_template") || c["chat_template"].is_null()) return "";
  const auto& t = c["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array())  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
    for (const auto& x : t)
      if (x.is_object() && x.value("name", "") == "default" && x.contains("template") && x["template"].is_string()) return x["template"].get<std::string>();
  throw Error(cfg.string(), "chat_template", "is neither a template string nor a list holding a \"default\" template");
}

ChatFormat::ChatFormat(const std::string& spec, const std::string& model_dir, const std::string& bos_token, const std::string& eos_token)
    : spec_(spec), bos_(bos_token), eos_(eos_token) {
  if (spec.empty() || is_builtin(spec)) return;
  std::string source, name;
  if (spec == "auto") {
    source = model_chat_template(model_dir);
    name = model_dir + "/tokenizer_config.json: chat_template";
    if (source.empty()) {
      std::string list;
      for (const auto& n : chat_format_names()) list += (list.empty() ? "" : ", ") + n;
      throw Error(model_dir, "chat_template", "the model has no chat template (tokenizer_config.json, chat_template.jinja); choose a built-in format: " + list);
    }
  } else if (fs::exists(spec)) {
    source = read_file(spec);
    name = spec;
  } else {
    std::string list;
    for (const auto& n : chat_format_names()) list += (list.empty() ? "" : ", ") + n;
    throw Error("options", "chat_template", "'" + spec + "' is neither a built-in format (" + list + ", auto) nor a Jinja template file");
  }
  jinja_ = std::make_shared<JinjaTemplate>(source, name);
}

ChatFormat::ChatFormat(const std::string& spec, const std::string& model_dir, const Tokenizer& tok)
    : ChatFormat(spec, model_dir, tok.bos_id() >= 0 ? tok.token(tok.bos_id()) : "", tok.eos_id() >= 0 ? tok.token(tok.eos_id()) : "") {}

ChatFormat::~ChatFormat() = default;

std::string ChatFormat::render_jinja(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  return jinja_->render({{"messages", msgs}, {"add_generation_prompt", add_generation_prompt}, {"bos_token", bos_}, {"eos_token", eos_}});
}

RenderedExample ChatFormat::render(const InstructionExample& e) const {
  RenderedExample r;
  if (spec_.empty()) {
    if (e.is_chat()) throw Error("options", "chat_template", "chat data (messages) needs a chat format: --chat-template auto, chatml or llama-3");
    r.text = e.prompt + e.completion;
    r.trained.emplace_back(e.prompt.size(), r.text.size());
    r.needs_eos = true;
    return r;
  }
  const std::vector<ChatMessage> messages = as_messages(e);
  if (!jinja_) {
    render_builtin(messages, spec_, r);
    return r;
  }
  r.text = render_jinja(messages, false);
  r.has_bos = !bos_.empty() && r.text.rfind(bos_, 0) == 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i));
    const std::string opened = render_jinja(before, true);
    if (r.text.compare(0, opened.size(), opened) != 0)
      throw Error(jinja_ ? spec_ : "", "chat_template",
                  "renders the assistant turn " + std::to_string(i) + " differently from its generation prompt, so its answer cannot be located; use a built-in format");
    size_t end = r.text.size();
    if (i + 1 < messages.size()) {  // turn i ends where the conversation up to it stops agreeing with the whole
      const std::string upto = render_jinja(std::vector<ChatMessage>(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i + 1)), false);
      end = 0;
      while (end < upto.size() && end < r.text.size() && upto[end] == r.text[end]) ++end;
    }
    if (end <= opened.size()) throw Error(spec_, "chat_template", "renders assistant turn " + std::to_string(i) + " as no text");
    r.trained.emplace_back(opened.size(), end);
  }
  return r;
}

std::string ChatFormat::generation_prompt(const std::vector<ChatMessage>& messages) const {
  if (spec_.empty()) throw Error("options", "chat_template", "a generation prompt needs a chat format");
  if (jinja_) return render_jinja(messages, true);
  RenderedExample r;
  render_builtin(messages, spec_, r);
  return r.text + (spec_ == "chatml" ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

std::string ChatFormat::end_of_turn() const {
  if (spec_ == "chatml") return "<|im_end|>";
  if (spec_ == "llama-3") return "<|eot_id|>";
  return "";
}

}  // namespace kotsu
