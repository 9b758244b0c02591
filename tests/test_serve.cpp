// Tests of kotsu/serve: the dynamic batcher, the protocol bodies, metrics, the prediction log, and the
// server end to end over loopback HTTP (answers equal to predict_texts / predict_images, errors, batching,
// hot reload and graceful shutdown without a failed request, malformed HTTP and JSON, `kotsu serve`).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/data/image_dataset.hpp"
#include "kotsu/data/lm_data.hpp"
#include "kotsu/infer/complete.hpp"
#include "kotsu/infer/evaluate.hpp"
#include "kotsu/infer/evaluate_image.hpp"
#include "kotsu/io/file.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/serve/batcher.hpp"
#include "kotsu/serve/metrics.hpp"
#include "kotsu/serve/server.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

using namespace kotsu;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string base64(const std::string& bytes) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

// A server running in a background thread on a free loopback port.
struct Running {
  std::unique_ptr<InferenceServer> server;
  int port = 0;
  std::thread thread;
  Running(ServeOptions o, std::vector<ModelSpec> models) {
    o.port = 0;
    o.poll_seconds = 0;
    server = std::make_unique<InferenceServer>(o, models);
    port = server->bind();
    thread = std::thread([this] { server->listen(); });
  }
  ~Running() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
};

json post(const httplib::Client& c0, const std::string& path, const std::string& body, int* status) {
  auto& c = const_cast<httplib::Client&>(c0);
  auto r = c.Post(path.c_str(), body, "application/json");
  if (!r) {
    *status = -1;
    return json();
  }
  *status = r->status;
  return json::parse(r->body);
}

// Sends raw bytes on a fresh connection and returns whatever comes back before the server closes it.
std::string raw_exchange(int port, const std::string& bytes) {
  const int fd = test::connect_loopback(port);
  if (fd < 0) return "<connect failed>";
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// What a JSON answer carries for a text whose bytes are not all valid UTF-8 (replaced by U+FFFD).
std::string clean(const std::string& s) {
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

// A picture classifier run of the tiny MobileNet with labels cat and dog.
std::string cat_dog_run(const std::string& tag) {
  ImageModel im = load_image_model(test::tiny_mobilenet(tag), {"cat", "dog"});
  const std::string dir = test::temp_dir(tag + "-run") + "/run";
  save_image_model(im, dir);
  return dir;
}

// tiny_bert (3 labels) copied as version `v` under root.
void add_version(const std::string& root, int v) {
  fs::create_directories(root);
  fs::copy(test::fixture("tiny_bert"), root + "/" + std::to_string(v), fs::copy_options::recursive);
}

}  // namespace

TEST(Batcher, GroupsItemsAndAnswersEachCaller) {
  std::vector<size_t> sizes;
  std::mutex m;
  BatcherOptions o;
  o.max_batch = 4;
  o.max_wait = std::chrono::milliseconds(50);
  DynamicBatcher<int, int> b(
      o, [](std::vector<int>& xs) { std::vector<int> y; for (int x : xs) y.push_back(x * 10); return y; },
      [&](size_t n) { std::lock_guard<std::mutex> lk(m); sizes.push_back(n); });
  auto f = b.submit({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  ASSERT_TRUE(f);
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*f)[static_cast<size_t>(i)].get(), (i + 1) * 10);
  std::lock_guard<std::mutex> lk(m);
  // 10 items queued at once with room for 4 per batch: 4, 4, 2
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 2}));
}

TEST(Batcher, RefusesWhenFullPropagatesFailuresAndDrainsOnStop) {
  BatcherOptions o;
  o.max_batch = 2;
  o.max_queue = 3;
  o.max_wait = std::chrono::milliseconds(0);
  std::promise<void> gate;
  auto opened = gate.get_future().share();
  DynamicBatcher<int, int> b(o, [opened](std::vector<int>& xs) {
    opened.wait();
    if (xs.front() < 0) throw std::runtime_error("negative");
    return xs;
  });
  auto first = b.submit({1});  // taken by the worker, which then waits at the gate
  ASSERT_TRUE(first);
  while (b.queue_depth() != 0) std::this_thread::yield();
  auto queued = b.submit({-1, 2, 3});  // fills the queue
  ASSERT_TRUE(queued);
  EXPECT_FALSE(b.submit({4}));  // over max_queue: refused, nothing queued
  EXPECT_EQ(b.queue_depth(), 3u);
  gate.set_value();
  EXPECT_EQ((*first)[0].get(), 1);
  EXPECT_THROW((*queued)[0].get(), std::runtime_error);  // -1 and 2 ran together
  EXPECT_THROW((*queued)[1].get(), std::runtime_error);
  auto late = b.submit({5});
  ASSERT_TRUE(late);
  b.stop();  // answers what is queued before the worker ends
  EXPECT_EQ((*queued)[2].get(), 3);
  EXPECT_EQ((*late)[0].get(), 5);
  EXPECT_FALSE(b.submit({6}));
}

