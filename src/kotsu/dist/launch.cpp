#include "kotsu/dist/launch.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

// This process's command line, as started.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string a;
  while (std::getline(in, a, '\0')) args.push_back(a);
  if (args.empty()) throw Error("/proc/self/cmdline", "", "cannot read this program's command line");
  return args;
}

int free_local_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) throw Error("distributed", "MASTER_PORT", std::string("no socket for a free port: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || getsockname(s, reinterpret_cast<sockaddr*>(&a), &n) != 0) {
    close(s);
    throw Error("distributed", "MASTER_PORT", std::string("cannot find a free local port: ") + std::strerror(errno));
  }
  close(s);
  return ntohs(a.sin_port);
}

std::pair<std::string, int> split_master(const std::string& m) {
  const auto colon = m.rfind(':');
  if (colon == std::string::npos || colon == 0) throw Error("options", "--master", "'" + m + "' is not ADDR:PORT");
  char* end = nullptr;
  const long port = std::strtol(m.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) throw Error("options", "--master", "'" + m + "' has no port in [1, 65535]");
  return {m.substr(0, colon), static_cast<int>(port)};
}

std::string describe_status(int st) {
  if (WIFSIGNALED(st)) return fmt::format("was killed by signal {} ({})", WTERMSIG(st), strsignal(WTERMSIG(st)));
  return fmt::format("exited with status {}", WEXITSTATUS(st));
}

}  // namespace

bool is_dist_worker() {
  if (const char* w = std::getenv("KOTSU_WORKER"); w && *w) return true;
  const char* ws = std::getenv("WORLD_SIZE");
  return ws && std::atoi(ws) > 1;
}

void check_plan(const LaunchPlan& p) {
  if (p.nproc < 1 || p.nproc > 1024) throw Error("options", "--nproc", "must be in [1, 1024]");
  if (p.nnodes < 1 || p.nnodes > 4096) throw Error("options", "--nnodes", "must be in [1, 4096]");
  if (p.node_rank < 0 || p.node_rank >= p.nnodes)
    throw Error("options", "--node-rank", fmt::format("{} is outside [0, {}) (--nnodes {})", p.node_rank, p.nnodes, p.nnodes));
  if (p.nnodes > 1 && p.master.empty()) throw Error("options", "--master", "several machines (--nnodes > 1) need --master ADDR:PORT of node 0");
  if (!p.master.empty()) split_master(p.master);
  if (p.timeout_seconds < 1 || p.timeout_seconds > 86400) throw Error("options", "--dist-timeout", "must be in [1, 86400] seconds");
  if (p.bucket_mb < 1 || p.bucket_mb > 1024) throw Error("options", "--bucket-mb", "must be in [1, 1024]");
}

int launch_workers(const LaunchPlan& plan) {
  check_plan(plan);
  std::string addr = "127.0.0.1";
  int port = 0;
  if (plan.master.empty()) port = free_local_port();
  else std::tie(addr, port) = split_master(plan.master);
  const std::vector<std::string> args = own_arguments();
  const int world = plan.nproc * plan.nnodes;

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int{}, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  const pid_t launcher = getpid();
  std::map<pid_t, int> alive;  // pid -> rank
  std::string pids;
  for (int local = 0; local < plan.nproc; ++local) {
    const int rank = plan.node_rank * plan.nproc + local;
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) {
      for (auto& [p, r] : alive) kill(p, SIGKILL);
      throw Error("distributed", "--nproc", std::string("cannot start a worker: ") + std::strerror(errno));
    }
    if (pid == 0) {
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // a launcher killed outright takes its workers with it
      if (getppid() != launcher) _exit(1);  // it died before the line above ran
      setenv("MASTER_ADDR", addr.c_str(), 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(plan.nproc).c_str(), 1);
      setenv("KOTSU_WORKER", "1", 1);
      setenv("KOTSU_DIST_TIMEOUT", std::to_string(plan.timeout_seconds).c_str(), 1);
      setenv("KOTSU_BUCKET_MB", std::to_string(plan.bucket_mb).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "kotsu: error: worker rank %d could not start: %s\n", rank, std::strerror(errno));
      _exit(127);
    }
    alive[pid] = rank;
    if (!pids.empty()) pids += ' ';
    pids += std::to_string(pid);
  }
  std::fprintf(stderr, "kotsu: data-parallel: %d workers here (ranks %d-%d of %d, pids %s), rendezvous at %s:%d\n", plan.nproc,
               plan.node_rank * plan.nproc, plan.node_rank * plan.nproc + plan.nproc - 1, world, pids.c_str(), addr.c_str(), port);

  int first_failure = -1;
  std::chrono::steady_clock::time_point deadline{};
  bool killed = false;
  int forwarded = 0;
  while (!alive.empty()) {
    if (g_signal && g_signal != forwarded) {
      forwarded = g_signal;
      for (auto& [p, r] : alive) kill(p, forwarded);
      if (first_failure < 0) {
        first_failure = -2;
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(plan.timeout_seconds);
      }
    }
    int st = 0;
    const pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      const auto it = alive.find(pid);
      if (it == alive.end()) continue;
      const int rank = it->second;
      alive.erase(it);
      const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ok && first_failure == -1) {
        first_failure = rank;
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(plan.timeout_seconds);
        std::fprintf(stderr, "kotsu: error: worker rank %d (pid %d) %s; %zu other worker(s) here stop on their own or are stopped within %d s\n", rank,
                     static_cast<int>(pid), describe_status(st).c_str(), alive.size(), plan.timeout_seconds);
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;  // no children left
    if (first_failure != -1 && !killed && std::chrono::steady_clock::now() > deadline) {
      for (auto& [p, r] : alive) {
        std::fprintf(stderr, "kotsu: error: worker rank %d (pid %d) did not stop within %d s; killed\n", r, static_cast<int>(p), plan.timeout_seconds);
        kill(p, SIGKILL);
      }
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (first_failure == -2) return 128 + forwarded;
  return first_failure == -1 ? 0 : 1;
}

}  // namespace kotsu
