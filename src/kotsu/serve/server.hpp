// kotsu/serve/server: `kotsu serve`, an HTTP/1.1 inference server (serve/http_server: an event loop on
// Boost.Beast, handler threads for complete requests) in front of one dynamic batcher per model.
// Routes (see serve/protocol for the bodies):
//   POST /v1/models/NAME:predict            kotsu's own protocol          GET /v1/models, /v1/models/NAME
//   POST /v2/models/NAME[/versions/V]/infer  KServe / Triton v2            GET /v2, /v2/models/NAME[/ready]
//   POST /v1/completions, /v1/chat/completions  OpenAI's API, for causal LMs (one generation at a time per model)
//   GET  /v2/health/live, /v2/health/ready  liveness, readiness           GET /metrics (Prometheus)
// Every answer is JSON; errors are {"error": "..."} with 400 (bad body), 404 (unknown model or path),
// 405 (wrong method), 413 (too large), 503 + Retry-After (queue full, or shutting down), 504 (no answer
// within the request timeout), 500 (the model failed: the body holds an id, the server's log says why;
// no internal message, path or address reaches a client).
// Lifecycle: stop() stops accepting, finishes the requests in flight and drains the batchers; reload()
// loads a model's current version beside the old one and swaps them between batches, so no request fails
// during a reload (a version that fails to load is reported and the old one kept). With poll_seconds > 0
// a thread watches each model's folder and reloads when a new numbered version folder appears.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kotsu/serve/batcher.hpp"
#include "kotsu/serve/prediction_log.hpp"
#include "kotsu/serve/protocol.hpp"

namespace kotsu {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;           // 0: any free port (bind() says which)
  size_t http_threads = 64;  // requests handled at once (connections themselves cost no thread)
  BatcherOptions batch;
  InputLimits limits;
  size_t max_body = 8u << 20;     // bytes
  int io_timeout_s = 10;          // reading a request body, writing an answer
  double header_timeout_s = 10;   // a whole request header (a client that trickles it is cut off)
  double idle_timeout_s = 5;      // a kept-alive connection between requests
  size_t max_connections = 4096;  // open at once (lowered to what the file-descriptor limit allows)
  size_t max_connections_per_client = 256;  // from one address (503 beyond)
  size_t max_body_in_flight = 256u << 20;   // request bodies held in memory at once (503 beyond)
  size_t max_decode_request = 256u << 20;   // memory decoding one request's pictures may take (413 beyond)
  size_t max_decode_total = 1024u << 20;    // ... all requests' pictures at once (503 beyond)
  double request_timeout_s = 30;  // waiting for the batcher
  std::string device = "cpu";
  bool int8 = false;
  size_t lm_max_batch = 8;  // causal LMs: completions generated together (waiting at most batch.max_wait)  // dense layers in int8 (models/quantize); directories from export --int8 always are
  std::string chat_template = "auto";  // causal LMs' chat requests: chatml, llama-3, a .jinja file, or the model's own
  double poll_seconds = 2;  // 0: no watching for new version folders
  PredictionLogOptions log;
};

struct ModelSpec {
  std::string name, root;  // root: a model directory, or a folder of numbered versions
};

// "NAME=DIR" or "DIR" (named after the folder) -> ModelSpec; names are [A-Za-z0-9_.-]+.
ModelSpec parse_model_spec(const std::string& arg);

class InferenceServer {
 public:
  // Loads every model (kotsu::Error for one that does not load, or a repeated name).
  InferenceServer(ServeOptions o, const std::vector<ModelSpec>& models);
  ~InferenceServer();
  InferenceServer(const InferenceServer&) = delete;
  InferenceServer& operator=(const InferenceServer&) = delete;

  int bind();    // binds host:port and returns the port; kotsu::Error if it cannot
  void listen();  // serves until stop(); requires bind()
  void stop();   // graceful; any thread, idempotent
  // Reloads each model whose current version differs from the one served (every model when `force`).
  // Returns one line per model reloaded or failed.
  std::vector<std::string> reload(bool force);
  // One line per model: "NAME: KIND model, version V, N labels, from DIR".
  std::vector<std::string> describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kotsu
