#include "common/thread_pool.h"
#include <algorithm>

namespace reprise {

ThreadPool::ThreadPool(size_t threads, size_t queue_limit) : limit_(queue_limit ? queue_limit : 1) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  not_empty_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> job) {
  std::unique_lock lk(mu_);
  not_full_.wait(lk, [&] { return queue_.size() < limit_; });
  queue_.push_back(std::move(job));
  lk.unlock();
  not_empty_.notify_one();
}

void ThreadPool::Run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      not_empty_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    not_full_.notify_one();
    job();
  }
}

size_t DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

size_t ReadThreads() { return std::max<size_t>(8, DefaultThreads()); }

}  // namespace reprise
