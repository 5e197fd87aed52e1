// kind redis: `each` walks the keys matching the pattern with SCAN (cursor by cursor, so the
// keyspace is never held in memory; SCAN may return a key twice, which the runner tolerates);
// `exists_in` asks EXISTS for the key named by the pattern with $1 replaced, a batch of keys
// per round trip through one EVAL, or key by key when scripting is refused (ACL, disabled).
#include "redis/client.h"
#include "stackcheck/drivers.h"

namespace reprise::stackcheck {

namespace {

// Returns, for each key in KEYS, 1 when it exists and 0 when not.
constexpr char kExistsScript[] =
    "local r = {} for i, k in ipairs(KEYS) do r[i] = redis.call('EXISTS', k) end return r";

Result<std::unique_ptr<redis::Client>> Connect(const Endpoint& e) {
  auto address = redis::ParseAddress(e.address);
  if (!address.ok()) return address.status().WithContext("component '" + e.component + "'");
  auto client = redis::Client::Connect(*address, e.password, e.timeout);
  if (!client.ok()) return client.status().WithContext("component '" + e.component + "'");
  return client;
}

class RedisSource final : public ValueSource {
 public:
  RedisSource(std::unique_ptr<redis::Client> client, std::string pattern, std::string component)
      : client_(std::move(client)), pattern_(std::move(pattern)), component_(std::move(component)) {}

  Status Each(size_t batch_size, const Sink& sink) override {
    std::string cursor = "0";
    std::vector<std::string> batch;
    do {
      auto reply = client_->Command({"SCAN", cursor, "MATCH", pattern_, "COUNT", "1000"});
      if (!reply.ok()) return reply.status().WithContext("component '" + component_ + "'");
      if (reply->type != redis::Reply::Type::kArray || reply->elements.size() != 2 ||
          reply->elements[1].type != redis::Reply::Type::kArray) {
        return Internal("component '" + component_ + "': unexpected SCAN reply");
      }
      cursor = reply->elements[0].str;
      for (redis::Reply& key : reply->elements[1].elements) {
        batch.push_back(std::move(key.str));
        if (batch.size() >= batch_size) {
          RETURN_IF_ERROR(sink(std::move(batch)));
          batch.clear();
        }
      }
    } while (cursor != "0");
    if (!batch.empty()) return sink(std::move(batch));
    return Status::Ok();
  }

 private:
  std::unique_ptr<redis::Client> client_;
  std::string pattern_, component_;
};

class RedisTest final : public MembershipTest {
 public:
  RedisTest(std::unique_ptr<redis::Client> client, std::string pattern, std::string component)
      : client_(std::move(client)), pattern_(std::move(pattern)), component_(std::move(component)) {}

  Result<std::vector<bool>> Find(const std::vector<std::string>& values) override {
    std::vector<bool> found(values.size(), false);
    constexpr size_t kPerCall = 500;
    for (size_t start = 0; start < values.size(); start += kPerCall) {
      size_t end = std::min(values.size(), start + kPerCall);
      if (use_script_) {
        std::vector<std::string> argv = {"EVAL", kExistsScript, std::to_string(end - start)};
        for (size_t i = start; i < end; ++i) argv.push_back(SubstituteValue(pattern_, values[i]));
        auto reply = client_->Command(argv);
        if (reply.ok() && reply->type == redis::Reply::Type::kArray &&
            reply->elements.size() == end - start) {
          for (size_t i = start; i < end; ++i) {
            found[i] = reply->elements[i - start].integer != 0;
          }
          continue;
        }
        // A refused script (NOPERM, scripting disabled) falls back to one EXISTS per key; a
        // connection failure does not.
        if (!reply.ok() && reply.status().code() == Code::kUnavailable) {
          return reply.status().WithContext("component '" + component_ + "'");
        }
        use_script_ = false;
      }
      for (size_t i = start; i < end; ++i) {
        auto reply = client_->Command({"EXISTS", SubstituteValue(pattern_, values[i])});
        if (!reply.ok()) return reply.status().WithContext("component '" + component_ + "'");
        found[i] = reply->integer != 0;
      }
    }
    return found;
  }

 private:
  std::unique_ptr<redis::Client> client_;
  std::string pattern_, component_;
  bool use_script_ = true;
};

}  // namespace

Result<std::unique_ptr<ValueSource>> OpenRedisSource(const Endpoint& e,
                                                     const ConsistencyCheck::Side& side) {
  ASSIGN_OR_RETURN(std::unique_ptr<redis::Client> client, Connect(e));
  return std::unique_ptr<ValueSource>(
      std::make_unique<RedisSource>(std::move(client), side.query, e.component));
}

Result<std::unique_ptr<MembershipTest>> OpenRedisTest(const Endpoint& e,
                                                      const ConsistencyCheck::Side& side) {
  if (side.query.find("$1") == std::string::npos) {
    return InvalidArgument("the exists_in key of component '" + e.component +
                           "' has no $1: HINT: name the key with the value as $1, e.g. "
                           "'doc:$1'");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<redis::Client> client, Connect(e));
  return std::unique_ptr<MembershipTest>(
      std::make_unique<RedisTest>(std::move(client), side.query, e.component));
}

}  // namespace reprise::stackcheck
