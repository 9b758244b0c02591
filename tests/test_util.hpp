// Helpers shared by the tests: where the shared assets and fixtures are, temp dirs, skipping.
#pragma once
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <random>
#include <string>
#include <vector>

namespace kotsu::test {

inline std::string shared_dir() {
  return (std::filesystem::path(KOTSU_SOURCE_DIR) / ".." / "shared").lexically_normal().string();
}
inline std::string fixture_dir() { return KOTSU_FIXTURE_DIR; }

// How far float32 rounding may move a value computed by `depth` chained sums of `terms` products each, when
// the products' magnitudes add up to at most `magnitude` in each sum: the classical bound for a sum in any
// order (Higham, Accuracy and Stability of Numerical Algorithms, 2002, eq. 3.5: n * eps * sum |x_i y_i|),
// added over the chain. BLAS kernels (which OPENBLAS_CORETYPE selects) block and vectorise sums
// differently, so two machines, or kotsu and a reference, can differ by up to twice this; a tolerance
// taken from it holds on every kernel, while a bug (a missing scale, a wrong layer) moves values by far more.
inline double float32_bound(double magnitude, double terms, double depth = 1) {
  return depth * terms * 1.1920928955078125e-07 * magnitude;
}

// The same rounding under the statistical model (Higham 2002, section 2.8: rounding errors behave as
// independent, so a sum of n terms is off by about sqrt(n) * eps * magnitude and `depth` chained sums add in
// quadrature), at 4 standard deviations. For deep networks (ResNet-50: 50 sums of up to 4,608 products),
// where the worst case above grows past any useful tolerance while real errors stay near this.
inline double float32_expected(double magnitude, double terms, double depth = 1) {
  return 4.0 * std::sqrt(terms * depth) * 1.1920928955078125e-07 * magnitude;
}
inline std::string fixture(const std::string& name) { return fixture_dir() + "/" + name; }

// A fresh directory under the system temp dir, removed when the test process exits.
inline std::string temp_dir(const std::string& tag) {
  struct Cleanup {
    std::vector<std::filesystem::path> dirs;
    ~Cleanup() {
      std::error_code ec;
      for (auto& d : dirs) std::filesystem::remove_all(d, ec);
    }
  };
  static Cleanup cleanup;
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() / ("kotsu-test-" + tag + "-" + std::to_string(rd()));
  std::filesystem::create_directories(p);
  cleanup.dirs.push_back(p);
  return p.string();
}

// This process's resident memory now and its peak since the last reset_peak_resident() (or its start),
// in bytes, from /proc/self/status (VmRSS, VmHWM). reset_peak_resident writes 5 to /proc/self/clear_refs
// (Linux >= 4.0): the peak restarts from the current resident size; false when the kernel refuses.
inline int64_t proc_status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}
inline int64_t resident_bytes() { return proc_status_kb("VmRSS") * 1024; }
inline int64_t peak_resident_bytes() { return proc_status_kb("VmHWM") * 1024; }
inline bool reset_peak_resident() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f) && peak_resident_bytes() <= resident_bytes() + (1 << 20);
}

// Runs a shell command with stderr joined to stdout; its output, and its exit status in *status.
inline std::string run_command(const std::string& cmd, int* status) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  if (status) *status = rc;
  return out;
}

// An HTML file as headless Chromium (Debian chromium) renders it: the DOM after scripts ran, the console
// messages the page logged (Chromium's "CONSOLE" log lines: errors, uncaught exceptions, console.*), and a
// screenshot written to png. available is false when no chromium is installed.
struct BrowserPage {
  bool available = false;
  std::string dom, console;
};
inline BrowserPage open_in_chromium(const std::string& html, const std::string& png, int width = 1200, int height = 3000) {
  BrowserPage page;
  if (run_command("command -v chromium", nullptr).find("chromium") == std::string::npos) return page;
  page.available = true;
  const std::string profile = temp_dir("chromium");
  const std::string flags = " --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --user-data-dir=" + profile +
                            " --enable-logging=stderr --v=0 --window-size=" + std::to_string(width) + "," + std::to_string(height);
  const std::string url = "file://" + std::filesystem::absolute(html).string();
  auto console_lines = [](const std::string& log) {
    std::string out;
    std::istringstream ss(log);
    for (std::string line; std::getline(ss, line);)
      if (line.find(":CONSOLE") != std::string::npos) out += line + "\n";
    return out;
  };
  std::string dump = run_command("timeout 120 chromium" + flags + " --dump-dom " + url, nullptr);
  page.console = console_lines(dump);
  const size_t start = dump.find("<!DOCTYPE html>") != std::string::npos ? dump.find("<!DOCTYPE html>") : dump.find("<html");
  const size_t end = dump.rfind("</html>");
  page.dom = start == std::string::npos || end == std::string::npos || end < start ? "" : dump.substr(start, end + 7 - start);
  page.console += console_lines(run_command("timeout 120 chromium" + flags + " --screenshot=" + png + " " + url, nullptr));
  return page;
}

