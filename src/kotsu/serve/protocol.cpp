#include "kotsu/serve/protocol.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>


namespace kotsu {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {
// Deepest bracket nesting outside strings, stopping as soon as it passes `limit`.
bool deeper_than(std::string_view s, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

std::string input_of(const json& x, bool image, const std::string& field, const InputLimits& limits) {
  if (image) {
    if (x.is_string()) return base64_decode(x.get_ref<const std::string&>(), field);
    if (x.is_object() && x.size() == 1 && x.contains("b64") && x["b64"].is_string())
      return base64_decode(x["b64"].get_ref<const std::string&>(), field + ".b64");
    throw HttpError(400, field + ": a picture must be a base64 string or {\"b64\": \"...\"}");
  }
  if (!x.is_string()) throw HttpError(400, field + ": must be a string (the text to classify)");
  const auto& s = x.get_ref<const std::string&>();
  if (s.size() > limits.max_text_bytes)
    throw HttpError(413, field + ": text of " + std::to_string(s.size()) + " bytes is over the limit of " + std::to_string(limits.max_text_bytes));
  return s;
}

std::vector<std::string> inputs_of(const json& list, bool image, const std::string& field, const InputLimits& limits) {
  if (!list.is_array()) throw HttpError(400, field + ": must be an array");
  if (list.empty()) throw HttpError(400, field + ": is empty");
  if (list.size() > limits.max_inputs)
    throw HttpError(413, field + ": " + std::to_string(list.size()) + " inputs is over the limit of " + std::to_string(limits.max_inputs) + " per request");
  std::vector<std::string> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) out.push_back(input_of(list[i], image, field + "[" + std::to_string(i) + "]", limits));
  return out;
}

const std::string& label_of(const std::vector<std::string>& labels, const ServeOutput& o) {
  return labels.at(static_cast<size_t>(o.label));
}
}  // namespace

json parse_body(std::string_view body, const InputLimits& limits) {
  if (deeper_than(body, limits.max_depth))
    throw HttpError(400, "body: JSON nested deeper than " + std::to_string(limits.max_depth) + " levels");
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    const auto p = what.find("] ");
    throw HttpError(400, "body: invalid JSON: " + (p == std::string::npos ? what : what.substr(p + 2)));
  }
}

std::vector<std::string> v1_inputs(const json& body, bool image, const InputLimits& limits) {
  if (!body.is_object()) throw HttpError(400, "body: must be a JSON object with \"inputs\"");
  const char* key = body.contains("inputs") ? "inputs" : body.contains("instances") ? "instances" : nullptr;
  if (!key) throw HttpError(400, "inputs: missing (send {\"inputs\": [...]})");
  return inputs_of(body[key], image, key, limits);
}

std::vector<std::string> v2_inputs(const json& body, bool image, const InputLimits& limits) {
  if (!body.is_object()) throw HttpError(400, "body: must be a JSON object with \"inputs\"");
  if (!body.contains("inputs") || !body["inputs"].is_array() || body["inputs"].size() != 1)
    throw HttpError(400, "inputs: must be an array of exactly one input tensor");
  const json& t = body["inputs"][0];
  if (!t.is_object()) throw HttpError(400, "inputs[0]: must be an object");
  if (!t.contains("datatype") || t["datatype"] != "BYTES") throw HttpError(400, "inputs[0].datatype: must be \"BYTES\"");
  if (!t.contains("data")) throw HttpError(400, "inputs[0].data: missing");
  const json& data = t["data"];
  if (!t.contains("shape") || !t["shape"].is_array() || t["shape"].empty() || t["shape"].size() > 2)
    throw HttpError(400, "inputs[0].shape: must be [N] or [N, 1]");
  for (const auto& d : t["shape"])
    if (!d.is_number_integer() || d.get<int64_t>() < 0) throw HttpError(400, "inputs[0].shape: must hold non-negative integers");
  const auto n = t["shape"][0].get<uint64_t>();
  if (t["shape"].size() == 2 && t["shape"][1].get<uint64_t>() != 1) throw HttpError(400, "inputs[0].shape: must be [N] or [N, 1]");
  // the data may be flat or nested by the shape ([[a], [b]] for [N, 1])
  json flat = json::array();
  if (data.is_array())
    for (const auto& x : data) {
      if (x.is_array() && x.size() == 1) flat.push_back(x[0]);
      else flat.push_back(x);
    }
  if (data.is_array() && flat.size() != n)
    throw HttpError(400, "inputs[0].data: holds " + std::to_string(flat.size()) + " items but shape says " + std::to_string(n));
  return inputs_of(data.is_array() ? flat : data, image, "inputs[0].data", limits);
}