TEST(ServeProtocol, RefusesBadBodiesWithTheField) {
  InputLimits lim;
  lim.max_inputs = 3;
  lim.max_text_bytes = 10;
  auto status_of = [&](auto fn) {
    try {
      fn();
    } catch (const HttpError& e) {
      return std::to_string(e.status()) + " " + e.what();
    }
    return std::string("accepted");
  };
  EXPECT_EQ(status_of([&] { parse_body(std::string(100, '[') + std::string(100, ']'), lim); }).substr(0, 3), "400");
  EXPECT_EQ(status_of([&] { parse_body(R"({"inputs": ["[[[[[[[[[[[[[[[[[[[[["]})", lim); }), "accepted");  // brackets in strings
  EXPECT_NE(status_of([&] { parse_body("{\"inputs\": [\"\xff\"]}", lim); }).find("400 body: invalid JSON"), std::string::npos);
  EXPECT_NE(status_of([&] { parse_body("{\"inputs\": [", lim); }).find("400 body: invalid JSON"), std::string::npos);
  EXPECT_EQ(status_of([&] { v1_inputs(json::array(), false, lim); }), "400 body: must be a JSON object with \"inputs\"");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"text", "a"}}, false, lim); }), "400 inputs: missing (send {\"inputs\": [...]})");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", "a"}}, false, lim); }), "400 inputs: must be an array");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", json::array()}}, false, lim); }), "400 inputs: is empty");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", {"a", 1e308}}}, false, lim); }), "400 inputs[1]: must be a string (the text to classify)");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", {"a", "b", "c", "d"}}}, false, lim); }).substr(0, 3), "413");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"instances", {"0123456789x"}}}, false, lim); }),
            "413 instances[0]: text of 11 bytes is over the limit of 10");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", {"abcde"}}}, true, lim); }), "400 inputs[0]: invalid base64 (length)");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", {"%%%"}}}, true, lim); }), "400 inputs[0]: invalid base64");
  EXPECT_EQ(status_of([&] { v1_inputs(json{{"inputs", {json{{"b64", "a$bc"}}}}}, true, lim); }), "400 inputs[0].b64: invalid base64");
  EXPECT_EQ(v1_inputs(json{{"inputs", {"aGVsbG8", json{{"b64", " aGk= "}}}}}, true, lim), (std::vector<std::string>{"hello", "hi"}));

  auto v2 = [](json shape, json data, std::string type = "BYTES") {
    return json{{"inputs", {json{{"name", "text"}, {"shape", shape}, {"datatype", type}, {"data", data}}}}};
  };
  EXPECT_EQ(v2_inputs(v2({2}, {"a", "b"}), false, lim), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(v2_inputs(v2({2, 1}, {{"a"}, {"b"}}), false, lim), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(status_of([&] { v2_inputs(v2({3}, {"a", "b"}), false, lim); }), "400 inputs[0].data: holds 2 items but shape says 3");
  EXPECT_EQ(status_of([&] { v2_inputs(v2({2}, {"a", "b"}, "FP32"), false, lim); }), "400 inputs[0].datatype: must be \"BYTES\"");
  EXPECT_EQ(status_of([&] { v2_inputs(v2({-2}, {"a", "b"}), false, lim); }), "400 inputs[0].shape: must hold non-negative integers");
  EXPECT_EQ(status_of([&] { v2_inputs(v2({2, 2}, {"a", "b"}), false, lim); }), "400 inputs[0].shape: must be [N] or [N, 1]");
  EXPECT_EQ(status_of([&] { v2_inputs(json{{"inputs", json::array()}}, false, lim); }), "400 inputs: must be an array of exactly one input tensor");
}

TEST(ServeProtocol, ResponsesFollowTheProtocols) {
  std::vector<ServeOutput> outs = {{1, {0.25f, 0.75f}}, {0, {0.5f, 0.5f}}};
  const auto v1 = v1_response("m", "3", {"neg", "pos"}, outs);
  EXPECT_EQ(v1.dump(),
            R"({"model":"m","version":"3","predictions":[{"label":"pos","confidence":0.75,"probabilities":{"neg":0.25,"pos":0.75}},)"
            R"({"label":"neg","confidence":0.5,"probabilities":{"neg":0.5,"pos":0.5}}]})");
  const auto v2 = v2_response("m", "3", {"neg", "pos"}, outs, json{{"id", "r1"}});
  EXPECT_EQ(v2.dump(),
            R"({"model_name":"m","model_version":"3","id":"r1","outputs":[{"name":"label","shape":[2],"datatype":"BYTES","data":["pos","neg"]},)"
            R"({"name":"probabilities","shape":[2,2],"datatype":"FP32","data":[0.25,0.75,0.5,0.5]}]})");
}

TEST(ServeMetrics, PrometheusTextWithCumulativeBuckets) {
  ServeMetrics m;
  m.request("a", 200, 0.0007);
  m.request("a", 200, 0.003);
  m.request("a", 400, 20.0);
  m.batch("a", 3);
  const std::string t = m.text({{"a", 5}});
  EXPECT_NE(t.find("kotsu_requests_total{model=\"a\",code=\"200\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("kotsu_requests_total{model=\"a\",code=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_request_duration_seconds_bucket{model=\"a\",le=\"0.0005\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_request_duration_seconds_bucket{model=\"a\",le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_request_duration_seconds_bucket{model=\"a\",le=\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_request_duration_seconds_bucket{model=\"a\",le=\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_request_duration_seconds_bucket{model=\"a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_request_duration_seconds_count{model=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_batch_size_bucket{model=\"a\",le=\"2\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_batch_size_bucket{model=\"a\",le=\"4\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_batch_size_sum{model=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("kotsu_queue_depth{model=\"a\"} 5\n"), std::string::npos);
  EXPECT_EQ(prometheus_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(ServeModels, VersionFoldersAndNames) {
  const std::string root = test::temp_dir("serve-versions");
  EXPECT_THROW(resolve_version(root), Error);
  add_version(root, 2);
  add_version(root, 10);
  fs::create_directories(root + "/11");  // no config.json: not a version
  fs::create_directories(root + "/latest");
  const auto v = resolve_version(root);
  EXPECT_EQ(v.version, "10");
  EXPECT_EQ(v.dir, root + "/10");
  EXPECT_EQ(resolve_version(root + "/2").version, "1");
  EXPECT_EQ(parse_model_spec("intent=/x/y").name, "intent");
  EXPECT_EQ(parse_model_spec("/x/run-3/").name, "run-3");
  EXPECT_THROW(parse_model_spec("a b=/x"), Error);
  ServeOptions o;
  EXPECT_THROW(InferenceServer(o, {{"a", root}, {"a", root}}), Error);
  EXPECT_THROW(InferenceServer(o, {{"a", test::fixture("tiny_bert_init")}}), Error);  // no labels
}

TEST(Serve, AnswersEqualPredictTextsOverBothProtocols) {
  ServeOptions o;
  Running r(o, {{"bert", test::fixture("tiny_bert")}});
  TextModel m = load_text_model(test::fixture("tiny_bert"));
  const std::vector<std::string> texts = {"the cat sat", "a dog", "hello world and more words"};
  const auto want = predict_texts(m, texts, run_max_len(test::fixture("tiny_bert")));
  auto c = r.client();
  int st = 0;
  const json v1 = post(c, "/v1/models/bert:predict", json{{"inputs", texts}}.dump(), &st);
  ASSERT_EQ(st, 200) << v1.dump();
  EXPECT_EQ(v1["model"], "bert");
  EXPECT_EQ(v1["version"], "1");
  ASSERT_EQ(v1["predictions"].size(), 3u);
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(v1["predictions"][i]["label"], want[i].label);
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(v1["predictions"][i]["probabilities"][m.config.labels[k]].get<double>(), want[i].probs[k], 1e-6);
  }
  const json v2 = post(c, "/v2/models/bert/infer",
                       json{{"id", "q"}, {"inputs", {json{{"name", "text"}, {"shape", {3}}, {"datatype", "BYTES"}, {"data", texts}}}}}.dump(), &st);
  ASSERT_EQ(st, 200) << v2.dump();
  EXPECT_EQ(v2["id"], "q");
  EXPECT_EQ(v2["outputs"][1]["shape"], json({3, 3}));
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(v2["outputs"][0]["data"][i], want[i].label);
    for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(v2["outputs"][1]["data"][i * 3 + k].get<double>(), want[i].probs[k], 1e-6);
  }
  // the same through /versions/1/, and the metadata and health routes
  EXPECT_EQ(post(c, "/v2/models/bert/versions/1/infer", json{{"inputs", {json{{"name", "text"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {"x"}}}}}}.dump(), &st)["model_version"], "1");
  EXPECT_EQ(st, 200);
  auto g = c.Get("/v2/models/bert");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->status, 200);
  EXPECT_EQ(json::parse(g->body)["outputs"][1]["shape"], json({-1, 3}));
  EXPECT_EQ(c.Get("/v2/health/live")->status, 200);
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
  EXPECT_EQ(json::parse(c.Get("/v2/models/bert/ready")->body)["ready"], true);
  EXPECT_EQ(json::parse(c.Get("/v1/models")->body)["models"][0]["labels"].size(), 3u);
  // errors: JSON bodies with the right codes
  auto code_of = [&](const std::string& method, const std::string& path, const std::string& body = "") {
    auto res = method == "GET" ? c.Get(path.c_str()) : method == "DELETE" ? c.Delete(path.c_str()) : c.Post(path.c_str(), body, "application/json");
    if (!res) return std::string("no answer");
    return std::to_string(res->status) + " " + json::parse(res->body).value("error", "");
  };
  EXPECT_EQ(code_of("POST", "/v1/models/nope:predict", "{}"), "404 no model named 'nope'");
  EXPECT_EQ(code_of("GET", "/v1/models/bert:predict"), "405 method GET is not allowed on /v1/models/bert:predict");
  EXPECT_EQ(code_of("DELETE", "/v2/models/bert/infer"), "405 method DELETE is not allowed on /v2/models/bert/infer");
  EXPECT_EQ(code_of("POST", "/v1/models/bert:predict", "{\"inputs\": [1]}"), "400 inputs[0]: must be a string (the text to classify)");
  EXPECT_EQ(code_of("POST", "/v2/models/bert/versions/7/infer", "{}"), "404 model 'bert' has no version 7 (serving 1)");
  EXPECT_EQ(code_of("GET", "/nowhere"), "404 no such path: /nowhere");
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_NE(metrics.find("kotsu_requests_total{model=\"bert\",code=\"200\"} 5"), std::string::npos) << metrics;  // 3 infers, 2 metadata
  EXPECT_NE(metrics.find("kotsu_requests_total{model=\"bert\",code=\"405\"} 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("kotsu_batch_size_count{model=\"bert\"}"), std::string::npos);
}

TEST(Serve, PicturesAsBase64EqualPredictImages) {
  const std::string dir = cat_dog_run("serve-image");
  ServeOptions o;
  Running r(o, {{"pics", dir}});
  const std::string png = read_all(test::fixture("images/gray.png")), jpg = read_all(test::fixture("images/gray.jpg"));
  ImageModel m = load_image_model(dir);
  const auto want = predict_images(m, {decode_image_bytes(png, "a", 32), decode_image_bytes(jpg, "b", 32)});
  auto c = r.client();
  int st = 0;
  const json v1 = post(c, "/v1/models/pics:predict", json{{"inputs", {base64(png), json{{"b64", base64(jpg)}}}}}.dump(), &st);
  ASSERT_EQ(st, 200) << v1.dump();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 2; ++k)
      EXPECT_NEAR(v1["predictions"][i]["probabilities"][k == 0 ? "cat" : "dog"].get<double>(), want[i][k].item<double>(), 1e-6);
  const json bad = post(c, "/v1/models/pics:predict", json{{"inputs", {base64("not a picture at all")}}}.dump(), &st);
  EXPECT_EQ(st, 400);
  EXPECT_NE(bad["error"].get<std::string>().find("inputs[0]"), std::string::npos) << bad.dump();
}

TEST(Serve, ConcurrentClientsAreBatchedAndAllAnswered) {
  ServeOptions o;
  o.batch.max_wait = std::chrono::milliseconds(20);
  Running r(o, {{"bert", test::fixture("tiny_bert")}});
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      auto c = r.client();
      for (int i = 0; i < 10; ++i) {
        int st = 0;
        const json j = post(c, "/v1/models/bert:predict", json{{"inputs", {"text " + std::to_string(t * 100 + i)}}}.dump(), &st);
        (st == 200 && j["predictions"].size() == 1 ? ok : failed)++;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 80);
  EXPECT_EQ(failed, 0);
  // fewer forward passes than requests: concurrent requests shared batches
  const std::string metrics = r.client().Get("/metrics")->body;
  const auto at = metrics.find("kotsu_batch_size_count{model=\"bert\"} ");
  ASSERT_NE(at, std::string::npos);
  const int batches = std::stoi(metrics.substr(at + std::string("kotsu_batch_size_count{model=\"bert\"} ").size()));
  EXPECT_LT(batches, 80) << metrics;
}

TEST(Serve, HotReloadAndShutdownLoseNoRequest) {
  const std::string root = test::temp_dir("serve-reload") + "/intent";
  add_version(root, 1);
  ServeOptions o;
  o.batch.max_wait = std::chrono::milliseconds(5);
  auto r = std::make_unique<Running>(o, std::vector<ModelSpec>{{"intent", root}});
  std::atomic<bool> run{true};
  std::atomic<int> ok{0}, failed{0};
  std::set<std::string> versions;
  std::mutex vm;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      auto c = r->client();
      while (run) {
        int st = 0;
        const json j = post(c, "/v1/models/intent:predict", R"({"inputs": ["some text"]})", &st);
        if (st == 200) {
          ++ok;
          std::lock_guard<std::mutex> lk(vm);
          versions.insert(j["version"].get<std::string>());
        } else {
          ++failed;
        }
      }
    });
  auto wait_for = [&](auto done) {  // polls up to 20 s (a loaded CI machine is slow)
    for (int i = 0; i < 2000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  auto seen = [&](const std::string& v) {
    std::lock_guard<std::mutex> lk(vm);
    return versions.count(v) > 0;
  };
  wait_for([&] { return seen("1"); });
  const int before_reload = ok;
  add_version(root, 2);
  const auto lines = r->server->reload(false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("version 1 -> 2"), std::string::npos) << lines[0];
  EXPECT_TRUE(r->server->reload(false).empty());  // nothing new
  fs::create_directories(root + "/3");
  std::ofstream(root + "/3/config.json") << "{ broken";
  const auto bad = r->server->reload(false);  // a broken new version is reported; version 2 stays
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find("reload failed, still serving version 2"), std::string::npos) << bad[0];
  // clients keep being answered through the reloads (waited for, not timed: a loaded machine is slow)
  wait_for([&] { return seen("2") && ok >= before_reload + 10; });
  run = false;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GE(ok, before_reload + 10);
  EXPECT_EQ(versions, (std::set<std::string>{"1", "2"}));

  // graceful stop: requests already in the batcher's wait are answered, not dropped
  fs::remove_all(root + "/3");
  ServeOptions slow;
  slow.batch.max_wait = std::chrono::seconds(30);
  slow.batch.max_batch = 64;
  auto s = std::make_unique<Running>(slow, std::vector<ModelSpec>{{"intent", root}});
  std::vector<std::future<int>> inflight;
  for (int i = 0; i < 4; ++i)
    inflight.push_back(std::async(std::launch::async, [&s] {
      int st = 0;
      post(s->client(), "/v1/models/intent:predict", R"({"inputs": ["x"]})", &st);
      return st;
    }));
  wait_for([&] {  // the four are queued, waiting for the batch window to close
    auto m = s->client().Get("/metrics");
    return m && m->body.find("kotsu_queue_depth{model=\"intent\"} 4") != std::string::npos;
  });
  const auto t0 = std::chrono::steady_clock::now();
  s.reset();  // stop() + join while the four wait for their batch
  for (auto& f : inflight) EXPECT_EQ(f.get(), 200);
  // they were answered at once, not after the 30 s window
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 15.0);
}

