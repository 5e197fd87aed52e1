// A fixed pool of worker threads with a bounded queue: Submit blocks when `queue_limit` jobs
// are waiting, which is how the backup pipeline bounds its memory (backpressure).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace reprise {

class ThreadPool {
 public:
  ThreadPool(size_t threads, size_t queue_limit);
  ~ThreadPool();  // finishes queued jobs, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> job);
  size_t size() const { return workers_.size(); }

 private:
  void Run();
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::function<void()>> queue_;
  size_t limit_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Threads to use by default: the machine's cores (at least 1).
size_t DefaultThreads();
// Threads for restores, whose jobs mostly wait on reads (a remote repository's requests): at
// least 8 whatever the core count, so that enough requests are in flight.
size_t ReadThreads();

}  // namespace reprise
