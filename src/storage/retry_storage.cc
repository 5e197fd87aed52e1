#include "storage/retry_storage.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>

namespace reprise {
namespace {

// A per-RetryStorage generator (not process-global), shared by its threads under a lock.
std::function<double()> DefaultRandom() {
  struct State {
    std::mutex mu;
    std::mt19937_64 rng{std::random_device{}()};
  };
  auto state = std::make_shared<State>();
  return [state] {
    std::lock_guard<std::mutex> lock(state->mu);
    return std::uniform_real_distribution<double>(0.0, 1.0)(state->rng);
  };
}

Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}

}  // namespace

RetryStorage::RetryStorage(std::unique_ptr<Storage> inner, RetryPolicy policy)
    : inner_(std::move(inner)), policy_(std::move(policy)) {
  if (policy_.max_attempts < 1) policy_.max_attempts = 1;
  policy_.jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  if (!policy_.sleep)
    policy_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!policy_.random) policy_.random = DefaultRandom();
}

std::chrono::milliseconds RetryStorage::NominalDelay(int attempt) const {
  auto delay = policy_.base_delay;
  for (int i = 1; i < attempt && delay < policy_.max_delay; ++i) delay *= 2;
  return std::min(delay, policy_.max_delay);
}

template <typename F>
auto RetryStorage::Run(F&& f) -> decltype(f()) {
  for (int attempt = 1;; ++attempt) {
    auto result = f();
    Status st = StatusOf(result);
    if (st.ok() || !st.retryable()) return result;
    if (attempt >= policy_.max_attempts) {
      if (attempt == 1) return result;
      return st.WithContext("after " + std::to_string(attempt) + " attempts");
    }
    auto nominal = NominalDelay(attempt);
    double cut = policy_.jitter * policy_.random();
    policy_.sleep(std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(nominal.count()) * (1.0 - cut))));
  }
}

std::string RetryStorage::Location() const { return inner_->Location(); }

Result<Bytes> RetryStorage::Get(const std::string& key) {
  return Run([&] { return inner_->Get(key); });
}

Result<Bytes> RetryStorage::GetRange(const std::string& key, uint64_t offset, uint64_t length) {
  return Run([&] { return inner_->GetRange(key, offset, length); });
}

Status RetryStorage::Put(const std::string& key, ByteView data) {
  return Run([&] { return inner_->Put(key, data); });
}

Status RetryStorage::Delete(const std::string& key) {
  return Run([&] { return inner_->Delete(key); });
}

Result<ObjectInfo> RetryStorage::Stat(const std::string& key) {
  return Run([&] { return inner_->Stat(key); });
}

Result<std::vector<ObjectInfo>> RetryStorage::List(const std::string& prefix) {
  return Run([&] { return inner_->List(prefix); });
}

}  // namespace reprise