TEST(Serve, MalformedHttpAndJsonNeverStopCorrectAnswers) {
  ServeOptions o;
  o.max_body = 4096;
  o.limits.max_inputs = 4;
  Running r(o, {{"bert", test::fixture("tiny_bert")}});
  const std::string good = R"({"inputs": ["fine"]})";
  const std::vector<std::string> bodies = {
      "", "null", "[]", "{}", "{\"inputs\": {}}", "{\"inputs\": [null]}", "{\"inputs\": [[\"a\"]]}", "{\"inputs\": [1e999999]}",
      "{\"inputs\": [123456789012345678901234567890]}", std::string(2000, '[') + std::string(2000, ']'), "{\"inputs\": [\"\xc3\x28\"]}",
      "{\"inputs\": [\"\xed\xa0\x80\"]}", "{\"inputs\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "{\"inputs\": [\"trunc", std::string("\x00\x01\x02", 3),
      "{\"inputs\": [\"\\ud800\"]}", "{\"instances\": true}", std::string(5000, 'x')};
  auto c = r.client();
  for (const auto& b : bodies) {
    int st = 0;
    auto res = c.Post("/v1/models/bert:predict", b, "application/json");
    ASSERT_TRUE(res) << b.substr(0, 40);
    EXPECT_GE(res->status, 400) << b.substr(0, 40);
    EXPECT_LT(res->status, 500) << b.substr(0, 40) << " -> " << res->body;
    EXPECT_TRUE(json::parse(res->body).contains("error")) << res->body;
    post(c, "/v1/models/bert:predict", good, &st);
    ASSERT_EQ(st, 200) << "after " << b.substr(0, 40);
  }
  const std::vector<std::string> raw = {
      "GARBAGE\r\n\r\n",
      "POST /v1/models/bert:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"inputs\": [",  // truncated body
      "POST /v1/models/bert:predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/models/bert:predict HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST /v1/models/bert:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\r\n" + std::string(10000, 'h') + "\r\n\r\n",
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS hello
  };
  for (const auto& b : raw) {
    raw_exchange(r.port, b);
    int st = 0;
    post(c, "/v1/models/bert:predict", good, &st);
    ASSERT_EQ(st, 200) << "after raw " << b.substr(0, 40);
  }
  auto big = c.Post("/v1/models/bert:predict", std::string(5000, ' '), "application/json");  // over max_body
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(json::parse(big->body)["error"], "request body over the size limit");
}

TEST(Serve, PredictionLogHashesInputs) {
  const std::string dir = test::temp_dir("serve-log");
  ServeOptions o;
  o.log.path = dir + "/predictions.jsonl";
  {
    Running r(o, {{"bert", test::fixture("tiny_bert")}});
    int st = 0;
    post(r.client(), "/v1/models/bert:predict", R"({"inputs": ["secret text é", "two"]})", &st);
    ASSERT_EQ(st, 200);
  }
  std::ifstream f(o.log.path);
  std::vector<json> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(json::parse(l));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["model"], "bert");
  EXPECT_EQ(lines[0]["version"], "1");
  EXPECT_EQ(lines[0]["input_length"], 13);  // characters, not bytes
  EXPECT_EQ(lines[0]["input_sha256"], sha256_hex("secret text é"));
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_FALSE(lines[0].contains("input"));
  EXPECT_EQ(read_all(o.log.path).find("secret"), std::string::npos);
  // rate 0.5: about half, the same half for the same seed
  PredictionLogOptions half{dir + "/half.jsonl", 0.5, false, 7};
  int kept = 0;
  {
    PredictionLog log(half);
    for (int i = 0; i < 1000; ++i) kept += log.sample();
  }
  EXPECT_GT(kept, 430);
  EXPECT_LT(kept, 570);
}

