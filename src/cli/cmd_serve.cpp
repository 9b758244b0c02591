// kotsu serve MODEL [MODEL...]: the HTTP inference server (serve/server). SIGINT/SIGTERM stop it gracefully
// (requests in flight are answered); SIGHUP reloads every model from its folder.
#include <fmt/format.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <thread>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/serve/server.hpp"

namespace kotsu::cli {

namespace {
int g_signal_pipe = -1;  // written by the signal handlers of kotsu serve

struct ServeFlags {
  std::vector<std::string> models;
  ServeOptions o;
  int threads = 2;
  int64_t max_wait_us = 2000;
  size_t max_decode_mb = 256, max_decode_total_mb = 1024;
};
}  // namespace

Action add_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* c = app.add_subcommand("serve", "serve classifiers (kotsu's /v1 and the KServe v2 protocol, dynamic batching) and causal LMs (OpenAI's completions API) over HTTP");
  c->add_option("models", f->models, "model directories (runs of kotsu train), or NAME=DIR; a folder of numbered versions serves the highest")
      ->required();
  c->add_option("--host", f->o.host, "address to listen on")->capture_default_str();
  c->add_option("--port", f->o.port, "port (0: any free port, printed at start)")->capture_default_str();
  c->add_option("--threads", f->threads, "CPU threads for inference (0 = all cores)")->capture_default_str();
  c->add_option("--http-threads", f->o.http_threads, "requests handled at once (connections cost no thread)")->capture_default_str();
  c->add_option("--max-batch", f->o.batch.max_batch, "inputs per forward pass at most")->capture_default_str();
  c->add_option("--max-wait-us", f->max_wait_us, "how long a batch waits for more inputs after its first (microseconds)")->capture_default_str();
  c->add_option("--max-queue", f->o.batch.max_queue, "inputs waiting per model before answering 503")->capture_default_str();
  c->add_option("--max-body", f->o.max_body, "request body limit in bytes (413 above)")->capture_default_str();
  c->add_option("--max-connections", f->o.max_connections, "connections open at once (503 beyond; lowered to the file-descriptor limit)")
      ->capture_default_str();
  c->add_option("--max-connections-per-client", f->o.max_connections_per_client, "connections from one address at once (503 beyond)")
      ->capture_default_str();
  c->add_option("--header-timeout", f->o.header_timeout_s, "seconds a client has to send a whole request header (408 after)")
      ->capture_default_str();
  c->add_option("--max-decode-mb", f->max_decode_mb, "memory decoding one request's pictures may take, in MB (413 above; huge PNGs are shrunk while decoded)")
      ->capture_default_str();
  c->add_option("--max-decode-total-mb", f->max_decode_total_mb, "memory decoding pictures may take for all requests at once, in MB (503 above)")
      ->capture_default_str();
  c->add_option("--max-inputs", f->o.limits.max_inputs, "inputs per request at most")->capture_default_str();
  c->add_option("--max-text-bytes", f->o.limits.max_text_bytes, "bytes per text input at most")->capture_default_str();
  c->add_option("--timeout", f->o.request_timeout_s, "seconds a request waits for its answer (504 after)")->capture_default_str();
  c->add_option("--poll-seconds", f->o.poll_seconds, "how often to look for a new version folder (0: never)")->capture_default_str();
  c->add_option("--device", f->o.device, "cpu or cuda[:N]")->capture_default_str();
  c->add_option("--max-lm-batch", f->o.lm_max_batch, "causal LMs: completions generated together in one batch")->capture_default_str();
  c->add_flag("--int8", f->o.int8, "run the models' dense layers in int8 (dynamic quantisation, CPU); models written by export --int8 always are");
  c->add_option("--chat-template", f->o.chat_template, "causal LMs: the chat format of /v1/chat/completions (auto: the model's own; chatml, llama-3, FILE.jinja)")
      ->capture_default_str();
  c->add_option("--log", f->o.log.path, "append sampled predictions to this JSONL file (the input of kotsu drift)");
  c->add_option("--log-rate", f->o.log.rate, "fraction of inputs logged")->capture_default_str();
  c->add_flag("--log-inputs", f->o.log.store_inputs, "store texts in the log (default: only their SHA-256)");
  return [f]() {
    check_device(f->o.device);
    runtime_init(f->threads);
    f->o.batch.max_wait = std::chrono::microseconds(std::max<int64_t>(0, f->max_wait_us));
    f->o.max_decode_request = f->max_decode_mb << 20;
    f->o.max_decode_total = std::max(f->max_decode_total_mb, f->max_decode_mb) << 20;
    std::vector<ModelSpec> specs;
    for (const auto& m : f->models) specs.push_back(parse_model_spec(m));
    // SIGINT/SIGTERM/SIGHUP through handlers that only write the signal's number into a pipe (async-signal
    // safe), read by one thread. Blocking them instead is not enough: threads that libraries start before
    // main (OpenBLAS's) do not block them, and the kernel may deliver to any of those (default: terminate).
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw Error("serve", "signals", "cannot create a pipe");
    g_signal_pipe = fds[1];
    struct sigaction sa {};
    sa.sa_handler = [](int sig) {
      const int saved = errno;
      const char c = static_cast<char>(sig);
      [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe, &c, 1);
      errno = saved;
    };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    InferenceServer server(f->o, specs);
    const int port = server.bind();
    for (const auto& line : server.describe()) fmt::print("kotsu serve: {}\n", line);
    fmt::print("kotsu serve: listening on http://{}:{}\n", f->o.host, port);
    std::fflush(stdout);
    std::atomic<bool> done{false};
    std::thread signals([&] {
      while (!done) {
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        char c = 0;
        if (::read(fds[0], &c, 1) != 1) continue;
        if (c == SIGHUP) {
          for (const auto& line : server.reload(true)) fmt::print(stderr, "kotsu serve: {}\n", line);
        } else if (c == SIGINT || c == SIGTERM) {
          fmt::print(stderr, "kotsu serve: stopping (answering the requests in flight)\n");
          server.stop();
          return;
        }
      }
    });
    server.listen();
    done = true;
    signals.join();
    fmt::print(stderr, "kotsu serve: stopped\n");
    return 0;
  };
}

}  // namespace kotsu::cli
