#include "kotsu/serve/server.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <map>
#include <mutex>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/core/runtime.hpp"
#include "kotsu/io/run_status.hpp"
#include "kotsu/serve/http_server.hpp"
#include "kotsu/serve/metrics.hpp"
#include "kotsu/text/utf8.hpp"

namespace kotsu {

using nlohmann::json;
using ojson = nlohmann::ordered_json;
using clk = std::chrono::steady_clock;

namespace {
// What the batcher hands back: the output and the model version that computed it (its labels).
struct Answer {
  ServeOutput out;
  std::shared_ptr<ServedModel> model;
};

// A streamed completion: pieces of text from the worker, read by the HTTP thread that writes the events.
struct StreamState {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  bool cancelled = false;
};

struct Slot {
  std::string name, root;
  std::shared_ptr<ServedModel> model;  // read and swapped with std::atomic_load / atomic_store
  std::unique_ptr<DynamicBatcher<ServeInput, Answer>> batcher;
  std::unique_ptr<DynamicBatcher<CompletionRequest, Completion>> completer;  // causal LMs: up to lm_max_batch generated together
  std::mutex reload_m;
};

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; });
}

std::string error_json(const std::string& message) {
  // replace: a message may quote the request's invalid UTF-8 (the JSON parser's error does)
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}
HttpResponse reply(int status, std::string body, std::string type = "application/json") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(type);
  return r;
}
// What a client sees of a kotsu::Error: the field and the reason, not the file (a path on this server).
std::string client_text(const Error& e) { return e.field().empty() ? e.reason() : e.field() + ": " + e.reason(); }

HttpResponse reply_error(int status, const std::string& message) {
  HttpResponse r = reply(status, error_json(message));
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// Memory for a request's pictures, reserved from the server's budget until the request is answered; a
// large reservation gives the freed pages back to the system when it ends (jemalloc keeps them otherwise).
struct DecodeReservation {
  std::atomic<size_t>& used;
  size_t n = 0;
  bool ok = true;
  DecodeReservation(std::atomic<size_t>& u, size_t need, size_t limit) : used(u) {
    if (need == 0) return;
    size_t cur = used.load();
    do {
      if (cur + need > limit) {
        ok = false;
        return;
      }
    } while (!used.compare_exchange_weak(cur, cur + need));
    n = need;
  }
  ~DecodeReservation() {
    if (n == 0) return;
    used -= n;
    if (n >= (64u << 20)) release_free_memory();
  }
};

// A streamed completion as the HTTP layer pulls it: the opening chunk, the pieces as the worker produces
// them, the closing chunk with the finish reason, then [DONE].
class CompletionEvents : public ChunkSource {
 public:
  using Dump = std::function<std::string(const ojson&)>;
  CompletionEvents(std::shared_ptr<StreamState> st, std::future<Completion> done, std::string id, std::string model, int64_t created,
                   bool chat, Dump dump, std::function<void(const std::string&)> log_failure)
      : st_(std::move(st)), done_(std::move(done)), id_(std::move(id)), model_(std::move(model)), created_(created), chat_(chat),
        dump_(std::move(dump)), log_failure_(std::move(log_failure)) {}

  std::optional<std::string> next() override {
    auto event = [](const std::string& data) { return "data: " + data + "\n\n"; };
    if (!opened_) {
      opened_ = true;
      if (chat_) return event(dump_(completion_chunk(id_, model_, created_, "", "", chat_, true)));
    }
    if (finished_) return std::nullopt;
    for (;;) {
      std::deque<std::string> pieces;
      bool ended;
      {
        std::unique_lock<std::mutex> lk(st_->m);
        st_->cv.wait_for(lk, std::chrono::milliseconds(20), [&] { return !st_->pieces.empty(); });
        pieces.swap(st_->pieces);
        ended = done_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      }
      if (!pieces.empty()) {
        std::string out;
        for (const auto& p : pieces) out += event(dump_(completion_chunk(id_, model_, created_, p, "", chat_)));
        return out;
      }
      if (!ended) continue;
      {
        std::lock_guard<std::mutex> lk(st_->m);
        if (!st_->pieces.empty()) continue;  // the last pieces arrived with the end
      }
      finished_ = true;
      std::string out;
      try {
        const Completion c = done_.get();
        out = event(dump_(completion_chunk(id_, model_, created_, "", c.finish_reason, chat_)));
      } catch (const std::exception& e) {
        log_failure_(e.what());
        out = event(dump_(ojson{{"error", "internal error: the generation failed (see the server log)"}}));
      }
      return out + event("[DONE]");
    }
  }

  void cancel() override {
    std::lock_guard<std::mutex> lk(st_->m);
    st_->cancelled = true;  // the client went away: stop generating
  }

 private:
  std::shared_ptr<StreamState> st_;
  std::future<Completion> done_;
  std::string id_, model_;
  int64_t created_;
  bool chat_, opened_ = false, finished_ = false;
  Dump dump_;
  std::function<void(const std::string&)> log_failure_;
};
}  // namespace

