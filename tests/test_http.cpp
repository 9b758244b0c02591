// serve/http_server through raw sockets on 127.0.0.1, as a hostile client sends its bytes: HTTP/1.1
// framing (pipelining, half-close, Content-Length and chunked conflicts, limits answered at once), slow
// clients (many half-sent headers, trickling bytes) that must not delay anyone else, connection and body
// budgets, streamed answers, and a stop that answers what is in flight. Times are bounds with a wide
// margin over what is asked (a loaded CI machine), never measurements.
#include "kotsu/serve/http_server.hpp"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "test_util.hpp"

using namespace kotsu;
using ::testing::HasSubstr;
using clk = std::chrono::steady_clock;

namespace {

// An echo server: answers "METHOD PATH BODY" (or streams the body in 3 chunks when the path is /stream,
// or waits when the path is /slow) on a free port, in a background thread.
struct Echo {
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;
  std::atomic<int> errors{0};
  explicit Echo(HttpServerOptions o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    server = std::make_unique<HttpServer>(
        o,
        [](const HttpRequest& r) {
          HttpResponse res;
          if (r.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(500));
          if (r.path == "/stream") {
            struct Three : ChunkSource {
              int n = 0;
              std::optional<std::string> next() override {
                if (n == 3) return std::nullopt;
                return "piece" + std::to_string(n++) + ";";
              }
              void cancel() override {}
            };
            res.stream = std::make_shared<Three>();
            res.content_type = "text/event-stream";
            return res;
          }
          res.content_type = "text/plain";
          res.body = r.method + " " + r.path + " " + r.body;
          return res;
        },
        [](int status, const std::string& message) { return "{\"error\": \"" + std::to_string(status) + " " + message + "\"}"; },
        [this](int) { ++errors; });
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~Echo() {
    server->stop();
    thread.join();
  }
};

int connect_to(int port) { return test::connect_loopback(port); }

void send_all(int fd, const std::string& s) { ::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

// Reads until the peer closes, `until` appears `count` times, or `wait` passes.
std::string read_some(int fd, std::chrono::milliseconds wait, const std::string& until = "", int count = 1) {
  std::string out;
  const auto end = clk::now() + wait;
  for (;;) {
    if (!until.empty()) {
      int seen = 0;
      for (size_t p = out.find(until); p != std::string::npos; p = out.find(until, p + 1)) ++seen;
      if (seen >= count) break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clk::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Whether the server closed the connection (a read sees the end) within `wait`.
bool closed_within(int fd, std::chrono::milliseconds wait) {
  const auto end = clk::now() + wait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clk::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

// One request on a fresh connection, its whole answer (the server closes: Connection: close).
std::string http_exchange(int port, const std::string& bytes, std::chrono::milliseconds wait = std::chrono::milliseconds(5000)) {
  const int fd = connect_to(port);
  if (fd < 0) return "<connect failed>";
  send_all(fd, bytes);
  std::string out = read_some(fd, wait);
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

const std::string kGood = "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

}  // namespace

TEST(Http, PipelinedRequestsAreAllAnsweredInOrder) {
  Echo e;
  const int fd = connect_to(e.port);
  send_all(fd, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nonePOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
               "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto t0 = clk::now();
  const std::string out = read_some(fd, std::chrono::milliseconds(3000), "HTTP/1.1 200", 3);
  ::close(fd);
  EXPECT_LT(clk::now() - t0, std::chrono::milliseconds(2000)) << "the later requests waited";
  const size_t a = out.find("POST /a one"), b = out.find("POST /b two"), c = out.find("GET /c ");
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(b, std::string::npos) << out;
  ASSERT_NE(c, std::string::npos) << out;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(Http, AClientThatHalfClosesStillGetsItsAnswer) {
  Echo e;
  const int fd = connect_to(e.port);
  send_all(fd, "POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  ::shutdown(fd, SHUT_WR);
  const std::string out = read_some(fd, std::chrono::milliseconds(3000));
  ::close(fd);
  EXPECT_EQ(status_of(out), 200) << out;
  EXPECT_THAT(out, HasSubstr("POST /half hello"));
}

TEST(Http, AmbiguousFramingIsRefusedAndTheConnectionClosed) {
  Echo e;
  struct Case {
    std::string name, bytes;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"two Content-Length values", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, "Content-Length"},
      {"Content-Length then chunked", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400, "smuggling"},
      {"chunked then Content-Length", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400, "Content-Length"},
      {"negative Content-Length", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, "Content-Length"},
      {"malformed Content-Length", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n", 400, "Content-Length"},
      {"a header line without a colon", "GET /x HTTP/1.1\r\nHost: x\r\nthis line has no colon\r\n\r\n", 400, "header line"},
      {"a transfer coding other than chunked", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxyz", 400, "Transfer-Encoding"},
      {"garbage", "GARBAGE\r\n\r\n", 400, "malformed"},
  };
  for (const auto& c : cases) {
    const std::string out = http_exchange(e.port, c.bytes);
    EXPECT_EQ(status_of(out), c.status) << c.name << "\n" << out;
    EXPECT_THAT(out, HasSubstr(c.says)) << c.name;
    EXPECT_EQ(out.find("smuggled"), std::string::npos) << c.name << ": a second request was read from the same bytes";
    EXPECT_EQ(out.find("HTTP/1.1", 1), std::string::npos) << c.name << ": more than one answer\n" << out;
    EXPECT_EQ(status_of(http_exchange(e.port, kGood)), 200) << "after " << c.name;
  }
}

TEST(Http, LimitsAreAnsweredAtOnce) {
  HttpServerOptions o;
  o.max_body = 1000;
  o.max_header_bytes = 2048;
  o.body_timeout_s = 30;  // the answer must not wait for it
  Echo e(o);
  auto t0 = clk::now();
  const int fd = connect_to(e.port);
  send_all(fd, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n");  // and never the body
  std::string out = read_some(fd, std::chrono::milliseconds(5000), "}");
  ::close(fd);
  EXPECT_EQ(status_of(out), 413) << out;
  EXPECT_LT(clk::now() - t0, std::chrono::milliseconds(2000)) << "413 came only after a timeout";
  out = http_exchange(e.port, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + std::string(1001, 'a'));
  EXPECT_EQ(status_of(out), 413) << out;
  out = http_exchange(e.port, "GET /" + std::string(4000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(out), 431) << out;
  out = http_exchange(e.port, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + std::string(2048, 'b') + "\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(out), 413) << "chunked over the limit\n" << out;
  // at the limit, whatever the Content-Type says (curl -d sends application/x-www-form-urlencoded)
  out = http_exchange(e.port, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n" +
                             std::string(1000, 'c'));
  EXPECT_EQ(status_of(out), 200) << out.substr(0, 200);
  EXPECT_THAT(out, HasSubstr("POST /form ccc"));
  EXPECT_GE(e.errors.load(), 4);
}

TEST(Http, ExpectContinueChunkedBodiesAndHead) {
  Echo e;
  const int fd = connect_to(e.port);
  send_all(fd, "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  std::string out = read_some(fd, std::chrono::milliseconds(3000), "\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0), 0u) << out;
  send_all(fd, "body");
  out = read_some(fd, std::chrono::milliseconds(3000), "POST /e body");
  ::close(fd);
  EXPECT_EQ(status_of(out), 200) << out;
  out = http_exchange(e.port, "POST /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_THAT(out, HasSubstr("POST /c abcde"));
  out = http_exchange(e.port, "HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(out), 200) << out;
  EXPECT_THAT(out, HasSubstr("Content-Length: 8\r\n"));  // "HEAD /h " as GET would have it
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "") << "HEAD answered with a body";
}

TEST(Http, StreamedAnswersArriveChunked) {
  Echo e;
  const std::string out = http_exchange(e.port, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(out), 200) << out;
  EXPECT_THAT(out, HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(out, HasSubstr("7\r\npiece0;\r\n7\r\npiece1;\r\n7\r\npiece2;\r\n0\r\n\r\n"));
}

// The two probes that stopped the old server: 200 connections that send half a header and wait, then 100
// that trickle a byte every 200 ms. A normal request is answered at once meanwhile, and the slow ones are
// cut off at the header deadline.
TEST(Http, SlowClientsNeitherDelayOthersNorStayForever) {
  HttpServerOptions o;
  o.header_timeout_s = 2;
  o.handler_threads = 2;
  Echo e(o);
  std::vector<int> half;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_to(e.port);
    ASSERT_GE(fd, 0);
    send_all(fd, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Le");
    half.push_back(fd);
  }
  auto t0 = clk::now();
  EXPECT_EQ(status_of(http_exchange(e.port, kGood)), 200);
  EXPECT_LT(clk::now() - t0, std::chrono::milliseconds(1000)) << "a normal request waited behind 200 half-sent headers";
  // each is answered 408 and closed at the header deadline (2 s)
  for (int fd : half) {
    const std::string out = read_some(fd, std::chrono::milliseconds(6000));
    EXPECT_EQ(status_of(out), 408) << out;
    ::close(fd);
  }

  std::atomic<bool> done{false};
  std::vector<int> trickle;
  for (int i = 0; i < 100; ++i) trickle.push_back(connect_to(e.port));
  std::thread dripper([&] {
    const std::string req = "GET /drip HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t k = 0; k < req.size() && !done; ++k) {
      for (int fd : trickle) send_all(fd, req.substr(k, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 5; ++i) {
    t0 = clk::now();
    EXPECT_EQ(status_of(http_exchange(e.port, kGood)), 200);
    EXPECT_LT(clk::now() - t0, std::chrono::milliseconds(1000)) << "a normal request waited behind 100 trickling clients";
  }
  // every trickling connection is closed at the header deadline (2 s), long before its header is complete
  for (int fd : trickle) {
    EXPECT_TRUE(closed_within(fd, std::chrono::milliseconds(6000)));
    ::close(fd);
  }
  done = true;
  dripper.join();
  t0 = clk::now();
  while (e.server->connections() > 0 && clk::now() - t0 < std::chrono::seconds(5)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(e.server->connections(), 0u);
}

TEST(Http, ConnectionsPerClientAndBodiesInFlightAreBounded) {
  HttpServerOptions o;
  o.max_connections_per_client = 8;
  o.max_body = 8000;
  o.max_body_in_flight = 20000;
  Echo e(o);
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(connect_to(e.port));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string out = http_exchange(e.port, kGood);
  EXPECT_EQ(status_of(out), 503) << out;
  EXPECT_THAT(out, HasSubstr("too many connections from 127.0.0.1"));
  EXPECT_THAT(out, HasSubstr("Retry-After: 1"));
  ::close(idle.back());
  idle.pop_back();
  auto t0 = clk::now();
  int status = 0;
  while (status != 200 && clk::now() - t0 < std::chrono::seconds(3)) status = status_of(http_exchange(e.port, kGood));
  EXPECT_EQ(status, 200) << "a connection freed is a connection available again";
  for (int fd : idle) ::close(fd);

  // two bodies of 8000 announced and half sent hold 16000 of the 20000: a third is refused, the first two finish
  std::vector<int> part;
  for (int i = 0; i < 2; ++i) {
    part.push_back(connect_to(e.port));
    send_all(part.back(), "POST /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 8000\r\n\r\n" + std::string(4000, 'z'));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  out = http_exchange(e.port, "POST /third HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n");
  EXPECT_EQ(status_of(out), 503) << out;
  for (int fd : part) {
    send_all(fd, std::string(4000, 'z'));
    EXPECT_EQ(status_of(read_some(fd, std::chrono::milliseconds(3000))), 200);
    ::close(fd);
  }
  EXPECT_EQ(status_of(http_exchange(e.port, "POST /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nfifth")), 200);
}

TEST(Http, StopAnswersRequestsInFlightAndClosesIdleConnections) {
  auto e = std::make_unique<Echo>();
  const int idle = connect_to(e->port);
  send_all(idle, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");  // kept alive after its answer
  EXPECT_EQ(status_of(read_some(idle, std::chrono::milliseconds(3000), "GET /first")), 200);
  const int busy = connect_to(e->port);
  send_all(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = clk::now();
  e.reset();  // stop() and wait for run() to return
  EXPECT_LT(clk::now() - t0, std::chrono::milliseconds(3000));
  EXPECT_EQ(status_of(read_some(busy, std::chrono::milliseconds(3000))), 200) << "the request in flight was dropped";
  EXPECT_TRUE(closed_within(idle, std::chrono::milliseconds(100)));
  ::close(idle);
  ::close(busy);
}
