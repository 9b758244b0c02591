// kotsu/data/prefetcher: makes items 0..n-1 on worker threads, at most `depth` ahead of the consumer, and
// hands them out in order: the training thread takes batch k while the workers augment k+1, k+2, ...
// An item's exception is rethrown when the consumer reaches it. The destructor stops and joins the
// workers (items in flight are finished and dropped). Each worker runs its torch ops single-threaded, so
// the workers do not fight the training thread's intra-op threads.
#pragma once
#include <ATen/Parallel.h>

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace kotsu {

template <class T>
class Prefetcher {
 public:
  Prefetcher(size_t n, size_t workers, size_t depth, std::function<T(size_t)> make)
      : n_(n), depth_(std::max<size_t>(1, depth)), make_(std::move(make)), items_(n), errors_(n) {
    for (size_t w = 0; w < std::max<size_t>(1, workers); ++w) threads_.emplace_back([this] { work(); });
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  size_t position() const { return taken_; }  // the index next() returns next
  bool done() const { return taken_ >= n_; }
  T next() {
    std::unique_lock<std::mutex> lk(mu_);
    const size_t k = taken_;
    cv_.wait(lk, [&] { return items_[k].has_value() || errors_[k]; });
    ++taken_;
    cv_.notify_all();  // a worker may claim one more item
    if (errors_[k]) std::rethrow_exception(errors_[k]);
    T out = std::move(*items_[k]);
    items_[k].reset();
    return out;
  }

 private:
  void work() {
    at::set_num_threads(1);  // this thread's torch ops run single-threaded
    for (;;) {
      size_t k;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || (claimed_ < n_ && claimed_ < taken_ + depth_); });
        if (stop_ || claimed_ >= n_) return;
        k = claimed_++;
      }
      std::optional<T> item;
      std::exception_ptr err;
      try {
        item.emplace(make_(k));
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (err) errors_[k] = err;
        else items_[k] = std::move(item);
      }
      cv_.notify_all();
    }
  }
  const size_t n_, depth_;
  std::function<T(size_t)> make_;
  std::vector<std::optional<T>> items_;
  std::vector<std::exception_ptr> errors_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t claimed_ = 0, taken_ = 0;
  bool stop_ = false;
};

}  // namespace kotsu
