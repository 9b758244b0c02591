#include "kotsu/serve/server.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "kotsu/core/error.hpp"
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

std::string status_text(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 408: return "request timeout";
    case 413: return "request body over the size limit";
    case 414: return "request URI too long";
    case 416: return "range not satisfiable";
    default: return "HTTP status " + std::to_string(status);
  }
}

void reply(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}
void reply_error(httplib::Response& res, int status, const std::string& message) {
  // replace: a message may quote the request's invalid UTF-8 (the JSON parser's error does)
  reply(res, status, json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace));
  if (status == 503) res.set_header("Retry-After", "1");
}
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
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> completions{0};
  std::thread poller;
  std::mutex poll_m;
  std::condition_variable poll_cv;

  Slot* find(const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
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
    for (size_t i = 0; i < raw.size(); ++i) {
      if (!image) {
        ins[i].text = raw[i];
        lengths[i] = static_cast<int64_t>(utf8_length(raw[i]));
        continue;
      }
      try {
        ins[i].image = model->decode(raw[i], fmt::format("inputs[{}]", i));
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
      answers.push_back(f.get());  // rethrows the model's failure (500 below)
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

  // An OpenAI-style completion through the model's one-at-a-time queue, answered whole or streamed.
  void complete(const std::string& body, bool chat, std::string* model_name, httplib::Response& res) {
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
      const Completion c = f.get();  // kotsu::Error (no chat template): 400 in route()
      reply(res, 200, dump(completion_response(id, name, created, c, chat)));
      return;
    }
    // server-sent events: the pieces as the worker produces them, then the closing chunk and [DONE]
    auto done = std::make_shared<std::future<Completion>>(std::move(futures->front()));
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [=, first = chat](size_t, httplib::DataSink& sink) mutable {
          auto send = [&](const std::string& data) {
            const std::string event = "data: " + data + "\n\n";
            return sink.write(event.data(), event.size());
          };
          if (first && !send(dump(completion_chunk(id, name, created, "", "", chat, true)))) return false;
          first = false;
          for (;;) {
            std::deque<std::string> pieces;
            bool finished;
            {
              std::unique_lock<std::mutex> lk(stream->m);
              stream->cv.wait_for(lk, std::chrono::milliseconds(20), [&] { return !stream->pieces.empty(); });
              pieces.swap(stream->pieces);
              finished = done->wait_for(std::chrono::seconds(0)) == std::future_status::ready;
            }
            for (const auto& p : pieces)
              if (!send(dump(completion_chunk(id, name, created, p, "", chat)))) {
                std::lock_guard<std::mutex> lk(stream->m);
                stream->cancelled = true;  // the client went away: stop generating
                return false;
              }
            if (!finished) continue;
            {
              std::lock_guard<std::mutex> lk(stream->m);
              if (!stream->pieces.empty()) continue;  // the last pieces arrived with the end
            }
            try {
              const Completion c = done->get();
              send(dump(completion_chunk(id, name, created, "", c.finish_reason, chat)));
            } catch (const std::exception& e) {
              send(dump(ojson{{"error", e.what()}}));
            }
            send("[DONE]");
            sink.done();
            return true;
          }
        });
  }

  // Manual routing (one handler per method): cheaper than a regex per route and keeps 404 vs 405 ours.
  void route(const httplib::Request& req, httplib::Response& res) {
    const auto t0 = clk::now();
    std::string model_name;
    int status = 500;
    try {
      status = handle(req, res, &model_name);
    } catch (const HttpError& e) {
      status = e.status();
      reply_error(res, status, e.what());
    } catch (const Error& e) {
      status = 400;
      reply_error(res, status, e.what());
    } catch (const std::exception& e) {
      status = 500;
      reply_error(res, status, std::string("the model failed: ") + e.what());
    }
    metrics.request(model_name, status, std::chrono::duration<double>(clk::now() - t0).count());
  }

  int handle(const httplib::Request& req, httplib::Response& res, std::string* model_name) {
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
    if (p == "/metrics") {
      need(get);
      std::vector<std::pair<std::string, size_t>> depths;
      for (const auto& s : slots) depths.emplace_back(s->name, s->batcher->queue_depth() + s->completer->queue_depth());
      res.status = 200;
      res.set_content(metrics.text(depths), "text/plain; version=0.0.4");
      return 200;
    }
    if (p == "/v2/health/live") {
      need(get);
      reply(res, 200, R"({"live":true})");
      return 200;
    }
    if (p == "/v2/health/ready") {
      need(get);
      if (stopping) throw HttpError(503, "the server is shutting down");
      reply(res, 200, R"({"ready":true})");
      return 200;
    }
    if (p == "/v2") {
      need(get);
      reply(res, 200, ojson{{"name", "kotsu"}, {"version", "1"}, {"extensions", json::array()}}.dump());
      return 200;
    }
    if (p == "/v1/completions" || p == "/v1/chat/completions") {
      need(post);
      complete(req.body, p == "/v1/chat/completions", model_name, res);
      return 200;
    }
    if (p == "/v1/models") {
      need(get);
      ojson list = ojson::array();
      for (const auto& s : slots) {
        const auto m = std::atomic_load(&s->model);
        list.push_back(ojson{{"name", s->name}, {"version", m->version()}, {"kind", m->kind()}, {"labels", m->labels()}});
      }
      reply(res, 200, ojson{{"models", list}}.dump());
      return 200;
    }
    static const std::string v1 = "/v1/models/", v2 = "/v2/models/";
    if (p.rfind(v1, 0) == 0) {
      std::string rest = p.substr(v1.size());
      const auto colon = rest.rfind(':');
      if (colon != std::string::npos && rest.substr(colon) == ":predict") {
        Slot& s = slot_of(rest.substr(0, colon));
        need(post);
        reply(res, 200, predict(s, req.body, false));
        return 200;
      }
      if (rest.find('/') == std::string::npos && colon == std::string::npos) {
        need(get);
        const auto m = std::atomic_load(&slot_of(rest).model);
        reply(res, 200, ojson{{"model_version_status", ojson::array({ojson{{"version", m->version()}, {"state", "AVAILABLE"}}})},
                              {"kind", m->kind()}, {"labels", m->labels()}}.dump());
        return 200;
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
          reply(res, 200, v2_metadata(s.name, m->version(), m->kind(), m->labels()).dump());
          return 200;
        }
        if (parts[1] == "ready") {
          need(get);
          reply(res, 200, ojson{{"name", s.name}, {"ready", !stopping.load()}}.dump());
          return 200;
        }
        if (parts[1] == "infer") {
          need(post);
          reply(res, 200, predict(s, req.body, true));
          return 200;
        }
      }
    }
    throw HttpError(404, "no such path: " + p);
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

  auto& http = I.http;
  const size_t threads = std::max<size_t>(1, I.o.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(I.o.max_body);
  http.set_read_timeout(I.o.io_timeout_s, 0);
  http.set_write_timeout(I.o.io_timeout_s, 0);
  http.set_keep_alive_max_count(1000000);
  http.set_keep_alive_timeout(5);
  http.set_tcp_nodelay(true);
  auto handler = [&I](const httplib::Request& req, httplib::Response& res) { I.route(req, res); };
  http.Get(".*", handler);
  http.Post(".*", handler);
  http.Put(".*", handler);
  http.Delete(".*", handler);
  http.Patch(".*", handler);
  http.Options(".*", handler);
  // statuses httplib answers itself (413 over max_body, 400 unparsable request line...) get a JSON body too
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) reply_error(res, res.status, status_text(res.status));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    reply_error(res, 500, "internal error");
  });
}

InferenceServer::~InferenceServer() {
  stop();
  if (impl_->poller.joinable()) impl_->poller.join();
  for (auto& s : impl_->slots) s->batcher->stop(), s->completer->stop();
}

int InferenceServer::bind() {
  Impl& I = *impl_;
  int port = I.o.port;
  if (port == 0) port = I.http.bind_to_any_port(I.o.host);
  else if (!I.http.bind_to_port(I.o.host, port)) port = -1;
  if (port < 0) throw Error(I.o.host + ":" + std::to_string(I.o.port), "port", "cannot listen there (in use, or not an address of this machine)");
  return port;
}

void InferenceServer::listen() {
  Impl& I = *impl_;
  if (I.o.poll_seconds > 0) I.poller = std::thread([&I] { I.poll_loop(); });
  I.http.listen_after_bind();  // returns after stop(), once the requests in flight are answered
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
  I.http.stop();
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
  }
  return out;
}

}  // namespace kotsu
