// RetryStorage over a scripted flaky Storage: which errors are retried, how long it waits
// (fake sleeps, recorded, never slept), and that results pass through untouched.
#include "storage/retry_storage.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace reprise {
namespace {

using std::chrono::milliseconds;

// Fails the next calls with the scripted statuses, then answers from a map.
class FlakyStorage final : public Storage {
 public:
  void Script(std::vector<Status> failures) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.assign(failures.begin(), failures.end());
  }
  int calls() const { return calls_; }

  std::string Location() const override { return "flaky://x"; }
  Result<Bytes> Get(const std::string& key) override {
    RETURN_IF_ERROR(Next());
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return NotFound("'" + key + "' does not exist");
    return it->second;
  }
  Result<Bytes> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    ASSIGN_OR_RETURN(Bytes all, Get(key));
    if (offset + length > all.size()) return InvalidArgument("past the end");
    return Bytes(all.begin() + offset, all.begin() + offset + length);
  }
  Status Put(const std::string& key, ByteView data) override {
    RETURN_IF_ERROR(Next());
    std::lock_guard<std::mutex> lock(mu_);
    objects_[key] = Bytes(data.begin(), data.end());
    return Status::Ok();
  }
  Status Delete(const std::string& key) override {
    RETURN_IF_ERROR(Next());
    std::lock_guard<std::mutex> lock(mu_);
    objects_.erase(key);
    return Status::Ok();
  }
  Result<ObjectInfo> Stat(const std::string& key) override {
    ASSIGN_OR_RETURN(Bytes all, Get(key));
    return ObjectInfo{key, all.size()};
  }
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    RETURN_IF_ERROR(Next());
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ObjectInfo> out;
    for (const auto& [k, v] : objects_)
      if (k.starts_with(prefix)) out.push_back({k, v.size()});
    return out;
  }

 private:
  Status Next() {
    ++calls_;
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_.empty()) return Status::Ok();
    Status st = failures_.front();
    failures_.pop_front();
    return st;
  }

  std::mutex mu_;
  std::deque<Status> failures_;
  std::map<std::string, Bytes> objects_;
  std::atomic<int> calls_{0};
};

struct Harness {
  FlakyStorage* flaky;
  std::unique_ptr<RetryStorage> retry;
  std::shared_ptr<std::vector<milliseconds>> sleeps;
};

Harness Make(RetryPolicy policy, double random_value = 0.0) {
  auto flaky = std::make_unique<FlakyStorage>();
  Harness h{flaky.get(), nullptr, std::make_shared<std::vector<milliseconds>>()};
  auto sleeps = h.sleeps;
  auto mu = std::make_shared<std::mutex>();
  policy.sleep = [sleeps, mu](milliseconds d) {
    std::lock_guard<std::mutex> lock(*mu);
    sleeps->push_back(d);
  };
  policy.random = [random_value] { return random_value; };
  h.retry = std::make_unique<RetryStorage>(std::move(flaky), std::move(policy));
  return h;
}

TEST(RetryStorageTest, RetriesUnavailableWithExponentialBackoff) {
  Harness h = Make({.max_attempts = 6,
                    .base_delay = milliseconds(200),
                    .max_delay = milliseconds(10000),
                    .jitter = 0.0});
  ASSERT_TRUE(h.retry->Put("k", ToBytes("v")).ok());
  h.flaky->Script({Unavailable("503 one"), Unavailable("503 two"), Unavailable("503 three")});
  int before = h.flaky->calls();
  auto got = h.retry->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsString(*got), "v");
  EXPECT_EQ(h.flaky->calls() - before, 4);
  EXPECT_EQ(*h.sleeps,
            (std::vector<milliseconds>{milliseconds(200), milliseconds(400), milliseconds(800)}));
}

TEST(RetryStorageTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  Harness h = Make({.max_attempts = 4,
                    .base_delay = milliseconds(100),
                    .max_delay = milliseconds(250),
                    .jitter = 0.0});
  h.flaky->Script({Unavailable("first"), Unavailable("second"), Unavailable("third"),
                   Unavailable("fourth"), Unavailable("fifth")});
  Status st = h.retry->Put("k", ToBytes("v"));
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "after 4 attempts: fourth");
  EXPECT_EQ(h.flaky->calls(), 4);
  // Capped at max_delay; no sleep after the last attempt.
  EXPECT_EQ(*h.sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(250)}));
}

TEST(RetryStorageTest, OtherErrorsAreNotRetried) {
  for (Status st : {NotFound("gone"), PermissionDenied("no"), Corruption("bad bytes"),
                    InvalidArgument("bad key"), Unauthenticated("bad secret"),
                    FailedPrecondition("clock skew")}) {
    Harness h = Make({.jitter = 0.0});
    h.flaky->Script({st, Status::Ok()});
    Status got = h.retry->Delete("k");
    EXPECT_EQ(got.code(), st.code()) << st.ToString();
    EXPECT_EQ(got.message(), st.message());
    EXPECT_EQ(h.flaky->calls(), 1);
    EXPECT_TRUE(h.sleeps->empty());
  }
  // And a NotFound result (not a failure of the call) passes through on the first try.
  Harness h = Make({});
  EXPECT_EQ(h.retry->Get("missing").status().code(), Code::kNotFound);
  EXPECT_EQ(h.flaky->calls(), 1);
}