TEST(Serve, CommandLineServesStopsOnSigtermAndReloadsOnSighup) {
  test::ServeProcess serve({"m=" + test::fixture("tiny_bert"), "--threads", "1"});
  ASSERT_GT(serve.port, 0) << serve.output;
  httplib::Client c("127.0.0.1", serve.port);
  auto res = c.Post("/v1/models/m:predict", R"({"inputs": ["x"]})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  kill(serve.pid, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  res = c.Post("/v1/models/m:predict", R"({"inputs": ["x"]})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(serve.stop(), 0);  // SIGTERM: a clean exit
}

// `kotsu drift` of a log equal to the run's reference (every PSI 0, "stable", the split's size named as
// `unit`) and of a shifted log ("retrain recommended").
void expect_drift_stable_then_retrain(const std::string& run, const std::string& dir, const std::string& same, const std::string& shifted,
                                      size_t n, const std::string& unit) {
  const std::string cli = KOTSU_CLI;
  int st = 0;
  write_atomic(dir + "/same.jsonl", same);
  write_atomic(dir + "/shifted.jsonl", shifted);
  std::string out = test::run_command(cli + " drift --run " + run + " --log " + dir + "/same.jsonl --out " + dir + "/same.json", &st);
  ASSERT_EQ(st, 0) << out;
  const json r = json::parse(read_all(dir + "/same.json"));
  EXPECT_EQ(r["reference_inputs"], n);
  EXPECT_EQ(r["live_inputs"], n);
  for (const char* k : {"predicted_label", "confidence", "input_length"}) EXPECT_NEAR(r[k]["psi"].get<double>(), 0.0, 1e-9) << k;
  EXPECT_EQ(r["verdict"], "stable");
  EXPECT_NE(out.find("the run's validation split: " + std::to_string(n) + " " + unit), std::string::npos) << out;
  out = test::run_command(cli + " drift --run " + run + " --log " + dir + "/shifted.jsonl", &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_NE(out.find("major shift (a PSI >= 0.25): retrain recommended"), std::string::npos) << out;
}

// kotsu drift on a real run: the reference is the run's validation split recomputed from run.json (the same
// rows, checked by count and by a zero PSI against a log of exactly their predictions), then a shifted log.
TEST(Serve, DriftComparesTheLogWithTheRunsValidationSplit) {
  const std::string dir = test::temp_dir("serve-drift");
  const std::string run = dir + "/run", cli = KOTSU_CLI;
  int st = 0;
  const std::string trained = test::run_command(cli + " train --model " + test::fixture("tiny_bert_init") + " --data " +
                                                    test::fixture("task/train.csv") + " --strategy head --val-fraction 0.2 --epochs 1 --seed 5 --quiet --out " + run,
                                                &st);
  ASSERT_EQ(st, 0) << trained;
  const json options = json::parse(read_all(run + "/run.json"))["options"];
  TextDataset d = load_text_dataset(test::fixture("task/train.csv"), TextColumns{});
  TextModel m = load_text_model(run);
  std::vector<size_t> tr, va;
  stratified_split(label_ids(d, m.config.labels), options["val_fraction"].get<double>(), options["seed"].get<uint64_t>(), tr, va);
  std::vector<std::string> texts;
  for (size_t i : va) texts.push_back(d.texts[i]);
  const auto preds = predict_texts(m, texts, run_max_len(run));
  std::string same, shifted;
  for (size_t i = 0; i < texts.size(); ++i) {
    const float conf = *std::max_element(preds[i].probs.begin(), preds[i].probs.end());
    same += json{{"model", "m"}, {"label", preds[i].label}, {"confidence", conf}, {"input_length", texts[i].size()}}.dump() + "\n";
    shifted += json{{"model", "m"}, {"label", m.config.labels[0]}, {"confidence", 0.999}, {"input_length", 400}}.dump() + "\n";
  }
  expect_drift_stable_then_retrain(run, dir, same, shifted, va.size(), "rows");
  // two models in one log need --model; a broken line is named
  write_atomic(dir + "/two.jsonl", same + json{{"model", "other"}, {"label", "x"}, {"confidence", 0.5}, {"input_length", 3}}.dump() + "\n");
  std::string out = test::run_command(cli + " drift --run " + run + " --log " + dir + "/two.jsonl", &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("the log holds several models (m, other): choose one with --model"), std::string::npos) << out;
  out = test::run_command(cli + " drift --run " + run + " --log " + dir + "/two.jsonl --model m", &st);
  EXPECT_EQ(st, 0) << out;
  write_atomic(dir + "/bad.jsonl", same + "{\"model\": \"m\", \"label\": \"a\"}\n");
  out = test::run_command(cli + " drift --run " + run + " --log " + dir + "/bad.jsonl", &st);
  EXPECT_NE(out.find("line " + std::to_string(texts.size() + 1) + ": confidence: missing or not a number"), std::string::npos) << out;
}

// kotsu drift on a picture run: the reference is the run's predictions on its validation pictures (the split
// recomputed), decoded as the server decodes them, so a log of the server's own answers on exactly those
// pictures is stable (PSI 0 on label, confidence and decoded pixels); a log of one label is a major shift.
TEST(Serve, DriftOfAPictureRunUsesItsValidationPictures) {
  const std::string dir = test::temp_dir("serve-drift-pictures");
  const std::string run = dir + "/run", cli = KOTSU_CLI, data = test::fixture("image_task/folder");
  int st = 0;
  const std::string trained = test::run_command(cli + " train --model " + test::tiny_mobilenet("drift-pictures") + " --data " + data +
                                                    " --strategy head --epochs 1 --seed 4 --val-fraction 0.5 --quiet --out " + run, &st);
  ASSERT_EQ(st, 0) << trained;
  const json options = json::parse(read_all(run + "/run.json"))["options"];
  ServedModel served({run, "1"}, "cpu", "");
  ImageDataset d = load_image_dataset(data);
  std::vector<size_t> tr, va;
  stratified_split(remap_targets(d, served.labels()), options["val_fraction"].get<double>(), options["seed"].get<uint64_t>(), tr, va);
  ASSERT_FALSE(va.empty());
  std::vector<ServeInput> inputs(va.size());
  for (size_t i = 0; i < va.size(); ++i) inputs[i].image = served.decode(read_all(d.paths[va[i]]), d.paths[va[i]]);
  std::vector<int64_t> pixels;
  for (const auto& in : inputs) pixels.push_back(static_cast<int64_t>(in.image.width) * in.image.height);
  const auto outs = served.classify(inputs);
  std::string same, shifted;
  for (size_t i = 0; i < outs.size(); ++i) {
    const float conf = outs[i].probs[static_cast<size_t>(outs[i].label)];
    same += json{{"model", "p"}, {"label", served.labels()[static_cast<size_t>(outs[i].label)]}, {"confidence", conf}, {"input_length", pixels[i]}}.dump() + "\n";
    shifted += json{{"model", "p"}, {"label", served.labels()[0]}, {"confidence", 0.999}, {"input_length", 4 * pixels[i]}}.dump() + "\n";
  }
  expect_drift_stable_then_retrain(run, dir, same, shifted, va.size(), "pictures");
}

// OpenAI-style completions on a causal LM: the text equals infer/complete's on the same model (greedy), the
// answer follows OpenAI's shape with token counts, stop strings cut, chat goes through the chat format, and
// a request the model cannot serve is a 4xx naming the field.
TEST(Serve, CompletionsFollowOpenAiAndEqualCompleteOnTheModel) {
  ServeOptions o;
  o.chat_template = "chatml";
  Running r(o, {{"gpt", test::fixture("tiny_gpt2")}, {"bert", test::fixture("tiny_bert")}});
  CausalLmModel m = load_causal_lm(test::fixture("tiny_gpt2"));
  m.model->eval();
  Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2"));
  GenerateOptions g;
  g.max_new_tokens = 8;
  const Completion want = complete(*m.model, tok, m.config.eos_token_id, "hello world", g, {});
  auto c = r.client();
  int st = 0;
  json a = post(c, "/v1/completions", R"({"model": "gpt", "prompt": "hello world", "max_tokens": 8, "temperature": 0})", &st);
  ASSERT_EQ(st, 200) << a.dump();
  EXPECT_EQ(a["object"], "text_completion");
  EXPECT_EQ(a["model"], "gpt");
  EXPECT_EQ(a["choices"][0]["text"], clean(want.text));
  EXPECT_EQ(a["choices"][0]["finish_reason"], want.finish_reason);
  EXPECT_EQ(a["usage"]["prompt_tokens"], static_cast<int64_t>(prompt_ids(tok, "hello world").size()));
  EXPECT_EQ(a["usage"]["completion_tokens"], want.completion_tokens);
  EXPECT_EQ(a["usage"]["total_tokens"], want.prompt_tokens + want.completion_tokens);
  // a stop string taken from the greedy text: the answer is cut before it, finish_reason "stop"
  const std::string full = a["choices"][0]["text"];
  ASSERT_GE(want.text.size(), 4u);
  const std::string stop = want.text.substr(2, 2);
  json sa = post(c, "/v1/completions", json{{"model", "gpt"}, {"prompt", {"hello world"}}, {"max_tokens", 8}, {"temperature", 0}, {"stop", stop}}.dump(), &st);
  ASSERT_EQ(st, 200) << sa.dump();
  EXPECT_EQ(sa["choices"][0]["text"], clean(want.text.substr(0, want.text.find(stop))));
  EXPECT_EQ(sa["choices"][0]["finish_reason"], "stop");
  // chat: the messages through ChatML, cut at its end of turn
  const ChatFormat chatml("chatml", test::fixture("tiny_gpt2"), tok);
  const Completion chat_want = complete(*m.model, tok, m.config.eos_token_id, chatml.generation_prompt({{"user", "hi"}}), g, {chatml.end_of_turn()});
  json ca = post(c, "/v1/chat/completions",
                 R"({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "temperature": 0})", &st);
  ASSERT_EQ(st, 200) << ca.dump();
  EXPECT_EQ(ca["object"], "chat.completion");
  EXPECT_EQ(ca["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(ca["choices"][0]["message"]["content"], clean(chat_want.text));
  // sampling is seeded: the same seed gives the same text
  const std::string sampled = R"({"model": "gpt", "prompt": "a b", "max_tokens": 6, "temperature": 1.0, "seed": 7})";
  EXPECT_EQ(post(c, "/v1/completions", sampled, &st)["choices"][0]["text"], post(c, "/v1/completions", sampled, &st)["choices"][0]["text"]);
  auto error_of = [&](const std::string& path, const std::string& body) {
    const json e = post(c, path, body, &st);
    return std::to_string(st) + " " + e.value("error", "");
  };
  EXPECT_EQ(error_of("/v1/completions", R"({"prompt": "x"})"), "400 model: missing or not a string");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "nope", "prompt": "x"})"), "404 no model named 'nope'");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "bert", "prompt": "x"})"), "400 model 'bert' is a classifier: send it to /v1/models/bert:predict");
  EXPECT_EQ(error_of("/v1/models/gpt:predict", R"({"inputs": ["x"]})"),
            "400 model 'gpt' is a causal language model: send it to /v1/completions or /v1/chat/completions");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "gpt", "prompt": "x", "stream": 1})"), "400 stream: must be true or false");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "gpt", "prompt": "x", "n": 2})"), "400 n: only 1 completion per request is supported");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "gpt", "prompt": "x", "temperature": 3})"), "400 temperature: must be in [0, 2]");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "gpt", "prompt": ""})"), "400 prompt: must be a non-empty string");
  EXPECT_EQ(error_of("/v1/completions", R"({"model": "gpt", "prompt": "x", "stop": [1]})"), "400 stop: must be a string or an array of up to 4 strings");
  EXPECT_EQ(error_of("/v1/chat/completions", R"({"model": "gpt", "messages": [{"role": "robot", "content": "x"}]})"),
            "400 messages[0].role: must be system, user or assistant");
  EXPECT_EQ(error_of("/v1/chat/completions", R"({"model": "gpt", "messages": []})"), "400 messages: must be a non-empty array");
}

