// kind s3: keys are relative to the component's URL prefix (s3://bucket/prefix: the key
// "docs/a.pdf" is the object "prefix/docs/a.pdf"). `each` lists the keys under the prefix
// `query` ("/" for all); `exists_in` asks HEAD for the key `query` with $1 replaced, several at
// once. Both first list an unlikely prefix, so a missing bucket, refused credentials or a
// server that is down fail the check instead of passing it or calling everything an orphan.
#include <atomic>
#include <thread>

#include "stackcheck/drivers.h"
#include "storage/s3/credentials.h"
#include "storage/s3/s3_storage.h"

namespace reprise::stackcheck {

namespace {

constexpr int kParallelHeads = 8;

Result<std::unique_ptr<S3Storage>> Open(const Endpoint& e) {
  std::optional<s3::Credentials> given;
  std::string origin;
  if (e.credentials) {
    given = s3::Credentials{.access_key_id = e.credentials->access_key_id,
                            .secret_access_key = e.credentials->secret_access_key,
                            .session_token = e.credentials->session_token};
    origin = e.credentials->origin;
  }
  auto storage = OpenS3Storage(e.address, s3::ProcessEnv(), given ? &*given : nullptr, origin);
  if (!storage.ok()) return storage.status().WithContext("component '" + e.component + "'");
  auto probe = (*storage)->List("reprise-verify-stack-probe/");
  if (!probe.ok()) return probe.status().WithContext("component '" + e.component + "'");
  return storage;
}

class S3Source final : public ValueSource {
 public:
  S3Source(std::unique_ptr<S3Storage> storage, std::string prefix, std::string component)
      : storage_(std::move(storage)), prefix_(std::move(prefix)), component_(std::move(component)) {}

  Status Each(size_t batch_size, const Sink& sink) override {
    auto list = storage_->List(prefix_);
    if (!list.ok()) return list.status().WithContext("component '" + component_ + "'");
    std::vector<std::string> batch;
    for (ObjectInfo& info : *list) {
      batch.push_back(std::move(info.key));
      if (batch.size() >= batch_size) {
        RETURN_IF_ERROR(sink(std::move(batch)));
        batch.clear();
      }
    }
    if (!batch.empty()) return sink(std::move(batch));
    return Status::Ok();
  }

 private:
  std::unique_ptr<S3Storage> storage_;
  std::string prefix_, component_;
};

class S3Test final : public MembershipTest {
 public:
  S3Test(std::unique_ptr<S3Storage> storage, std::string pattern, std::string component)
      : storage_(std::move(storage)), pattern_(std::move(pattern)), component_(std::move(component)) {}

  Result<std::vector<bool>> Find(const std::vector<std::string>& values) override {
    std::vector<char> found(values.size(), 0);
    std::vector<Status> errors(values.size());
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    auto work = [&] {
      for (size_t i; !failed && (i = next.fetch_add(1)) < values.size();) {
        std::string key = SubstituteValue(pattern_, values[i]);
        // A value that cannot name an object (empty, "..", a leading '/') has none.
        if (!ValidateStorageKey(key, false).ok()) continue;
        auto info = storage_->Stat(key);
        if (info.ok()) {
          found[i] = 1;
        } else if (info.status().code() != Code::kNotFound) {
          errors[i] = info.status();
          failed = true;
        }
      }
    };
    const size_t threads = std::min<size_t>(kParallelHeads, values.size());
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    for (const Status& s : errors) {
      if (!s.ok()) return s.WithContext("component '" + component_ + "'");
    }
    return std::vector<bool>(found.begin(), found.end());
  }

 private:
  std::unique_ptr<S3Storage> storage_;
  std::string pattern_, component_;
};

}  // namespace

Result<std::unique_ptr<ValueSource>> OpenS3Source(const Endpoint& e,
                                                  const ConsistencyCheck::Side& side) {
  std::string prefix = side.query == "/" ? "" : side.query;
  if (Status s = ValidateStorageKey(prefix, true); !s.ok()) {
    return InvalidArgument("the prefix '" + side.query + "' of component '" + e.component +
                           "' is not a valid key prefix: " + s.message() +
                           ": HINT: give it relative to the component's URL, e.g. 'docs/', "
                           "or '/' for every key");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<S3Storage> storage, Open(e));
  return std::unique_ptr<ValueSource>(
      std::make_unique<S3Source>(std::move(storage), std::move(prefix), e.component));
}

Result<std::unique_ptr<MembershipTest>> OpenS3Test(const Endpoint& e,
                                                   const ConsistencyCheck::Side& side) {
  if (side.query.find("$1") == std::string::npos) {
    return InvalidArgument("the exists_in key of component '" + e.component +
                           "' has no $1: HINT: name the object with the value as $1, e.g. "
                           "'$1' or 'docs/$1.pdf'");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<S3Storage> storage, Open(e));
  return std::unique_ptr<MembershipTest>(
      std::make_unique<S3Test>(std::move(storage), side.query, e.component));
}

}  // namespace reprise::stackcheck