ojson v1_response(const std::string& model, const std::string& version, const std::vector<std::string>& labels,
                  const std::vector<ServeOutput>& outputs) {
  ojson preds = ojson::array();
  for (const auto& o : outputs) {
    ojson p;
    p["label"] = label_of(labels, o);
    p["confidence"] = o.probs.at(static_cast<size_t>(o.label));
    ojson probs = ojson::object();
    for (size_t k = 0; k < o.probs.size(); ++k) probs[labels[k]] = o.probs[k];
    p["probabilities"] = std::move(probs);
    preds.push_back(std::move(p));
  }
  return ojson{{"model", model}, {"version", version}, {"predictions", std::move(preds)}};
}

ojson v2_response(const std::string& model, const std::string& version, const std::vector<std::string>& labels,
                  const std::vector<ServeOutput>& outputs, const json& request) {
  ojson out;
  out["model_name"] = model;
  out["model_version"] = version;
  if (request.is_object() && request.contains("id") && request["id"].is_string()) out["id"] = request["id"];
  ojson names = ojson::array(), probs = ojson::array();
  for (const auto& o : outputs) {
    names.push_back(label_of(labels, o));
    for (float p : o.probs) probs.push_back(p);
  }
  const auto n = outputs.size();
  out["outputs"] = ojson::array({ojson{{"name", "label"}, {"shape", {n}}, {"datatype", "BYTES"}, {"data", std::move(names)}},
                                 ojson{{"name", "probabilities"}, {"shape", {n, labels.size()}}, {"datatype", "FP32"}, {"data", std::move(probs)}}});
  return out;
}