// Concurrent completions are generated together (one batch of the completer, seen in the batch-size
// histogram) and each answer equals the request's own completion alone.
TEST(Serve, ConcurrentCompletionsAreBatchedAndEqualTheirOwnAnswers) {
  ServeOptions o;
  o.batch.max_wait = std::chrono::microseconds(300000);  // long enough for all four to join one batch
  Running r(o, {{"gpt", test::fixture("tiny_gpt2")}});
  CausalLmModel m = load_causal_lm(test::fixture("tiny_gpt2"));
  m.model->eval();
  Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2"));
  const std::vector<std::string> prompts = {"hello world", "a", "the quick brown fox jumps", "b c"};
  std::vector<std::future<json>> answers;
  for (size_t i = 0; i < prompts.size(); ++i)
    answers.push_back(std::async(std::launch::async, [&, i] {
      int st = 0;
      json a = post(r.client(), "/v1/completions", json{{"model", "gpt"}, {"prompt", prompts[i]}, {"max_tokens", 3 + static_cast<int>(i)}, {"temperature", 0}}.dump(), &st);
      a["status"] = st;
      return a;
    }));
  for (size_t i = 0; i < prompts.size(); ++i) {
    json a = answers[i].get();
    ASSERT_EQ(a["status"], 200) << a.dump();
    GenerateOptions g;
    g.max_new_tokens = 3 + static_cast<int64_t>(i);
    const Completion want = complete(*m.model, tok, m.config.eos_token_id, prompts[i], g, {});
    EXPECT_EQ(a["choices"][0]["text"], clean(want.text)) << prompts[i];
    EXPECT_EQ(a["usage"]["completion_tokens"], want.completion_tokens);
  }
  httplib::Client c = r.client();
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("kotsu_batch_size_count{model=\"gpt\"} 1"), std::string::npos) << metrics->body;
}