ModelSpec parse_model_spec(const std::string& arg) {
  ModelSpec s;
  const auto eq = arg.find('=');
  if (eq != std::string::npos) {
    s.name = arg.substr(0, eq);
    s.root = arg.substr(eq + 1);
  } else {
    s.root = arg;
    std::string r = arg;
    while (r.size() > 1 && r.back() == '/') r.pop_back();
    s.name = std::filesystem::path(r).filename().string();
  }
  if (!valid_name(s.name)) throw Error(arg, "model name", "must be letters, digits, '_', '.' or '-' (write NAME=DIR)");
  if (s.root.empty()) throw Error(arg, "model directory", "is empty");
  return s;
}

struct InferenceServer::Impl {
  ServeOptions o;
  std::vector<std::unique_ptr<Slot>> slots;
  std::map<std::string, Slot*> by_name;
  ServeMetrics metrics;
  std::unique_ptr<PredictionLog> log;
  std::unique_ptr<HttpServer> http;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> completions{0}, failures{0};
  std::atomic<size_t> decoding{0};  // memory reserved by the pictures of requests in flight
  std::thread poller;
  std::mutex poll_m;
  std::condition_variable poll_cv;

  Slot* find(const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  }

  // A failure inside the server (a model that threw, a libtorch error): logged here with what happened, and
  // answered with an id that finds this line, never with the message itself (it may hold paths, addresses
  // of a backtrace, or other internals a client must not see).
  HttpError internal_failure(const std::string& where, const std::string& what) {
    const uint64_t id = ++failures;
    std::string first = what.substr(0, what.find('\n'));
    fmt::print(stderr, "kotsu serve: failure {} ({}): {}\n", id, where, first);
    return HttpError(500, fmt::format("internal error {}: the request could not be answered (the server's log says why)", id));
  }

  // The answer of a model's worker: its failures are the server's, not the client's (500, logged).
  template <class T>
  T answer_of(std::future<T>& f, const std::string& where) {
    try {
      return f.get();
    } catch (const Error& e) {  // a kotsu error while answering: say its field and reason, not its file
      if (e.file().empty() || e.file() == "<input>") throw HttpError(400, client_text(e));
      throw internal_failure(where, e.what());
    } catch (const std::exception& e) {
      throw internal_failure(where, e.what());
    }
  }

