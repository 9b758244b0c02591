// kotsu/serve/protocol: the request and response bodies of the server's two prediction protocols, as pure
// functions of JSON (no sockets), so that every refusal is testable on its own:
//  - kotsu's own (TensorFlow Serving's REST shape): POST /v1/models/NAME:predict with {"inputs": [...]}
//    (or "instances"); each input a text, or for image models a base64 string or {"b64": "..."};
//    answer {"model", "version", "predictions": [{"label", "confidence", "probabilities": {label: p}}]}.
//  - the KServe / Triton v2 inference protocol (kserve.github.io's "Open Inference Protocol", REST):
//    POST /v2/models/NAME/infer with {"id"?, "inputs": [{"name", "shape": [N] or [N,1], "datatype": "BYTES",
//    "data": [...]}]}; answer {"model_name", "model_version", "id"?, "outputs": [label BYTES [N],
//    probabilities FP32 [N, C]]}; GET /v2/models/NAME gives the metadata (inputs, outputs, versions).
//  - OpenAI's completions API for causal LMs: POST /v1/completions {"model", "prompt", "max_tokens" (16),
//    "temperature" (1), "top_p" (1), "stop" (string or up to 4), "seed"; kotsu's "top_k",
//    "repetition_penalty"} and POST /v1/chat/completions {"model", "messages": [{"role", "content"}], ...},
//    answered with "choices" (text or message, finish_reason "stop" / "length") and "usage" token counts.
//    "stream": true answers with server-sent events, one chunk per piece of text ("text_completion" or
//    "chat.completion.chunk" objects; the last carries finish_reason), then "data: [DONE]".
//    n > 1 is refused; other OpenAI fields (logit_bias, user, ...) are ignored.
// Bad bodies throw HttpError with a 4xx status and a message naming the field.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kotsu/serve/served_model.hpp"

namespace kotsu {

class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct InputLimits {
  size_t max_inputs = 256;          // per request
  size_t max_text_bytes = 1 << 16;  // per text input
  size_t max_depth = 16;            // JSON nesting of the body
};

// Parses an untrusted body: 400 for invalid JSON (incl. invalid UTF-8) or nesting deeper than the limit
// (checked before parsing, so a hostile body cannot exhaust the stack).
nlohmann::json parse_body(std::string_view body, const InputLimits& limits);

// The raw inputs of a request: texts, or base64-decoded picture bytes when `image` is true.
std::vector<std::string> v1_inputs(const nlohmann::json& body, bool image, const InputLimits& limits);
std::vector<std::string> v2_inputs(const nlohmann::json& body, bool image, const InputLimits& limits);

nlohmann::ordered_json v1_response(const std::string& model, const std::string& version, const std::vector<std::string>& labels,
                                   const std::vector<ServeOutput>& outputs);
nlohmann::ordered_json v2_response(const std::string& model, const std::string& version, const std::vector<std::string>& labels,
                                   const std::vector<ServeOutput>& outputs, const nlohmann::json& request);
nlohmann::ordered_json v2_metadata(const std::string& model, const std::string& version, const std::string& kind,
                                   const std::vector<std::string>& labels);

// A completion request from an OpenAI-style body; *model receives the "model" field.
CompletionRequest completion_request(const nlohmann::json& body, bool chat, std::string* model);
nlohmann::ordered_json completion_response(const std::string& id, const std::string& model, int64_t created, const Completion& c, bool chat);
// One streamed chunk: a piece of text, or (finish_reason non-empty) the closing chunk; for chat the first
// chunk (role true) announces the assistant's role.
nlohmann::ordered_json completion_chunk(const std::string& id, const std::string& model, int64_t created, const std::string& piece,
                                        const std::string& finish_reason, bool chat, bool role = false);

// Standard base64 (RFC 4648, padding optional, surrounding whitespace ignored); 400 naming `field` if invalid.
std::string base64_decode(std::string_view s, const std::string& field);

}  // namespace kotsu