// Streamed completions: the pieces infer/complete hands out concatenate to the final text (a stop string's
// start is held back, never sent and then cut), and the server's events carry exactly those pieces, a
// closing chunk with the finish reason, then [DONE].
TEST(Serve, StreamedCompletionsConcatenateToTheWholeAnswer) {
  CausalLmModel m = load_causal_lm(test::fixture("tiny_gpt2"));
  m.model->eval();
  Tokenizer tok = Tokenizer::load(test::fixture("tiny_gpt2"));
  GenerateOptions g;
  g.max_new_tokens = 12;
  const Completion whole = complete(*m.model, tok, m.config.eos_token_id, "the cat", g, {});
  ASSERT_GE(whole.text.size(), 6u);
  for (const std::vector<std::string>& stop : {std::vector<std::string>{}, {whole.text.substr(3, 3)}}) {
    std::vector<std::string> pieces;
    const Completion c = complete(*m.model, tok, m.config.eos_token_id, "the cat", g, stop, [&](const std::string& p) {
      pieces.push_back(p);
      return true;
    });
    std::string joined;
    for (const auto& p : pieces) joined += p;
    EXPECT_EQ(joined, c.text);
    EXPECT_EQ(c.text, stop.empty() ? whole.text : whole.text.substr(0, whole.text.find(stop[0])));
    if (stop.empty()) {
      EXPECT_GT(pieces.size(), 1u);  // streamed, not one piece at the end
    }
  }
  // a sink that returns false cancels the generation
  int calls = 0;
  const Completion cut = complete(*m.model, tok, m.config.eos_token_id, "the cat", g, {}, [&](const std::string&) { return ++calls < 2; });
  EXPECT_LT(cut.completion_tokens, whole.completion_tokens);

  ServeOptions o;
  o.chat_template = "chatml";
  Running r(o, {{"gpt", test::fixture("tiny_gpt2")}});
  auto c = r.client();
  auto events_of = [&](const std::string& path, const std::string& body) {
    auto res = c.Post(path.c_str(), body, "application/json");
    EXPECT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    std::vector<std::string> events;
    for (size_t at = 0; at < res->body.size();) {
      const auto end = res->body.find("\n\n", at);
      EXPECT_NE(end, std::string::npos);
      if (end == std::string::npos) break;
      EXPECT_EQ(res->body.compare(at, 6, "data: "), 0);
      events.push_back(res->body.substr(at + 6, end - at - 6));
      at = end + 2;
    }
    return events;
  };
  const auto events = events_of("/v1/completions", R"({"model": "gpt", "prompt": "the cat", "max_tokens": 12, "temperature": 0, "stream": true})");
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const json e = json::parse(events[i]);
    EXPECT_EQ(e["object"], "text_completion");
    EXPECT_TRUE(e["choices"][0]["finish_reason"].is_null());
    text += e["choices"][0]["text"].get<std::string>();
  }
  const json last = json::parse(events[events.size() - 2]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], whole.finish_reason);
  // pieces are whole characters, so each cleans on its own as the whole text does
  EXPECT_EQ(text, clean(whole.text));
  const auto chat = events_of("/v1/chat/completions",
                              R"({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "temperature": 0, "stream": true})");
  ASSERT_GE(chat.size(), 3u);
  const json first = json::parse(chat.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chat.back(), "[DONE]");
}

