// kotsu/serve/http_server: the HTTP/1.1 layer of `kotsu serve`, on Boost.Beast and Boost.Asio (Debian's
// libboost-dev, header-only). Connections live on an event loop (a coroutine each, no thread), so slow or
// idle clients cost a socket and a few kilobytes, never a thread; complete requests are handed to a pool
// of handler threads (a handler may block while a model answers).
// Guarantees (each tested through raw sockets, as a hostile client sends them):
//   - a whole request header must arrive within header_timeout_s of the first byte a connection waits for,
//     a body within body_timeout_s, an answer be taken within write_timeout_s: a client that trickles or
//     stalls is cut off (408 when a request had started) and costs nothing meanwhile;
//   - at most max_connections connections, at most max_connections_per_client from one address (the
//     others are answered 503 and closed at once); request bodies held in memory by the whole server are
//     bounded by max_body_in_flight (503 with Retry-After beyond it);
//   - HTTP/1.1 as RFC 9112 has it: keep-alive, pipelined requests answered in order, a client that
//     half-closes after its request still gets the answer, Expect: 100-continue; refused with 400 and the
//     connection closed: two different Content-Length values, Content-Length with Transfer-Encoding
//     (request smuggling), a negative or malformed Content-Length, a transfer coding other than chunked,
//     a header line without a colon; 413 as soon as the header announces a body over max_body; 431 for
//     a header over max_header_bytes; bodies are accepted whatever their Content-Type says.
// The handler sees only complete, valid requests; every error the layer answers itself gets its body from
// error_body (JSON in kotsu serve) and is counted through on_error.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kotsu {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (bind() says which)
  size_t handler_threads = 64;          // requests handled at once (a handler may wait for its model)
  size_t io_threads = 1;                // event-loop threads (parsing and writing only)
  size_t max_header_bytes = 16 << 10;   // request line + header fields
  size_t max_body = 8 << 20;            // per request
  size_t max_body_in_flight = 256 << 20;  // all requests' bodies held at once
  size_t max_connections = 4096;        // lowered to what the file-descriptor limit allows
  size_t max_connections_per_client = 256;
  double header_timeout_s = 10;         // for the whole request header
  double body_timeout_s = 30;           // for the whole body
  double write_timeout_s = 30;          // for an answer (each chunk of a stream)
  double idle_timeout_s = 5;            // keep-alive: waiting for the next request to start
};

struct HttpRequest {
  std::string method;   // as sent ("GET", "POST", ...)
  std::string target;   // the request target ("/v1/models?x=1")
  std::string path;     // the target without its query
  std::string body;
  std::string client;   // the peer's address
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const std::string& name) const;  // "" when absent; case-insensitive
};

// A streamed answer (server-sent events): next() blocks until the next piece (nullopt at the end); it runs
// on a handler thread. cancel() is called when the client went away.
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  virtual std::optional<std::string> next() = 0;
  virtual void cancel() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<ChunkSource> stream;  // set: the body is streamed chunk by chunk instead
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  using ErrorBody = std::function<std::string(int status, const std::string& message)>;
  using OnError = std::function<void(int status)>;
  HttpServer(HttpServerOptions o, Handler handler, ErrorBody error_body, OnError on_error = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int bind();    // listens on host:port; returns the port; kotsu::Error naming host:port if it cannot
  void run();    // serves until stop(), then waits for the requests in flight to be answered
  void stop();   // any thread, idempotent: stops accepting, closes idle connections, lets answers finish
  size_t connections() const;  // open now (for tests and metrics)

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kotsu