// Bytes of a GGUF file written field by field (little-endian, as the format has it), for hostile files.
struct GgufBytes {
  std::string b = "GGUF";
  GgufBytes& u32(uint32_t v) { return raw(&v, 4); }
  GgufBytes& u64(uint64_t v) { return raw(&v, 8); }
  GgufBytes& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  GgufBytes& raw(const void* p, size_t n) {
    b.append(static_cast<const char*>(p), n);
    return *this;
  }
};

// A TCP connection to 127.0.0.1:port, or -1.
inline int connect_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// `kotsu serve ARGS... --port 0` in a child process, its output going to a file (a pipe nobody reads
// would fill and stall it): port is the one it printed ("listening on http://127.0.0.1:PORT"), 0 when it
// exited or said nothing within a minute (output then holds what it printed). The destructor stops it with
// SIGTERM; stop() does the same and returns its exit status.
struct ServeProcess {
  pid_t pid = -1;
  int port = 0;
  std::string output;
  explicit ServeProcess(const std::vector<std::string>& args) {
    const std::string log = temp_dir("serve-process") + "/output.txt";
    pid = fork();
    if (pid == 0) {
      FILE* f = std::fopen(log.c_str(), "w");
      if (!f) _exit(126);
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
      std::vector<std::string> all{KOTSU_CLI, "serve"};
      all.insert(all.end(), args.begin(), args.end());
      all.insert(all.end(), {"--port", "0"});
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(KOTSU_CLI, argv.data());
      _exit(127);
    }
    const std::string mark = "listening on http://127.0.0.1:";
    for (int waited_ms = 0; waited_ms < 60000; waited_ms += 20) {
      std::ifstream in(log);
      output.assign(std::istreambuf_iterator<char>(in), {});
      const size_t at = output.find(mark);
      if (at != std::string::npos && output.find('\n', at) != std::string::npos) {
        port = std::stoi(output.substr(at + mark.size()));
        return;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      usleep(20000);
    }
  }
  int stop() {
    if (pid <= 0) return -1;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~ServeProcess() { stop(); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
};

// llama.cpp's tokenizer test vectors: strings separated by "\n__ggml_vocab_test__\n" (.inp), one line of
// ids per string (.out).
inline std::vector<std::string> vocab_test_inputs(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t next = all.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(all.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

inline std::vector<std::vector<int64_t>> vocab_test_outputs(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<int64_t>> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::vector<int64_t> ids;
    int64_t id;
    while (ss >> id) ids.push_back(id);
    out.push_back(ids);
  }
  return out;
}

}  // namespace kotsu::test

// Skips the test (GTEST_SKIP() << why) when something it needs is absent, except where KOTSU_REQUIRE_ASSETS
// is set (.ci/run sets it): there a skipped oracle would pass for a checked one, so the test fails instead.
#define KOTSU_SKIP()                                                                                            \
  return GTEST_MESSAGE_(std::getenv("KOTSU_REQUIRE_ASSETS") ? "KOTSU_REQUIRE_ASSETS is set, so this fails instead of skipping: " : "", \
                        std::getenv("KOTSU_REQUIRE_ASSETS") ? ::testing::TestPartResult::kFatalFailure                \
                                                            : ::testing::TestPartResult::kSkip)

#define KOTSU_REQUIRE_PATH(path)                                                        \
  do {                                                                                  \
    if (!std::filesystem::exists(path)) KOTSU_SKIP() << "asset not found: " << (path); \
  } while (0)