namespace {
// tiny_bert with a tokenizer.json that adds no special tokens, so that "" and "   " have no tokens at all
std::string untemplated_bert(const std::string& tag) {
  const std::string dir = test::temp_dir(tag) + "/bert";
  fs::copy(test::fixture("tiny_bert"), dir, fs::copy_options::recursive);
  json tj = json::parse(read_all(test::fixture("tiny_bert_tj/tokenizer.json")));
  tj["post_processor"] = nullptr;
  std::ofstream(dir + "/tokenizer.json") << tj.dump();
  fs::remove(dir + "/vocab.txt");
  return dir;
}

// stderr of this process into a file while alive (the server logs there)
struct CaptureStderr {
  std::string path;
  int saved = -1;
  explicit CaptureStderr(const std::string& p) : path(p) {
    std::fflush(stderr);
    saved = ::dup(2);
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::close(fd);
  }
  std::string text() {
    std::fflush(stderr);
    return read_all(path);
  }
  ~CaptureStderr() {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
  }
};
}  // namespace

// What a hostile-input probe found: an empty text answered 500 with libtorch's backtrace (addresses of
// libc, libtorch and the binary). Empty and whitespace-only texts are classified; a failure inside the
// server is logged with what happened and answered with an id only.
TEST(Serve, EmptyTextsAreClassifiedAndFailuresLeakNothing) {
  const std::string model = untemplated_bert("serve-empty");
  ServeOptions o;
  Running r(o, {{"bert", model}});
  auto c = r.client();
  int st = 0;
  const json v1 = post(c, "/v1/models/bert:predict", json{{"inputs", {"", "   ", "the cat sat"}}}.dump(), &st);
  ASSERT_EQ(st, 200) << v1.dump();
  ASSERT_EQ(v1["predictions"].size(), 3u);
  for (const auto& p : v1["predictions"]) EXPECT_GT(p["confidence"].get<double>(), 0.0);
  TextModel m = load_text_model(model);
  const auto want = predict_texts(m, {""}, 32);
  EXPECT_EQ(v1["predictions"][0]["label"], want[0].label);
  int code = 0;
  const std::string cli = test::run_command(std::string(KOTSU_CLI) + " predict --run " + model + " \"\" \"  \"", &code);
  EXPECT_EQ(code, 0) << cli;
  EXPECT_EQ(std::count(cli.begin(), cli.end(), '\n'), 2) << cli;

  // a model that fails inside its batch: a tokenizer whose Split pattern backtracks without end on a long
  // run of one letter; PCRE2's match limit stops it with an error naming the tokenizer's file (a path on
  // the server)
  const std::string broken = untemplated_bert("serve-broken");
  {
    json tj = json::parse(read_all(broken + "/tokenizer.json"));
    tj["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a|aa)+$"}}}, {"behavior", "Isolated"}, {"invert", false}};
    std::ofstream(broken + "/tokenizer.json") << tj.dump();
  }
  std::string log_text, body;
  {
    CaptureStderr log(test::temp_dir("serve-log-err") + "/stderr.txt");
    Running b(o, {{"broken", broken}});
    auto bc = b.client();
    auto ok = bc.Post("/v1/models/broken:predict", json{{"inputs", {"a cat"}}}.dump(), "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    auto res = bc.Post("/v1/models/broken:predict", json{{"inputs", {std::string(60, 'a') + "!"}}}.dump(), "application/json");
    ASSERT_TRUE(res);
    st = res->status;
    body = res->body;
    log_text = log.text();
  }
  EXPECT_EQ(st, 500) << body;
  const std::string err = json::parse(body)["error"];
  EXPECT_THAT(err, ::testing::MatchesRegex("internal error [0-9]+: the request could not be answered \\(the server's log says why\\)")) << err;
  for (const char* leak : {"0x", "/", "tokenizer", "regular expression", "match limit", "frame"})
    EXPECT_EQ(body.find(leak), std::string::npos) << leak << " in " << body;
  EXPECT_THAT(log_text, ::testing::HasSubstr("kotsu serve: failure 1 (model broken): " + broken + "/tokenizer.json")) << log_text;
  EXPECT_THAT(log_text, ::testing::HasSubstr("match limit")) << log_text;
  EXPECT_EQ(log_text.find("frame #"), std::string::npos) << "the log line holds the first line only\n" << log_text;
}

// OpenAI's clients read GET /v1/models as {"object": "list", "data": [{"id", "object": "model", ...}]}.
TEST(Serve, ModelListIsOpenAiShapedAndKeepsKotsusFields) {
  ServeOptions o;
  Running r(o, {{"bert", test::fixture("tiny_bert")}, {"gpt", test::fixture("tiny_gpt2")}});
  auto c = r.client();
  auto g = c.Get("/v1/models");
  ASSERT_TRUE(g);
  const json j = json::parse(g->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  std::set<std::string> ids;
  for (const auto& m : j["data"]) {
    ids.insert(m["id"].get<std::string>());
    EXPECT_EQ(m["object"], "model");
    EXPECT_EQ(m["owned_by"], "kotsu");
    EXPECT_GT(m["created"].get<int64_t>(), 1700000000);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"bert", "gpt"}));
  EXPECT_EQ(j["models"].size(), 2u);  // kotsu's own listing stays
  const json one = json::parse(c.Get("/v1/models/gpt")->body);
  EXPECT_EQ(one["id"], "gpt");
  EXPECT_EQ(one["object"], "model");
  EXPECT_EQ(one["kind"], "causal-lm");
}