TEST(RetryStorageTest, JitterShortensDelaysWithinBounds) {
  Harness half = Make({.max_attempts = 3, .base_delay = milliseconds(1000), .jitter = 0.5},
                      /*random_value=*/0.5);
  half.flaky->Script({Unavailable("x"), Unavailable("y")});
  ASSERT_TRUE(half.retry->List("").ok());
  ASSERT_EQ(half.sleeps->size(), 2u);
  // Cut by jitter * random = 25%: 1000 -> 750, 2000 -> 1500.
  EXPECT_EQ((*half.sleeps)[0], milliseconds(750));
  EXPECT_EQ((*half.sleeps)[1], milliseconds(1500));

  // The largest cut stays within jitter: never below half of the nominal delay.
  Harness most = Make({.max_attempts = 2, .base_delay = milliseconds(1000), .jitter = 0.5},
                      /*random_value=*/0.999999);
  most.flaky->Script({Unavailable("x")});
  ASSERT_TRUE(most.retry->List("").ok());
  ASSERT_EQ(most.sleeps->size(), 1u);
  EXPECT_GE((*most.sleeps)[0], milliseconds(500));
  EXPECT_LE((*most.sleeps)[0], milliseconds(501));

  Harness none = Make({.max_attempts = 2, .base_delay = milliseconds(1000), .jitter = 0.5},
                      /*random_value=*/0.0);
  none.flaky->Script({Unavailable("x")});
  ASSERT_TRUE(none.retry->List("").ok());
  EXPECT_EQ(*none.sleeps, std::vector<milliseconds>{milliseconds(1000)});
}

TEST(RetryStorageTest, OneAttemptMeansNoRetry) {
  Harness h = Make({.max_attempts = 1});
  h.flaky->Script({Unavailable("down")});
  Status st = h.retry->Put("k", ToBytes("v"));
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "down");
  EXPECT_TRUE(h.sleeps->empty());
}

TEST(RetryStorageTest, EveryMethodRetriesAndPassesValuesThrough) {
  Harness h = Make({.jitter = 0.0});
  h.flaky->Script({Unavailable("1")});
  ASSERT_TRUE(h.retry->Put("dir/a", ToBytes("hello")).ok());
  h.flaky->Script({Unavailable("2")});
  EXPECT_EQ(AsString(*h.retry->GetRange("dir/a", 1, 3)), "ell");
  h.flaky->Script({Unavailable("3")});
  EXPECT_EQ(h.retry->Stat("dir/a")->size, 5u);
  h.flaky->Script({Unavailable("4")});
  EXPECT_EQ(h.retry->List("dir/")->size(), 1u);
  h.flaky->Script({Unavailable("5")});
  EXPECT_TRUE(h.retry->Delete("dir/a").ok());
  EXPECT_EQ(h.retry->Get("dir/a").status().code(), Code::kNotFound);
  EXPECT_EQ(h.sleeps->size(), 5u);
  EXPECT_EQ(h.retry->Location(), "flaky://x");
}

TEST(RetryStorageTest, NominalDelays) {
  Harness h = Make({.base_delay = milliseconds(200), .max_delay = milliseconds(10000)});
  EXPECT_EQ(h.retry->NominalDelay(1), milliseconds(200));
  EXPECT_EQ(h.retry->NominalDelay(5), milliseconds(3200));
  EXPECT_EQ(h.retry->NominalDelay(7), milliseconds(10000));
  EXPECT_EQ(h.retry->NominalDelay(60), milliseconds(10000));
}

TEST(RetryStorageTest, ConcurrentCallersEachRetry) {
  // 17 attempts: even one caller meeting all 16 failures in a row gets through.
  Harness h = Make({.max_attempts = 17, .jitter = 0.3}, 0.5);
  std::vector<Status> failures(16, Unavailable("flap"));
  h.flaky->Script(failures);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i)
        if (h.retry->Put("k" + std::to_string(t) + "-" + std::to_string(i), ToBytes("x")).ok())
          ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(h.retry->List("")->size(), 40u);
  EXPECT_EQ(h.sleeps->size(), 16u);
}

}  // namespace
}  // namespace reprise

namespace reprise {
namespace {

TEST(RetryStorageDefaults, RideOutAMinuteLongOutage) {
  // A backup must survive a storage restart: the default policy waits 53 to 105 s in all.
  RetryPolicy policy;
  RetryStorage storage(nullptr, policy);
  std::chrono::milliseconds total{0};
  for (int attempt = 1; attempt < policy.max_attempts; ++attempt)
    total += storage.NominalDelay(attempt);
  EXPECT_GE(total.count() * (1.0 - policy.jitter), 50000);
  EXPECT_LE(total.count(), 110000);
}

}  // namespace
}  // namespace reprise