  // Runs the inputs of one request through the model's batcher; the answer body (200) for `v2` or v1.
  std::string predict(Slot& s, const std::string& body, bool v2) {
    const auto model = std::atomic_load(&s.model);
    if (model->kind() == "causal-lm")
      throw HttpError(400, "model '" + s.name + "' is a causal language model: send it to /v1/completions or /v1/chat/completions");
    const bool image = model->kind() == "image";
    const json req = parse_body(body, o.limits);
    const std::vector<std::string> raw = v2 ? v2_inputs(req, image, o.limits) : v1_inputs(req, image, o.limits);
    std::vector<ServeInput> ins(raw.size());
    std::vector<int64_t> lengths(raw.size());  // for the prediction log
    // pictures: the memory their decoding takes, read from their headers, is bounded per request and for the
    // whole server before any is decoded (a small PNG can hold a huge picture)
    size_t decode_need = 0;
    if (image) {
      for (size_t i = 0; i < raw.size(); ++i) {
        try {
          decode_need += model->decode_bytes(raw[i], fmt::format("inputs[{}]", i), o.max_decode_request);
        } catch (const Error& e) {
          throw HttpError(e.reason().find("over the limit") != std::string::npos ? 413 : 400, e.what());
        }
      }
      if (decode_need > o.max_decode_request)
        throw HttpError(413, fmt::format("inputs: the pictures need {} MB to decode, over the limit of {} MB per request",
                                         (decode_need + (1u << 20) - 1) >> 20, o.max_decode_request >> 20));
    }
    DecodeReservation reservation(decoding, decode_need, o.max_decode_total);
    if (!reservation.ok) throw HttpError(503, "the server is decoding too many pictures at once; retry later");
    for (size_t i = 0; i < raw.size(); ++i) {
      if (!image) {
        ins[i].text = raw[i];
        lengths[i] = static_cast<int64_t>(utf8_length(raw[i]));
        continue;
      }
      try {
        ins[i].image = model->decode(raw[i], fmt::format("inputs[{}]", i), o.max_decode_request);
      } catch (const Error& e) {
        throw HttpError(400, e.what());
      }
      lengths[i] = static_cast<int64_t>(ins[i].image.width) * ins[i].image.height;
    }
    auto futures = s.batcher->submit(std::move(ins));
    if (!futures) throw HttpError(503, stopping ? "the server is shutting down" : "the queue of model '" + s.name + "' is full; retry later");
    const auto deadline = clk::now() + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.request_timeout_s));
    std::vector<Answer> answers;
    answers.reserve(futures->size());
    for (auto& f : *futures) {
      if (f.wait_until(deadline) != std::future_status::ready) throw HttpError(504, "no answer from model '" + s.name + "' in time");
      answers.push_back(answer_of(f, "model " + s.name));
    }
    std::vector<ServeOutput> outs;
    outs.reserve(answers.size());
    for (auto& a : answers) outs.push_back(a.out);
    const auto& by = *answers.front().model;
    if (log)
      for (size_t i = 0; i < outs.size(); ++i)
        if (log->sample()) {
          const auto& o_ = outs[i];
          log->write(s.name, by.version(), raw[i], !image, lengths[i], by.labels()[static_cast<size_t>(o_.label)],
                     o_.probs[static_cast<size_t>(o_.label)]);
        }
    return (v2 ? v2_response(s.name, by.version(), by.labels(), outs, req) : v1_response(s.name, by.version(), by.labels(), outs)).dump();
  }

  // An OpenAI-style completion through the model's queue, answered whole or streamed.
  HttpResponse complete(const std::string& body, bool chat, std::string* model_name) {
    std::string name;
    CompletionRequest r = completion_request(parse_body(body, o.limits), chat, &name);
    Slot* s = find(name);
    if (!s) throw HttpError(404, "no model named '" + name + "'");
    *model_name = name;
    if (std::atomic_load(&s->model)->kind() != "causal-lm")
      throw HttpError(400, "model '" + name + "' is a classifier: send it to /v1/models/" + name + ":predict");
    std::atomic_load(&s->model)->prepare(r);  // before a stream starts: its errors are 400s, not events
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++completions);
    const auto created = static_cast<int64_t>(std::time(nullptr));
    // byte-level tokens can end inside a UTF-8 sequence: replace what is not valid rather than fail
    auto dump = [](const ojson& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
    std::shared_ptr<StreamState> stream;
    if (r.stream) {
      stream = std::make_shared<StreamState>();
      r.on_text = [stream](const std::string& piece) {
        std::lock_guard<std::mutex> lk(stream->m);
        if (stream->cancelled) return false;
        stream->pieces.push_back(piece);
        stream->cv.notify_all();
        return true;
      };
    }
    std::vector<CompletionRequest> one;
    one.push_back(std::move(r));
    auto futures = s->completer->submit(std::move(one));
    if (!futures) throw HttpError(503, stopping ? "the server is shutting down" : "the queue of model '" + name + "' is full; retry later");
    if (!stream) {
      auto& f = futures->front();
      const auto wait = std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.request_timeout_s));
      if (f.wait_for(wait) != std::future_status::ready) throw HttpError(504, "no answer from model '" + name + "' in time");
      const Completion c = answer_of(f, "model " + name);
      return reply(200, dump(completion_response(id, name, created, c, chat)));
    }
    // server-sent events: the pieces as the worker produces them, then the closing chunk and [DONE]
    HttpResponse res;
    res.content_type = "text/event-stream";
    res.headers.emplace_back("Cache-Control", "no-cache");
    res.stream = std::make_shared<CompletionEvents>(stream, std::move(futures->front()), id, name, created, chat, dump,
                                                    [this, name](const std::string& what) { internal_failure("model " + name, what); });
    return res;
  }

  // Every request the HTTP layer reads whole; errors become JSON bodies (internals only in the log).
  HttpResponse route(const HttpRequest& req) {
    const auto t0 = clk::now();
    std::string model_name;
    HttpResponse res;
    try {
      res = handle(req, &model_name);
    } catch (const HttpError& e) {
      res = reply_error(e.status(), e.what());
    } catch (const Error& e) {
      res = reply_error(400, client_text(e));
    } catch (const std::exception& e) {
      res = reply_error(500, internal_failure(req.method + " " + req.path.substr(0, 200), e.what()).what());
    }
    metrics.request(model_name, res.status, std::chrono::duration<double>(clk::now() - t0).count());
    return res;
  }

  HttpResponse handle(const HttpRequest& req, std::string* model_name) {
    const std::string& p = req.path;
    const bool get = req.method == "GET" || req.method == "HEAD", post = req.method == "POST";
    auto need = [&](bool ok) {
      if (!ok) throw HttpError(405, "method " + req.method + " is not allowed on " + p);
    };
    auto slot_of = [&](const std::string& name) -> Slot& {
      Slot* s = find(name);
      if (!s) throw HttpError(404, "no model named '" + name + "'");
      *model_name = name;
      return *s;
    };
    // OpenAI's model object: what its clients read (client.models.list / retrieve)
    auto openai_model = [](const Slot& s, const ServedModel& m) {
      return ojson{{"id", s.name}, {"object", "model"}, {"created", m.loaded_at()}, {"owned_by", "kotsu"}};
    };
    if (p == "/metrics") {
      need(get);
      std::vector<std::pair<std::string, size_t>> depths;
      for (const auto& s : slots) depths.emplace_back(s->name, s->batcher->queue_depth() + s->completer->queue_depth());
      return reply(200, metrics.text(depths), "text/plain; version=0.0.4");
    }
    if (p == "/v2/health/live") {
      need(get);
      return reply(200, R"({"live":true})");
    }
    if (p == "/v2/health/ready") {
      need(get);
      if (stopping) throw HttpError(503, "the server is shutting down");
      return reply(200, R"({"ready":true})");
    }
    if (p == "/v2") {
      need(get);
      return reply(200, ojson{{"name", "kotsu"}, {"version", "1"}, {"extensions", json::array()}}.dump());
    }
    if (p == "/v1/completions" || p == "/v1/chat/completions") {
      need(post);
      return complete(req.body, p == "/v1/chat/completions", model_name);
    }
    if (p == "/v1/models") {
      need(get);
      // OpenAI's list ("object": "list", "data": [model objects]) and kotsu's ("models") in one body
      ojson list = ojson::array(), data = ojson::array();
      for (const auto& s : slots) {
        const auto m = std::atomic_load(&s->model);
        list.push_back(ojson{{"name", s->name}, {"version", m->version()}, {"kind", m->kind()}, {"labels", m->labels()}});
        data.push_back(openai_model(*s, *m));
      }
      return reply(200, ojson{{"object", "list"}, {"data", data}, {"models", list}}.dump());
    }
    static const std::string v1 = "/v1/models/", v2 = "/v2/models/";
    if (p.rfind(v1, 0) == 0) {
      std::string rest = p.substr(v1.size());
      const auto colon = rest.rfind(':');
      if (colon != std::string::npos && rest.substr(colon) == ":predict") {
        Slot& s = slot_of(rest.substr(0, colon));
        need(post);
        return reply(200, predict(s, req.body, false));
      }
      if (rest.find('/') == std::string::npos && colon == std::string::npos) {
        need(get);
        Slot& s = slot_of(rest);
        const auto m = std::atomic_load(&s.model);
        ojson j = openai_model(s, *m);
        j["model_version_status"] = ojson::array({ojson{{"version", m->version()}, {"state", "AVAILABLE"}}});
        j["kind"] = m->kind();
        j["labels"] = m->labels();
        return reply(200, j.dump());
      }
    } else if (p.rfind(v2, 0) == 0) {
      std::string rest = p.substr(v2.size());
      std::vector<std::string> parts;
      for (size_t a = 0;;) {
        const auto b = rest.find('/', a);
        parts.push_back(rest.substr(a, b == std::string::npos ? std::string::npos : b - a));
        if (b == std::string::npos) break;
        a = b + 1;
      }
      std::string version;  // /v2/models/NAME/versions/V/...
      if (parts.size() >= 3 && parts[1] == "versions") {
        version = parts[2];
        parts.erase(parts.begin() + 1, parts.begin() + 3);
      }
      if (!parts.empty() && !parts[0].empty() && parts.size() <= 2) {
        Slot& s = slot_of(parts[0]);
        const auto m = std::atomic_load(&s.model);
        if (!version.empty() && version != m->version())
          throw HttpError(404, "model '" + s.name + "' has no version " + version + " (serving " + m->version() + ")");
        if (parts.size() == 1) {
          need(get);
          return reply(200, v2_metadata(s.name, m->version(), m->kind(), m->labels()).dump());
        }
        if (parts[1] == "ready") {
          need(get);
          return reply(200, ojson{{"name", s.name}, {"ready", !stopping.load()}}.dump());
        }
        if (parts[1] == "infer") {
          need(post);
          return reply(200, predict(s, req.body, true));
        }
      }
    }
    throw HttpError(404, "no such path: " + p.substr(0, 200));
  }

  void load_slot(Slot& s, bool force, std::vector<std::string>* lines) {
    std::lock_guard<std::mutex> lk(s.reload_m);
    try {
      const ServedVersion v = resolve_version(s.root);
      const auto cur = std::atomic_load(&s.model);
      if (!force && cur && cur->dir() == v.dir && cur->version() == v.version) return;
      auto next = std::make_shared<ServedModel>(v, o.device, o.chat_template, o.int8);
      std::atomic_store(&s.model, next);
      if (lines && cur) lines->push_back(fmt::format("{}: version {} -> {} ({})", s.name, cur->version(), next->version(), next->dir()));
    } catch (const std::exception& e) {
      const auto cur = std::atomic_load(&s.model);
      if (!cur) throw;  // first load: the server does not start
      if (lines) lines->push_back(fmt::format("{}: reload failed, still serving version {}: {}", s.name, cur->version(), e.what()));
    }
  }

  void poll_loop() {
    std::unique_lock<std::mutex> lk(poll_m);
    while (!stopping) {
      poll_cv.wait_for(lk, std::chrono::duration<double>(o.poll_seconds), [&] { return stopping.load(); });
      if (stopping) break;
      lk.unlock();
      std::vector<std::string> lines;
      for (auto& s : slots) load_slot(*s, false, &lines);
      for (const auto& l : lines) fmt::print(stderr, "kotsu serve: {}\n", l);
      lk.lock();
    }
  }
};