ojson v2_metadata(const std::string& model, const std::string& version, const std::string& kind, const std::vector<std::string>& labels) {
  ojson m;
  m["name"] = model;
  m["versions"] = ojson::array({version});
  m["platform"] = "kotsu";
  m["inputs"] = ojson::array({ojson{{"name", kind == "image" ? "image" : "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  m["outputs"] = ojson::array({ojson{{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                               ojson{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<int64_t>(labels.size())}}}});
  m["labels"] = labels;
  return m;
}

CompletionRequest completion_request(const json& body, bool chat, std::string* model) {
  if (!body.is_object()) throw HttpError(400, "body: must be a JSON object");
  if (!body.contains("model") || !body["model"].is_string()) throw HttpError(400, "model: missing or not a string");
  *model = body["model"].get<std::string>();
  CompletionRequest r;
  GenerateOptions& o = r.options;
  o.max_new_tokens = 16;  // OpenAI's defaults
  o.temperature = 1.0;
  auto number = [&](const char* k, double lo, double hi, double& into) {
    if (!body.contains(k) || body[k].is_null()) return;
    if (!body[k].is_number()) throw HttpError(400, std::string(k) + ": must be a number");
    const double v = body[k].get<double>();
    if (!(v >= lo && v <= hi)) throw HttpError(400, fmt::format("{}: must be in [{}, {}]", k, lo, hi));
    into = v;
  };
  double max_tokens = static_cast<double>(o.max_new_tokens), top_k = 0, seed = 0;
  number(chat && body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens", 1, 4096, max_tokens);
  number("temperature", 0, 2, o.temperature);
  number("top_p", 1e-9, 1, o.top_p);
  number("top_k", 0, 1e6, top_k);
  number("repetition_penalty", 1e-3, 100, o.repetition_penalty);
  number("seed", 0, 9007199254740991.0, seed);
  o.max_new_tokens = static_cast<int64_t>(max_tokens);
  o.top_k = static_cast<int64_t>(top_k);
  o.seed = static_cast<uint64_t>(seed);
  if (body.contains("n") && !(body["n"].is_number_integer() && body["n"].get<int64_t>() == 1))
    throw HttpError(400, "n: only 1 completion per request is supported");
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) throw HttpError(400, "stream: must be true or false");
    r.stream = body["stream"].get<bool>();
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& st = body["stop"];
    if (st.is_string()) {
      r.stop.push_back(st.get<std::string>());
    } else if (st.is_array() && st.size() <= 4) {
      for (const auto& x : st) {
        if (!x.is_string()) throw HttpError(400, "stop: must be a string or an array of up to 4 strings");
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      throw HttpError(400, "stop: must be a string or an array of up to 4 strings");
    }
  }
  if (chat) {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
      throw HttpError(400, "messages: must be a non-empty array");
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const json& m = body["messages"][i];
      const std::string f = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) throw HttpError(400, f + ".role: missing or not a string");
      if (!m.contains("content") || !m["content"].is_string()) throw HttpError(400, f + ".content: missing or not a string");
      const std::string role = m["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant")
        throw HttpError(400, f + ".role: must be system, user or assistant");
      r.messages.push_back({role, m["content"].get<std::string>()});
    }
  } else {
    json p = body.contains("prompt") ? body["prompt"] : json();
    if (p.is_array() && p.size() == 1) p = p[0];
    if (!p.is_string() || p.get_ref<const std::string&>().empty()) throw HttpError(400, "prompt: must be a non-empty string");
    r.prompt = p.get<std::string>();
  }
  return r;
}

ojson completion_response(const std::string& id, const std::string& model, int64_t created, const Completion& c, bool chat) {
  ojson choice;
  choice["index"] = 0;
  if (chat) {
    choice["message"] = ojson{{"role", "assistant"}, {"content", c.text}};
  } else {
    choice["text"] = c.text;
    choice["logprobs"] = nullptr;
  }
  choice["finish_reason"] = c.finish_reason;
  ojson out;
  out["id"] = id;
  out["object"] = chat ? "chat.completion" : "text_completion";
  out["created"] = created;
  out["model"] = model;
  out["choices"] = ojson::array({choice});
  out["usage"] = ojson{{"prompt_tokens", c.prompt_tokens}, {"completion_tokens", c.completion_tokens},
                       {"total_tokens", c.prompt_tokens + c.completion_tokens}};
  return out;
}

ojson completion_chunk(const std::string& id, const std::string& model, int64_t created, const std::string& piece,
                       const std::string& finish_reason, bool chat, bool role) {
  ojson choice;
  choice["index"] = 0;
  if (chat) {
    ojson delta = ojson::object();
    if (role) delta["role"] = "assistant";
    if (finish_reason.empty()) delta["content"] = piece;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = piece;
    choice["logprobs"] = nullptr;
  }
  choice["finish_reason"] = finish_reason.empty() ? ojson(nullptr) : ojson(finish_reason);
  return ojson{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created}, {"model", model},
               {"choices", ojson::array({choice})}};
}

std::string base64_decode(std::string_view s, const std::string& field) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
  std::string padded(s);
  if (padded.size() % 4 == 1) throw HttpError(400, field + ": invalid base64 (length)");
  while (padded.size() % 4 != 0) padded += '=';
  size_t pad = 0;
  if (!padded.empty() && padded.back() == '=') ++pad;
  if (padded.size() > 1 && padded[padded.size() - 2] == '=') ++pad;
  std::string out(padded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  if (n < 0) throw HttpError(400, field + ": invalid base64");
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace kotsu
