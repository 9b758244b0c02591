#include "kotsu/serve/http_server.hpp"

#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using net::use_awaitable;

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return v;
  return "";
}

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(std::max(0.001, s)));
}

std::string http_date() {
  char buf[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The fields every answer carries: Server, Date, Content-Type and the handler's own.
template <class Body>
void set_fields(http::response<Body>& r, const std::string& type, const std::vector<std::pair<std::string, std::string>>& headers) {
  r.set(http::field::server, "kotsu");
  r.set(http::field::date, http_date());
  r.set(http::field::content_type, type);
  for (const auto& [k, v] : headers) r.set(k, v);
}

// What a request that could not be read is answered (0: close without an answer: the client is gone).
std::pair<int, std::string> status_for(const beast::error_code& ec) {
  if (ec == http::error::body_limit) return {413, "request body over the size limit"};
  if (ec == http::error::header_limit) return {431, "request header over the size limit"};
  if (ec == beast::error::timeout) return {408, "request not received in time"};
  if (ec == http::error::bad_content_length) return {400, "bad Content-Length (malformed, negative, or two different values)"};
  if (ec == http::error::bad_transfer_encoding)
    return {400, "Transfer-Encoding together with Content-Length, or repeated (refused: request smuggling)"};
  if (ec == http::error::bad_field) return {400, "malformed header line (a field name and a colon are required)"};
  if (ec == http::error::bad_value) return {400, "malformed header value"};
  if (ec == http::error::bad_target) return {400, "malformed request target"};
  if (ec == http::error::bad_method || ec == http::error::bad_version) return {400, "malformed request line"};
  if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension) return {400, "malformed chunked body"};
  if (ec == http::error::bad_line_ending || ec == http::error::bad_obs_fold) return {400, "malformed request (line endings)"};
  if (ec == http::error::partial_message || ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted || ec == net::error::broken_pipe)
    return {0, ""};
  return {400, "malformed request"};
}

}  // namespace

struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(tcp::socket s, std::string c) : stream(std::move(s)), client(std::move(c)), timer(stream.get_executor()) {}
  beast::tcp_stream stream;
  std::string client;
  bool idle = true;  // waiting for (or reading) a request header: stop() closes it; touched on its strand only
  // Read deadlines. tcp_stream's own timeout closes the socket, which leaves no way to answer 408; this
  // timer cancels the read instead. gen tells a stale expiry (of a read that finished) from the current one.
  net::steady_timer timer;
  uint64_t gen = 0;
  bool timed_out = false;

  void arm(double secs) {
    const uint64_t g = ++gen;
    timed_out = false;
    stream.expires_never();
    timer.expires_after(seconds(secs));
    timer.async_wait([self = shared_from_this(), g](const beast::error_code& ec) {
      if (ec || self->gen != g) return;
      self->timed_out = true;
      beast::error_code ignored;
      self->stream.socket().cancel(ignored);
    });
  }
  void disarm() {
    ++gen;
    timer.cancel();
  }
};

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  HttpServerOptions o;
  Handler handler;
  ErrorBody error_body;
  OnError on_error;
  net::io_context ioc;
  net::thread_pool pool;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  mutable std::mutex m;  // guards the counts below
  std::map<std::string, size_t> per_client;
  std::set<std::shared_ptr<Conn>> conns;
  size_t body_bytes = 0;  // request bodies reserved by requests being read or handled

  Impl(HttpServerOptions opt, Handler h, ErrorBody eb, OnError oe)
      : o(std::move(opt)), handler(std::move(h)), error_body(std::move(eb)), on_error(std::move(oe)),
        pool(std::max<size_t>(1, o.handler_threads)), acceptor(net::make_strand(ioc)) {
    // a connection is a file descriptor: raise the soft limit to the hard one and stay under it
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        want.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1 << 20);
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
      }
      const size_t room = rl.rlim_cur > 128 ? static_cast<size_t>(rl.rlim_cur) - 128 : 16;
      o.max_connections = std::min(o.max_connections, room);
    }
    o.max_connections_per_client = std::max<size_t>(1, std::min(o.max_connections_per_client, o.max_connections));
  }

  // The blocking work, as coroutines co_spawn'ed onto the handler pool. Plain functions whose parameters
  // the coroutine frame copies, not lambdas: GCC 12 can destroy a lambda temporary that a co_await
  // expression still uses (its captures then dangle).
  static net::awaitable<HttpResponse> call(const Handler& h, const HttpRequest& req) { co_return h(req); }
  static net::awaitable<std::optional<std::string>> pull(std::shared_ptr<ChunkSource> s) { co_return s->next(); }

  void count_error(int status) {
    if (on_error) on_error(status);
  }

  std::string error_text(int status, const std::string& message) { return error_body ? error_body(status, message) : message; }

  // A whole answer with Content-Length; HEAD gets the header only.
  net::awaitable<bool> write_whole(Conn& c, int status, const std::string& type, std::string body,
                                   const std::vector<std::pair<std::string, std::string>>& headers, unsigned version, bool keep, bool head) {
    beast::error_code ec;
    c.stream.expires_after(seconds(o.write_timeout_s));
    if (head) {
      http::response<http::empty_body> r{static_cast<http::status>(status), version};
      set_fields(r, type, headers);
      r.content_length(body.size());
      r.keep_alive(keep);
      co_await http::async_write(c.stream, r, net::redirect_error(use_awaitable, ec));
    } else {
      http::response<http::string_body> r{static_cast<http::status>(status), version, std::move(body)};
      set_fields(r, type, headers);
      r.keep_alive(keep);
      r.prepare_payload();
      co_await http::async_write(c.stream, r, net::redirect_error(use_awaitable, ec));
    }
    co_return !ec;
  }

  // An answer the layer gives itself (bad HTTP, limits), then the connection closes.
  net::awaitable<void> refuse(Conn& c, int status, const std::string& message, unsigned version = 11) {
    count_error(status);
    std::vector<std::pair<std::string, std::string>> h;
    if (status == 503) h.emplace_back("Retry-After", "1");
    co_await write_whole(c, status, "application/json", error_text(status, message), h, version, false, false);
  }

  // Closes the connection. linger (after refusing a request whose body was not read): as nginx's lingering
  // close, stop sending, then read and drop what the client still sends for a moment, so that the answer
  // is not lost to the reset that closing over unread bytes causes.
  net::awaitable<void> close(Conn& c, bool linger) {
    beast::error_code ec;
    c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (linger && !stopping) {
      c.stream.expires_after(std::chrono::seconds(1));
      char sink[4096];
      size_t drained = 0;
      while (!ec && drained < (1u << 20)) drained += co_await c.stream.async_read_some(net::buffer(sink), net::redirect_error(use_awaitable, ec));
    }
    c.stream.close();
  }

  // One streamed answer (chunked transfer coding); false when the client went away.
  net::awaitable<bool> write_stream(Conn& c, HttpResponse& res, unsigned version) {
    http::response<http::empty_body> r{static_cast<http::status>(res.status), version};
    set_fields(r, res.content_type, res.headers);
    r.chunked(true);
    r.keep_alive(false);  // one stream per connection: the client reads to the end
    http::response_serializer<http::empty_body> sr{r};
    beast::error_code ec;
    c.stream.expires_after(seconds(o.write_timeout_s));
    co_await http::async_write_header(c.stream, sr, net::redirect_error(use_awaitable, ec));
    auto source = res.stream;
    while (!ec) {
      std::optional<std::string> piece = co_await net::co_spawn(pool, pull(source), use_awaitable);
      if (!piece) break;
      if (piece->empty()) continue;
      c.stream.expires_after(seconds(o.write_timeout_s));
      co_await net::async_write(c.stream, http::make_chunk(net::buffer(*piece)), net::redirect_error(use_awaitable, ec));
    }
    if (!ec) {
      c.stream.expires_after(seconds(o.write_timeout_s));
      co_await net::async_write(c.stream, http::make_chunk_last(), net::redirect_error(use_awaitable, ec));
    }
    if (ec) source->cancel();
    co_return !ec;
  }

  net::awaitable<void> session(std::shared_ptr<Conn> cp) {
    Conn& c = *cp;
    beast::flat_buffer buf(o.max_header_bytes + (64u << 10));
    bool first = true, refused = false;
    for (;;) {
      beast::error_code ec;
      // wait for a request to start: the first gets the header's time, a kept-alive connection the idle time
      c.idle = true;
      if (stopping) break;
      if (buf.size() == 0) {
        c.arm(first ? o.header_timeout_s : o.idle_timeout_s);
        const size_t n = co_await c.stream.async_read_some(buf.prepare(8192), net::redirect_error(use_awaitable, ec));
        c.disarm();
        buf.commit(n);
        if (ec) break;  // closed, idle, or the server stops: nothing was asked
      }
      first = false;
      http::request_parser<http::string_body> p;
      p.header_limit(static_cast<std::uint32_t>(std::min<size_t>(o.max_header_bytes, UINT32_MAX)));
      p.body_limit(o.max_body);
      c.arm(o.header_timeout_s);
      co_await http::async_read_header(c.stream, buf, p, net::redirect_error(use_awaitable, ec));
      c.disarm();
      if (ec && c.timed_out) ec = beast::error::timeout;
      if (ec && stopping && ec == net::error::operation_aborted) break;  // stop() closed a connection mid-header
      if (ec) {
        const auto [status, message] = status_for(ec);
        if (status) co_await refuse(c, status, message);
        refused = status != 0;
        break;
      }
      c.idle = false;
      const auto& h = p.get();
      // transfer codings: only chunked alone (RFC 9112 6.1: another coding in a request is not understood)
      if (h.count(http::field::transfer_encoding) && !iequals(trim(std::string_view(h[http::field::transfer_encoding].data(), h[http::field::transfer_encoding].size())), "chunked")) {
        co_await refuse(c, 400, "Transfer-Encoding other than chunked is not supported", h.version());
        refused = true;
        break;
      }
      // the body this request may hold in memory, reserved before it is read
      size_t reserve = 0;
      if (p.content_length()) reserve = static_cast<size_t>(*p.content_length());
      else if (p.chunked()) reserve = o.max_body;
      {
        std::lock_guard<std::mutex> lk(m);
        if (body_bytes + reserve > o.max_body_in_flight) reserve = SIZE_MAX;
        else body_bytes += reserve;
      }
      if (reserve == SIZE_MAX) {
        co_await refuse(c, 503, "the server holds too many request bodies at once; retry later", h.version());
        refused = true;
        break;
      }
      struct Release {
        Impl* self;
        size_t n;
        ~Release() {
          std::lock_guard<std::mutex> lk(self->m);
          self->body_bytes -= n;
        }
      } release{this, reserve};
      if (iequals(std::string_view(h[http::field::expect].data(), h[http::field::expect].size()), "100-continue") && reserve > 0) {
        static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
        c.stream.expires_after(seconds(o.write_timeout_s));
        co_await net::async_write(c.stream, net::buffer(cont), net::redirect_error(use_awaitable, ec));
        if (ec) break;
      }
      c.arm(o.body_timeout_s);
      co_await http::async_read(c.stream, buf, p, net::redirect_error(use_awaitable, ec));
      c.disarm();
      if (ec && c.timed_out) ec = beast::error::timeout;
      if (ec) {
        const auto [status, message] = status_for(ec);
        if (status) co_await refuse(c, status, message, h.version());
        refused = status != 0;
        break;
      }
      c.stream.expires_never();  // the handler may take as long as its model needs
      http::request<http::string_body> msg = p.release();
      HttpRequest req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      req.path = req.target.substr(0, req.target.find('?'));
      req.body = std::move(msg.body());
      req.client = c.client;
      for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      const bool head = msg.method() == http::verb::head;
      const bool keep = msg.keep_alive();
      const unsigned version = msg.version();
      HttpResponse res;
      try {
        res = co_await net::co_spawn(pool, call(handler, req), use_awaitable);
      } catch (const std::exception&) {  // the handler answers its own errors; this is a last resort
        res = HttpResponse{500, "application/json", error_text(500, "internal error"), {}, nullptr};
      }
      const bool keep_after = keep && !stopping && !res.stream;
      bool ok;
      if (res.stream) ok = co_await write_stream(c, res, version);
      else ok = co_await write_whole(c, res.status, res.content_type, std::move(res.body), res.headers, version, keep_after, head);
      if (!ok) {
        c.stream.close();
        co_return;
      }
      if (!keep_after) break;
    }
    if (c.stream.socket().is_open()) co_await close(c, refused);
  }

  // 503 to a connection over the limits, then close (a short-lived coroutine of its own).
  net::awaitable<void> turn_away(std::shared_ptr<Conn> c, std::string why) {
    co_await refuse(*c, 503, why);
    co_await close(*c, true);
  }

  net::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    net::steady_timer backoff(acceptor.get_executor());
    for (;;) {
      beast::error_code ec;
      tcp::socket s(net::make_strand(ioc));  // each connection on a strand of its own
      co_await acceptor.async_accept(s, net::redirect_error(use_awaitable, ec));
      if (stopping) co_return;
      if (ec) {
        if (ec == net::error::operation_aborted || ec == net::error::bad_descriptor) co_return;
        // out of file descriptors (EMFILE) or a reset before accept: wait a moment instead of spinning
        backoff.expires_after(std::chrono::milliseconds(20));
        co_await backoff.async_wait(net::redirect_error(use_awaitable, ec));
        continue;
      }
      s.set_option(tcp::no_delay(true), ec);
      std::string client = "?";
      {
        const auto ep = s.remote_endpoint(ec);
        if (!ec) client = ep.address().to_string();
      }
      auto c = std::make_shared<Conn>(std::move(s), client);
      std::string refused;
      {
        std::lock_guard<std::mutex> lk(m);
        if (conns.size() >= o.max_connections) refused = "the server has too many connections open; retry later";
        else if (per_client[client] >= o.max_connections_per_client)
          refused = "too many connections from " + client + " (at most " + std::to_string(o.max_connections_per_client) + ")";
        else {
          ++per_client[client];
          conns.insert(c);
        }
      }
      if (!refused.empty()) {
        net::co_spawn(c->stream.get_executor(), turn_away(c, refused), net::detached);
        continue;
      }
      net::co_spawn(c->stream.get_executor(), session(c), [self, c](std::exception_ptr) {
        std::lock_guard<std::mutex> lk(self->m);
        self->conns.erase(c);
        if (--self->per_client[c->client] == 0) self->per_client.erase(c->client);
      });
    }
  }
};