InferenceServer::InferenceServer(ServeOptions o, const std::vector<ModelSpec>& models) : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  I.o = std::move(o);
  if (models.empty()) throw Error("<arguments>", "models", "name at least one model directory to serve");
  if (I.o.limits.max_inputs > I.o.batch.max_queue)
    throw Error("<arguments>", "max-inputs", "must not exceed the queue size (--max-queue)");
  for (const auto& spec : models) {
    if (I.by_name.count(spec.name)) throw Error(spec.root, "model name", "'" + spec.name + "' is served twice (write NAME=DIR)");
    auto s = std::make_unique<Slot>();
    s->name = spec.name;
    s->root = spec.root;
    I.load_slot(*s, true, nullptr);
    Slot* raw = s.get();
    s->batcher = std::make_unique<DynamicBatcher<ServeInput, Answer>>(
        I.o.batch,
        [raw](std::vector<ServeInput>& batch) {
          auto model = std::atomic_load(&raw->model);
          auto outs = model->classify(batch);
          std::vector<Answer> answers;
          answers.reserve(outs.size());
          for (auto& x : outs) answers.push_back(Answer{std::move(x), model});
          return answers;
        },
        [&I, raw](size_t n) { I.metrics.batch(raw->name, n); });
    BatcherOptions lm = I.o.batch;  // completions waiting together are generated together
    lm.max_batch = std::max<size_t>(1, I.o.lm_max_batch);
    s->completer = std::make_unique<DynamicBatcher<CompletionRequest, Completion>>(
        lm,
        [raw](std::vector<CompletionRequest>& batch) {
          auto model = std::atomic_load(&raw->model);
          return model->complete_batch(batch);
        },
        [&I, raw](size_t n) { I.metrics.batch(raw->name, n); });
    I.by_name[s->name] = s.get();
    I.slots.push_back(std::move(s));
  }
  if (!I.o.log.path.empty()) I.log = std::make_unique<PredictionLog>(I.o.log);

  HttpServerOptions h;
  h.host = I.o.host;
  h.port = I.o.port;
  h.handler_threads = std::max<size_t>(1, I.o.http_threads);
  h.max_body = I.o.max_body;
  h.max_body_in_flight = std::max(I.o.max_body, I.o.max_body_in_flight);
  h.max_connections = I.o.max_connections;
  h.max_connections_per_client = I.o.max_connections_per_client;
  h.header_timeout_s = I.o.header_timeout_s;
  h.body_timeout_s = h.write_timeout_s = I.o.io_timeout_s;
  h.idle_timeout_s = I.o.idle_timeout_s;
  I.http = std::make_unique<HttpServer>(
      h, [&I](const HttpRequest& req) { return I.route(req); }, [](int, const std::string& message) { return error_json(message); },
      [&I](int status) { I.metrics.request("", status, 0.0); });
}

