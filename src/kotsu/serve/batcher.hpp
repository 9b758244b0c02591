// kotsu/serve/batcher: dynamic batching for the inference server. Callers (HTTP threads) submit items;
// one worker thread takes up to max_batch of them, waiting at most max_wait after the first arrives for
// more to join, runs the batch function once and hands each caller its own result. The queue is bounded:
// submit() refuses (returns no futures) when it would hold more than max_queue items, so an overloaded
// server answers 503 at once instead of growing a backlog without end.
// requires: run(batch) returns one result per item, or throws (every caller of the batch then gets the
//           exception). ensures: items are answered in submission order within a batch; stop() answers
//           every queued item (drain) before the worker exits.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace kotsu {

struct BatcherOptions {
  size_t max_batch = 32;
  std::chrono::microseconds max_wait{2000};
  size_t max_queue = 1024;  // items waiting (not yet in a running batch)
};

template <class In, class Out>
class DynamicBatcher {
 public:
  using RunFn = std::function<std::vector<Out>(std::vector<In>&)>;
  // on_batch(size) is called before each run (for the batch-size histogram); may be empty.
  DynamicBatcher(BatcherOptions o, RunFn run, std::function<void(size_t)> on_batch = {})
      : o_(o), run_(std::move(run)), on_batch_(std::move(on_batch)) {
    if (o_.max_batch == 0) o_.max_batch = 1;
    worker_ = std::thread([this] { loop(); });
  }
  ~DynamicBatcher() { stop(); }
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // One future per item, or nothing when the queue is full or the batcher is stopping (all or none).
  std::optional<std::vector<std::future<Out>>> submit(std::vector<In> items) {
    std::vector<std::future<Out>> out;
    out.reserve(items.size());
    {
      std::lock_guard<std::mutex> lk(m_);
      if (stopping_ || queue_.size() + items.size() > o_.max_queue) return std::nullopt;
      for (auto& x : items) {
        queue_.push_back(Pending{std::move(x), {}});
        out.push_back(queue_.back().promise.get_future());
      }
    }
    cv_.notify_one();
    return out;
  }

  size_t queue_depth() const {
    std::lock_guard<std::mutex> lk(m_);
    return queue_.size();
  }

  // From now on batches run as soon as items are queued, without waiting for max_wait (shutting down:
  // the requests in flight should not wait out their batch window). submit() still accepts.
  void flush_now() {
    {
      std::lock_guard<std::mutex> lk(m_);
      draining_ = true;
    }
    cv_.notify_all();
  }

  // Answers what is queued, then ends the worker. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

 private:
  struct Pending {
    In in;
    std::promise<Out> promise;
  };

  void loop() {
    for (;;) {
      std::vector<Pending> batch;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        // the first item is here: give others up to max_wait to join, unless the batch is already full
        const auto deadline = std::chrono::steady_clock::now() + o_.max_wait;
        cv_.wait_until(lk, deadline, [&] { return stopping_ || draining_ || queue_.size() >= o_.max_batch; });
        const size_t n = std::min(queue_.size(), o_.max_batch);
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (on_batch_) on_batch_(batch.size());
      std::vector<In> ins;
      ins.reserve(batch.size());
      for (auto& p : batch) ins.push_back(std::move(p.in));
      try {
        std::vector<Out> outs = run_(ins);
        if (outs.size() != batch.size()) throw std::logic_error("batch function returned a wrong number of results");
        for (size_t i = 0; i < batch.size(); ++i) batch[i].promise.set_value(std::move(outs[i]));
      } catch (...) {
        for (auto& p : batch) p.promise.set_exception(std::current_exception());
      }
    }
  }

  BatcherOptions o_;
  RunFn run_;
  std::function<void(size_t)> on_batch_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false, draining_ = false;
  std::thread worker_;
};

}  // namespace kotsu
