#include "kotsu/tune/study.hpp"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {

// Beats every `period` seconds for trial `number` until stopped.
class HeartbeatThread {
 public:
  HeartbeatThread(Storage& s, int64_t number, double period) : th_([this, &s, number, period] {
    std::unique_lock<std::mutex> lock(m_);
    while (!cv_.wait_for(lock, std::chrono::duration<double>(period), [this] { return stop_; })) {
      lock.unlock();
      try {
        s.heartbeat(number);
      } catch (const std::exception&) {  // a busy database: the next beat tries again
      }
      lock.lock();
    }
  }) {}
  ~HeartbeatThread() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread th_;
};

}  // namespace

Study::Study(SearchSpace space, StudyOptions o) : space_(std::move(space)), o_(std::move(o)) {
  if (o_.trials < 1) throw Error("options", "trials", "must be >= 1");
  if (o_.max_reports < 0) throw Error("options", "budget", "must be >= 0 (0: no compute budget)");
  storage_ = open_storage(o_.storage, o_.name);
  sampler_ = make_sampler(o_.sampler, o_.seed, o_.tpe, o_.grid_points);
  pruner_ = make_pruner(o_.pruner, o_.pruning);
  StudyConfig c;
  c.name = o_.name;
  c.direction = o_.direction;
  c.space = space_.to_json();
  c.settings = {{"sampler", o_.sampler}, {"seed", o_.seed}, {"objective", o_.objective}};
  storage_->open(c);
}

int64_t Study::optimize(const Objective& objective, const std::string& worker, const std::function<void(const Trial&)>& on_done) {
  int64_t ran = 0;
  for (;;) {
    Storage::Claim claim = storage_->claim(worker, {o_.trials, o_.max_reports}, o_.stale_seconds, [&](const std::vector<Trial>& history, int64_t number) {
      return sampler_->sample(space_, history, o_.direction, number);
    });
    if (claim.status == Storage::Claim::Done) return ran;
    if (claim.status == Storage::Claim::Wait) {  // others still run the last trials: one may die and be queued again
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min({1.0, o_.heartbeat_seconds, o_.stale_seconds / 4})));
      continue;
    }
    std::optional<Trial> t = std::move(claim.trial);
    space_.check(t->params, "trial " + std::to_string(t->number));
    const auto start = std::chrono::steady_clock::now();
    TrialState state = TrialState::Complete;
    double value = std::nan("");
    {
      HeartbeatThread beat(*storage_, t->number, o_.heartbeat_seconds);
      Report report = [&](int64_t step, double v) {
        storage_->report(t->number, step, v);
        t->intermediate[step] = v;
        return pruner_->prune(*t, storage_->trials(), o_.direction);
      };
      try {
        value = objective(*t, report);
        if (std::isnan(value)) state = TrialState::Failed;
      } catch (const TrialPruned&) {
        state = TrialState::Pruned;
        if (!t->intermediate.empty()) value = t->intermediate.rbegin()->second;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    storage_->finish(t->number, state, value, secs);
    t->state = state;
    t->value = value;
    t->seconds = secs;
    ++ran;
    if (on_done) on_done(*t);
  }
}

std::vector<Trial> Study::trials() { return storage_->trials(); }

std::optional<Trial> Study::best() {
  std::optional<Trial> b;
  for (auto& t : storage_->trials()) {
    if (t.state != TrialState::Complete || std::isnan(t.value)) continue;
    if (!b || (o_.direction == Direction::Minimize ? t.value < b->value : t.value > b->value)) b = t;
  }
  return b;
}

std::string worker_name() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return fmt::format("{}:{}", host, getpid());
}

int run_worker_processes(int jobs, const std::function<void()>& work) {
  if (jobs < 1) throw Error("options", "jobs", "must be >= 1");
  std::vector<pid_t> children;
  for (int j = 1; j < jobs; ++j) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) throw Error("options", "jobs", "cannot start a worker process");
    if (pid == 0) {
      int code = 0;
      try {
        work();
      } catch (const std::exception& e) {
        fmt::print(stderr, "kotsu: worker {}: {}\n", getpid(), e.what());
        code = 1;
      }
      std::fflush(stdout);
      _exit(code);
    }
    children.push_back(pid);
  }
  work();
  int failed = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  return failed;
}

SearchSpace test_function_space(const std::string& name) {
  if (name == "branin") return SearchSpace::from_specs({"x1=float(-5,10)", "x2=float(0,15)"});
  if (name == "hartmann6") {
    std::vector<std::string> s;
    for (int i = 1; i <= 6; ++i) s.push_back(std::string("x").append(std::to_string(i)).append("=float(0,1)"));  // (no + on a temporary: a GCC 12 false warning)
    return SearchSpace::from_specs(s);
  }
  if (name == "mixed")
    return SearchSpace::from_specs({"kind=cat(a,b,c)", "w=float(0,1)", "x=float(-5,5)|kind=a", "y=int(0,20)|kind=b", "z=log(0.001,10)|kind=b",
                                    "u=float(0,1)|kind=c"});
  throw Error("options", "function", "must be branin, hartmann6 or mixed, got '" + name + "'");
}

double test_function(const std::string& name, const nlohmann::json& p) {
  if (name == "branin") {
    const double x1 = p["x1"], x2 = p["x2"], pi = 3.141592653589793;
    const double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
    return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;
  }
  if (name == "hartmann6") {
    static const double a[4] = {1.0, 1.2, 3.0, 3.2};
    static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
    static const double P[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                   {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                   {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                   {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
    double f = 0;
    for (int i = 0; i < 4; ++i) {
      double s = 0;
      for (int j = 0; j < 6; ++j) {
        const double x = p[std::string("x").append(std::to_string(j + 1))];
        s += A[i][j] * (x - P[i][j]) * (x - P[i][j]);
      }
      f -= a[i] * std::exp(-s);
    }
    return f;
  }
  if (name == "mixed") {
    const std::string kind = p["kind"];
    const double w = p["w"];
    double f = (w - 0.3) * (w - 0.3);
    if (kind == "a") f += std::pow(p["x"].get<double>() - 1, 2);
    if (kind == "b") f += std::pow(p["y"].get<double>() - 7, 2) / 10 + std::pow(std::log10(p["z"].get<double>()) + 1, 2) + 0.5;
    if (kind == "c") f += 2 + p["u"].get<double>();
    return f;
  }
  throw Error("options", "function", "must be branin, hartmann6 or mixed, got '" + name + "'");
}

}  // namespace kotsu