InferenceServer::~InferenceServer() {
  stop();
  if (impl_->poller.joinable()) impl_->poller.join();
  for (auto& s : impl_->slots) s->batcher->stop(), s->completer->stop();
}

int InferenceServer::bind() { return impl_->http->bind(); }

void InferenceServer::listen() {
  Impl& I = *impl_;
  if (I.o.poll_seconds > 0) I.poller = std::thread([&I] { I.poll_loop(); });
  I.http->run();  // returns after stop(), once the requests in flight are answered
  I.stopping = true;
  I.poll_cv.notify_all();
  if (I.poller.joinable()) I.poller.join();
  for (auto& s : I.slots) s->batcher->stop(), s->completer->stop();
  if (I.log) I.log->flush();
}

void InferenceServer::stop() {
  Impl& I = *impl_;
  {
    std::lock_guard<std::mutex> lk(I.poll_m);
    I.stopping = true;
  }
  I.poll_cv.notify_all();
  I.http->stop();
  for (auto& s : I.slots) s->batcher->flush_now();  // answer the requests in flight without waiting out their batch window
}

std::vector<std::string> InferenceServer::reload(bool force) {
  std::vector<std::string> lines;
  for (auto& s : impl_->slots) impl_->load_slot(*s, force, &lines);
  return lines;
}

std::vector<std::string> InferenceServer::describe() const {
  std::vector<std::string> out;
  for (const auto& s : impl_->slots) {
    const auto m = std::atomic_load(&s->model);
    if (m->kind() == "causal-lm")
      out.push_back(fmt::format("{}: causal LM, version {}, from {} (/v1/completions, /v1/chat/completions)", s->name, m->version(), m->dir()));
    else
      out.push_back(fmt::format("{}: {} classifier, version {}, {} labels, from {}", s->name, m->kind(), m->version(), m->labels().size(), m->dir()));
    if (const auto w = unfinished_run_warning(m->dir()); !w.empty()) out.push_back(s->name + ": " + w);
  }
  return out;
}

}  // namespace kotsu