namespace {
// A grayscale PNG of w x h pixels of one value, written with zlib (rows: filter byte 0 + pixels), deflated
// as it goes: a few hundred kilobytes for a picture of a quarter gigapixel.
std::string uniform_png(uint32_t w, uint32_t h, bool interlaced) {
  std::string out = "\x89PNG\r\n\x1A\n";
  auto be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  auto chunk = [&](const char* type, const std::string& data) {
    be32(out, static_cast<uint32_t>(data.size()));
    std::string td = std::string(type, 4) + data;
    out += td;
    be32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
  };
  std::string ihdr;
  be32(ihdr, w);
  be32(ihdr, h);
  ihdr += std::string("\x08\x00\x00\x00", 4);
  ihdr.push_back(interlaced ? 1 : 0);
  chunk("IHDR", ihdr);
  z_stream z{};
  deflateInit(&z, 1);
  std::string row(w + 1, static_cast<char>(128)), idat;
  row[0] = 0;
  std::vector<unsigned char> buf(1 << 16);
  for (uint32_t y = 0; y <= h; ++y) {
    z.next_in = reinterpret_cast<Bytef*>(row.data());
    z.avail_in = y < h ? static_cast<uInt>(row.size()) : 0;
    const int flush = y < h ? Z_NO_FLUSH : Z_FINISH;
    do {
      z.next_out = buf.data();
      z.avail_out = static_cast<uInt>(buf.size());
      deflate(&z, flush);
      idat.append(reinterpret_cast<char*>(buf.data()), buf.size() - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  chunk("IDAT", idat);
  chunk("IEND", "");
  return out;
}

// A field of /proc/self/status in kB: "VmHWM:" (peak resident memory) or "VmRSS:" (now).
size_t status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field, 0) == 0) return std::stoul(line.substr(field.size()));
  return 0;
}
}  // namespace

// What a hostile-input probe found: a 746 KB request holding a 16000x16000 PNG grew the server by 7.8 GB,
// which stayed. The PNG is now decoded row by row, shrunk while it is read; pictures that would need more
// than the request's budget are refused from their header; the server's decoding budget answers 503.
TEST(Serve, AHugePictureDecodesInBoundedMemory) {
  const std::string dir = cat_dog_run("serve-huge");
  ServeOptions o;
  Running r(o, {{"pics", dir}});
  auto c = r.client();
  const std::string huge = uniform_png(16000, 16000, false);
  ASSERT_LT(huge.size(), size_t(2) << 20);
  std::ofstream("/proc/self/clear_refs") << "5";  // peak RSS := RSS now
  const size_t before = status_kb("VmHWM:");
  // without the reset, an earlier test's peak would hide this one's and the check below could not fail
  ASSERT_LE(before, status_kb("VmRSS:") + (16u << 10)) << "the kernel did not reset the peak resident memory";
  int st = 0;
  const json v1 = post(c, "/v1/models/pics:predict", json{{"inputs", {base64(huge)}}}.dump(), &st);
  ASSERT_EQ(st, 200) << v1.dump();
  const size_t grew_mb = (status_kb("VmHWM:") - before) / 1024;
  EXPECT_LT(grew_mb, 200u) << "decoding whole would take 1.8 GB";
  // the shrunk decode equals a uniform picture of the model's size: the same answer as a small gray PNG
  const json small = post(c, "/v1/models/pics:predict", json{{"inputs", {base64(uniform_png(64, 64, false))}}}.dump(), &st);
  ASSERT_EQ(st, 200);
  EXPECT_NEAR(v1["predictions"][0]["confidence"].get<double>(), small["predictions"][0]["confidence"].get<double>(), 1e-4);

  const json inter = post(c, "/v1/models/pics:predict", json{{"inputs", {base64(uniform_png(16000, 16000, true))}}}.dump(), &st);
  EXPECT_EQ(st, 413) << inter.dump();
  EXPECT_THAT(inter["error"].get<std::string>(), ::testing::HasSubstr("inputs[0]: png: 16000x16000 picture needs 1709 MB to decode (interlaced PNG"));

  ServeOptions tight;
  tight.max_decode_request = 64u << 20;
  tight.max_decode_total = 1u << 20;
  Running t(tight, {{"pics", dir}});
  auto tc = t.client();
  const json busy = post(tc, "/v1/models/pics:predict", json{{"inputs", {base64(uniform_png(1000, 1000, false))}}}.dump(), &st);
  EXPECT_EQ(st, 503) << busy.dump();
}

// The official OpenAI SDK (npm openai, installed by scripts/setup) as the client: it must parse every
// answer as kotsu means it (models.list() used to come back empty: /v1/models was not OpenAI's shape).
TEST(Serve, OpenAiSdkReadsModelsCompletionsAndStreams) {
  const std::string sdk = std::string(KOTSU_SOURCE_DIR) + "/assets/npm/openai/node_modules/openai";
  KOTSU_REQUIRE_PATH(sdk);
  if (test::run_command("command -v node", nullptr).find("node") == std::string::npos) KOTSU_SKIP() << "node is not installed";
  ServeOptions o;
  o.chat_template = "chatml";
  Running r(o, {{"gpt", test::fixture("tiny_gpt2")}, {"bert", test::fixture("tiny_bert")}});
  auto c = r.client();
  int st = 0;
  const json plain = post(c, "/v1/completions", R"({"model": "gpt", "prompt": "hello world", "max_tokens": 8, "temperature": 0})", &st);
  ASSERT_EQ(st, 200);
  const json chat = post(c, "/v1/chat/completions", R"({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "temperature": 0})", &st);
  ASSERT_EQ(st, 200);
  int code = 0;
  const std::string out = test::run_command("timeout 120 node " + std::string(KOTSU_SOURCE_DIR) + "/tests/clients/openai_sdk.js " + sdk +
                                                " http://127.0.0.1:" + std::to_string(r.port) + "/v1 gpt",
                                            &code);
  ASSERT_EQ(code, 0) << out;
  const json j = json::parse(out);
  ASSERT_EQ(j["models"].size(), 2u) << out;
  EXPECT_EQ(j["models"][0]["object"], "model");
  EXPECT_EQ(j["retrieved"], "gpt");
  EXPECT_EQ(j["completion"]["text"], plain["choices"][0]["text"]);
  EXPECT_EQ(j["completion"]["finish_reason"], plain["choices"][0]["finish_reason"]);
  EXPECT_EQ(j["completion"]["usage"]["total_tokens"], plain["usage"]["total_tokens"]);
  EXPECT_EQ(j["completion_stream"]["text"], plain["choices"][0]["text"]);
  EXPECT_EQ(j["completion_stream"]["finish_reason"], plain["choices"][0]["finish_reason"]);
  EXPECT_EQ(j["chat"]["content"], chat["choices"][0]["message"]["content"]);
  EXPECT_EQ(j["chat"]["role"], "assistant");
  EXPECT_EQ(j["chat_stream"]["content"], chat["choices"][0]["message"]["content"]);
  EXPECT_EQ(j["chat_stream"]["finish_reason"], chat["choices"][0]["finish_reason"]);
  EXPECT_EQ(j["error"]["status"], 404) << out;
}