HttpServer::HttpServer(HttpServerOptions o, Handler handler, ErrorBody error_body, OnError on_error)
    : impl_(std::make_shared<Impl>(std::move(o), std::move(handler), std::move(error_body), std::move(on_error))) {}

HttpServer::~HttpServer() {
  stop();
  impl_->pool.join();
}

int HttpServer::bind() {
  Impl& I = *impl_;
  const std::string where = I.o.host + ":" + std::to_string(I.o.port);
  beast::error_code ec;
  tcp::resolver resolver(I.ioc);
  auto found = resolver.resolve(I.o.host, std::to_string(I.o.port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) throw Error(where, "host", "cannot resolve: " + ec.message());
  const tcp::endpoint ep = *found.begin();
  I.acceptor.open(ep.protocol(), ec);
  if (!ec) I.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) I.acceptor.bind(ep, ec);
  if (!ec) I.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw Error(where, "port", "cannot listen there (" + ec.message() + ": in use, or not an address of this machine)");
  return I.acceptor.local_endpoint().port();
}

void HttpServer::run() {
  auto I = impl_;
  if (!I->acceptor.is_open()) throw Error(I->o.host + ":" + std::to_string(I->o.port), "port", "run() before bind()");
  net::co_spawn(I->acceptor.get_executor(), I->accept_loop(), net::detached);
  std::vector<std::thread> extra;
  for (size_t i = 1; i < std::max<size_t>(1, I->o.io_threads); ++i) extra.emplace_back([I] { I->ioc.run(); });
  I->ioc.run();  // returns once the acceptor is closed and every connection has ended
  for (auto& t : extra) t.join();
}

void HttpServer::stop() {
  auto I = impl_;
  if (I->stopping.exchange(true)) return;
  net::post(I->acceptor.get_executor(), [I] {
    beast::error_code ec;
    I->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<Conn>> all;
  {
    std::lock_guard<std::mutex> lk(I->m);
    all.assign(I->conns.begin(), I->conns.end());
  }
  for (auto& c : all)  // connections between requests close now; those with a request in flight answer it first
    net::post(c->stream.get_executor(), [c] {
      if (c->idle) c->stream.cancel();
    });
}

size_t HttpServer::connections() const {
  std::lock_guard<std::mutex> lk(impl_->m);
  return impl_->conns.size();
}

}  // namespace kotsu
