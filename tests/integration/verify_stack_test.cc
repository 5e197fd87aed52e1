// reprise verify-stack and src/stackcheck/: consistency checks between the components of a
// stack, on real servers. A clean stack passes; planted orphans (a chunk row whose document
// row is missing, a row whose cache key or object is missing, a stray cache key or object, a
// vector whose chunk row is missing) are reported, exactly those; a check whose server is down
// fails as "could not run", never as "0 orphans".
//   VerifyStackRunnerTest  the runner on fake sides (no servers)
//   VerifyStackTest        PostgreSQL 15 + Redis 7, the library and the real binary
//   VerifyStackQdrantTest  PostgreSQL + the Qdrant contract server (tests/contract/)
//   S3DocumentsVerifyTest  PostgreSQL + an S3 bucket on Ceph RGW (rgw_env.h)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "qdrant_contract.h"
#include "pg_env.h"
#include "plan/plan.h"
#include "redis_env.h"
#include "rgw_env.h"
#include "stackcheck/stack_check.h"
#include "storage/s3/s3_storage.h"

namespace reprise::testing {
namespace {

using stackcheck::CheckOptions;
using stackcheck::CheckResult;

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---- the runner on fakes ----------------------------------------------------------------

class FakeSource final : public stackcheck::ValueSource {
 public:
  explicit FakeSource(std::vector<std::string> values, Status fail_at_end = Status::Ok())
      : values_(std::move(values)), fail_(std::move(fail_at_end)) {}
  Status Each(size_t batch_size, const Sink& sink) override {
    for (size_t i = 0; i < values_.size(); i += batch_size) {
      std::vector<std::string> batch(values_.begin() + i,
                                     values_.begin() + std::min(values_.size(), i + batch_size));
      Status s = sink(std::move(batch));
      if (!s.ok()) return s;
    }
    return fail_;
  }

 private:
  std::vector<std::string> values_;
  Status fail_;
};

class FakeTest final : public stackcheck::MembershipTest {
 public:
  explicit FakeTest(std::set<std::string> present) : present_(std::move(present)) {}
  Result<std::vector<bool>> Find(const std::vector<std::string>& values) override {
    ++calls;
    if (fail_after >= 0 && calls > fail_after) return Unavailable("fake server went away");
    std::vector<bool> out;
    for (const auto& v : values) {
      asked.push_back(v);
      out.push_back(present_.contains(v));
    }
    return out;
  }
  int calls = 0;
  int fail_after = -1;
  std::vector<std::string> asked;

 private:
  std::set<std::string> present_;
};

ConsistencyCheck FakeCheck() {
  ConsistencyCheck c;
  c.name = "fake";
  c.each.component = "a";
  c.exists_in.component = "b";
  return c;
}

TEST(VerifyStackRunnerTest, CountsDistinctOrphansAndAsksEachValueOnce) {
  // 1..10 exist; 11, 12 and 13 do not; values repeat across batches.
  std::set<std::string> present;
  for (int i = 1; i <= 10; ++i) present.insert(std::to_string(i));
  std::vector<std::string> values;
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i <= 13; ++i) values.push_back(std::to_string(i));
  }
  FakeSource source(values);
  FakeTest test(present);
  CheckResult r = stackcheck::RunCheck(FakeCheck(), source, test,
                                       CheckOptions{.max_orphans = 2, .batch_size = 4});
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.examined, 39u);
  EXPECT_EQ(r.tested, 13u);
  EXPECT_EQ(test.asked.size(), 13u);  // a value already tested is not asked again
  EXPECT_EQ(r.orphans, 3u);
  EXPECT_EQ(r.first_orphans, (std::vector<std::string>{"11", "12"}));
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(r.orphans_approximate);

  // Without the cache, repeats are asked again but still count once.
  FakeSource again(values);
  FakeTest test2(present);
  CheckResult r2 = stackcheck::RunCheck(
      FakeCheck(), again, test2, CheckOptions{.batch_size = 5, .cache_entries = 0});
  EXPECT_EQ(r2.orphans, 3u);
  EXPECT_GT(test2.asked.size(), 13u);
  EXPECT_EQ(Sorted(r2.first_orphans), (std::vector<std::string>{"11", "12", "13"}));
}

TEST(VerifyStackRunnerTest, AFailureIsNotAPass) {
  std::vector<std::string> values = {"1", "2", "3", "4", "5", "6"};
  FakeSource source(values);
  FakeTest test({"1", "2", "3", "4", "5", "6"});
  test.fail_after = 1;  // the second batch fails
  CheckResult r =
      stackcheck::RunCheck(FakeCheck(), source, test, CheckOptions{.batch_size = 3});
  EXPECT_FALSE(r.passed());
  EXPECT_EQ(r.error.code(), Code::kUnavailable);
  EXPECT_NE(r.error.message().find("fake server went away"), std::string::npos)
      << r.error.message();
  EXPECT_EQ(r.tested, 3u);
  EXPECT_EQ(r.orphans, 0u);
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["ok"], false);
  EXPECT_TRUE(j["error"].is_string());

  // The source failing after its values is a failure too.
  FakeSource broken({"1"}, IOError("listing cut short"));
  FakeTest all({"1"});
  CheckResult r2 = stackcheck::RunCheck(FakeCheck(), broken, all, CheckOptions{});
  EXPECT_FALSE(r2.passed());
  EXPECT_EQ(r2.examined, 1u);
  EXPECT_EQ(r2.error.code(), Code::kIOError);
}

TEST(VerifyStackRunnerTest, SubstitutesEveryPlaceholder) {
  EXPECT_EQ(stackcheck::SubstituteValue("doc:$1", "42"), "doc:42");
  EXPECT_EQ(stackcheck::SubstituteValue("$1/$1.pdf", "a"), "a/a.pdf");
  EXPECT_EQ(stackcheck::SubstituteValue("$2$", "x"), "$2$");
}

// ---- PostgreSQL + Redis ------------------------------------------------------------------

constexpr int kDocuments = 50;
constexpr int kChunks = 200;

class VerifyStackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
    if (!RedisAvailable()) GTEST_SKIP() << kRedisSkipReason;
    pg_ = PgServer::Create(tmp_.path(), "pg");
    ASSERT_TRUE(pg_ && pg_->running());
    redis_ = RedisServer::Create(tmp_.path(), "cache");
    ASSERT_TRUE(redis_);
    dr_redis_ = RedisServer::Create(tmp_.path(), "dr-cache");
    ASSERT_TRUE(dr_redis_);
    std::string err;
    ASSERT_TRUE(pg_->Sql("create table documents(id int primary key, object_key text);"
                         "create table chunks(id int primary key, doc_id int);"
                         "create table raw_ids(v text);"
                         "insert into documents select i, 'docs/' || i || '.pdf' "
                         "  from generate_series(1," + std::to_string(kDocuments) + ") i;"
                         "insert into chunks select i, (i % " + std::to_string(kDocuments) +
                         ") + 1 from generate_series(1," + std::to_string(kChunks) + ") i;"
                         "insert into raw_ids values ('3'), ('abc'), "
                         "  ('99999999999999999999'), ('4'), (null), ('x1'), ('5');",
                         "postgres", &err))
        << err;
    for (int i = 1; i <= kDocuments; ++i) {
      ASSERT_TRUE(redis_->Cli({"SET", "doc:" + std::to_string(i), "cached"}));
    }
    plan_file_ = tmp_.path() + "/reprise.yaml";
    WriteFile(plan_file_, PlanText());
    auto plan = ParsePlan(PlanText(), "reprise.yaml");
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    plan_ = std::move(*plan);
  }

  std::string PlanText() const {
    return "version: 1\n"
           "name: stack\n"
           "sites:\n"
           "  local: {repository: " + tmp_.path() + "/repo}\n"
           "  dr:\n"
           "    repository: " + tmp_.path() + "/dr-repo\n"
           "    endpoints: {postgres: '" + pg_->conninfo() + "', redis: '" + dr_redis_->url() +
           "'}\n"
           "  far: {repository: " + tmp_.path() + "/far-repo}\n"
           "components:\n"
           "  db: {kind: postgres, class: transactional, connection: '" + pg_->conninfo() +
           "'}\n"
           "  cache: {kind: redis, class: configuration, connection: '" + redis_->url() + "'}\n"
           "consistency:\n"
           "  - name: chunks have documents\n"
           "    each: {db: 'select doc_id from chunks'}\n"
           "    exists_in: {db: 'select 1 from documents where id = $1'}\n"
           "  - name: documents are cached\n"
           "    each: {db: 'select id from documents'}\n"
           "    exists_in: {cache: 'doc:$1'}\n"
           "  - name: cache keys have documents\n"
           "    each: {cache: 'doc:*'}\n"
           "    exists_in: {db: \"select 1 from documents where 'doc:' || id = $1\"}\n"
           "  - name: raw ids are documents\n"
           "    each: {db: 'select v from raw_ids'}\n"
           "    exists_in: {db: 'select 1 from documents where id = $1'}\n";
  }

  const ConsistencyCheck& Check(const std::string& name) const {
    for (const auto& c : plan_.consistency) {
      if (c.name == name) return c;
    }
    ADD_FAILURE() << "no check " << name;
    return plan_.consistency.front();
  }

  CheckResult Run(const std::string& name, const Site* site = nullptr,
                  CheckOptions options = {.batch_size = 16}) {
    auto secrets = [](const std::string& n) -> Result<std::string> {
      return NotFound("no secret '" + n + "' in this test");
    };
    return stackcheck::RunPlanCheck(plan_, Check(name), site, secrets, options);
  }

  RunResult Reprise(std::vector<std::string> args) {
    args.insert(args.begin(), {REPRISE_BINARY, "--plan", plan_file_});
    return RunCommand(args);
  }

  TempDir tmp_;
  std::unique_ptr<PgServer> pg_;
  std::unique_ptr<RedisServer> redis_, dr_redis_;
  std::string plan_file_;
  Plan plan_;
};

TEST_F(VerifyStackTest, CleanStackPasses) {
  CheckResult chunks = Run("chunks have documents");
  EXPECT_TRUE(chunks.passed()) << chunks.error.ToString();
  EXPECT_EQ(chunks.examined, static_cast<uint64_t>(kChunks));
  EXPECT_EQ(chunks.tested, static_cast<uint64_t>(kDocuments));  // 4 chunks per document
  EXPECT_EQ(chunks.orphans, 0u);

  CheckResult cached = Run("documents are cached");
  EXPECT_TRUE(cached.passed()) << cached.error.ToString();
  EXPECT_EQ(cached.examined, static_cast<uint64_t>(kDocuments));

  CheckResult keys = Run("cache keys have documents");
  EXPECT_TRUE(keys.passed()) << keys.error.ToString();
  EXPECT_EQ(keys.examined, static_cast<uint64_t>(kDocuments));
}

TEST_F(VerifyStackTest, FindsExactlyThePlantedOrphans) {
  std::string err;
  // Two chunks of a document that does not exist, one chunk with no document at all (NULL:
  // not a value), a document whose cache key is gone, a cache key with no document.
  ASSERT_TRUE(pg_->Sql("insert into chunks values (1001, 999), (1002, 999), (1003, null), "
                       "(1004, 777)", "postgres", &err)) << err;
  ASSERT_TRUE(redis_->Cli({"DEL", "doc:7"}));
  ASSERT_TRUE(redis_->Cli({"SET", "doc:stale", "x"}));
  ASSERT_TRUE(redis_->Cli({"SET", "other:1", "not matched by doc:*"}));

  CheckResult chunks = Run("chunks have documents");
  EXPECT_TRUE(chunks.error.ok()) << chunks.error.ToString();
  EXPECT_EQ(chunks.examined, static_cast<uint64_t>(kChunks + 3));
  EXPECT_EQ(chunks.orphans, 2u);
  EXPECT_EQ(Sorted(chunks.first_orphans), (std::vector<std::string>{"777", "999"}));

  CheckResult cached = Run("documents are cached");
  EXPECT_TRUE(cached.error.ok()) << cached.error.ToString();
  EXPECT_EQ(cached.orphans, 1u);
  EXPECT_EQ(cached.first_orphans, (std::vector<std::string>{"7"}));

  CheckResult keys = Run("cache keys have documents");
  EXPECT_TRUE(keys.error.ok()) << keys.error.ToString();
  EXPECT_EQ(keys.examined, static_cast<uint64_t>(kDocuments));  // 49 + doc:stale
  EXPECT_EQ(keys.first_orphans, (std::vector<std::string>{"doc:stale"}));

  // Values the exists_in query cannot even take (text and out of range for an integer
  // column) are orphans; the statements after them in the same pipeline still count.
  CheckResult raw = Run("raw ids are documents", nullptr, CheckOptions{.batch_size = 100});
  EXPECT_TRUE(raw.error.ok()) << raw.error.ToString();
  EXPECT_EQ(raw.examined, 6u);
  EXPECT_EQ(Sorted(raw.first_orphans),
            (std::vector<std::string>{"99999999999999999999", "abc", "x1"}));
}

TEST_F(VerifyStackTest, ManyOrphansAreCountedAndTheFirstListed) {
  // On site dr the cache is empty: every document is an orphan there.
  const Site* dr = plan_.FindSite("dr");
  ASSERT_NE(dr, nullptr);
  CheckResult r = Run("documents are cached", dr, CheckOptions{.max_orphans = 3, .batch_size = 7});
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.orphans, static_cast<uint64_t>(kDocuments));
  EXPECT_EQ(r.first_orphans.size(), 3u);

  // A cold site without endpoints cannot be checked: said plainly.
  CheckResult far = Run("documents are cached", plan_.FindSite("far"));
  EXPECT_FALSE(far.passed());
  EXPECT_NE(far.error.message().find("site 'far' has no endpoints.postgres"), std::string::npos)
      << far.error.message();
  // The primary site without endpoints uses the components' own addresses.
  CheckResult local = Run("documents are cached", plan_.FindSite("local"));
  EXPECT_TRUE(local.passed()) << local.error.ToString();
}

TEST_F(VerifyStackTest, AServerThatIsDownIsAnErrorNotAPass) {
  redis_->Kill();
  CheckResult cached = Run("documents are cached");
  EXPECT_FALSE(cached.passed());
  EXPECT_EQ(cached.error.code(), Code::kUnavailable) << cached.error.ToString();
  EXPECT_NE(cached.error.message().find("component 'cache'"), std::string::npos)
      << cached.error.message();
  CheckResult keys = Run("cache keys have documents");
  EXPECT_FALSE(keys.passed());
  EXPECT_EQ(keys.examined, 0u);

  pg_->Kill();
  CheckResult chunks = Run("chunks have documents");
  EXPECT_FALSE(chunks.passed());
  EXPECT_NE(chunks.error.message().find("component 'db'"), std::string::npos)
      << chunks.error.message();
}

TEST_F(VerifyStackTest, BadQueriesAreReportedAsSuch) {
  ConsistencyCheck c = Check("chunks have documents");
  c.exists_in.query = "select 1 from documents where id = 5";  // no $1
  auto secrets = [](const std::string&) -> Result<std::string> { return std::string(); };
  CheckResult r = stackcheck::RunPlanCheck(plan_, c, nullptr, secrets, CheckOptions{});
  EXPECT_EQ(r.error.code(), Code::kInvalidArgument) << r.error.ToString();
  EXPECT_NE(r.error.message().find("has no $1"), std::string::npos);

  c = Check("chunks have documents");
  c.each.query = "select doc_id from no_such_table";
  r = stackcheck::RunPlanCheck(plan_, c, nullptr, secrets, CheckOptions{});
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.error.message().find("no_such_table"), std::string::npos) << r.error.message();

  // A check never writes.
  c = Check("chunks have documents");
  c.each.query = "delete from documents returning id";
  r = stackcheck::RunPlanCheck(plan_, c, nullptr, secrets, CheckOptions{});
  EXPECT_FALSE(r.passed());
  EXPECT_EQ(pg_->Sql("select count(*) from documents"), std::to_string(kDocuments));
}

TEST_F(VerifyStackTest, TheCommand) {
  // Only ids that are documents: the stack is clean.
  ASSERT_TRUE(pg_->Sql("delete from raw_ids where v is null or v !~ '^[1-9][0-9]?$'"));
  RunResult clean = Reprise({"verify-stack"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("ok      chunks have documents: 200 values, 0 orphans"),
            std::string::npos)
      << clean.out;

  std::string err;
  ASSERT_TRUE(pg_->Sql("insert into chunks values (1001, 999)", "postgres", &err)) << err;
  ASSERT_TRUE(redis_->Cli({"DEL", "doc:7"}));

  RunResult found = Reprise({"verify-stack", "--json"});
  EXPECT_EQ(found.exit_code, 12) << found.out << found.err;
  nlohmann::json j = nlohmann::json::parse(found.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << found.out;
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["checks"].size(), 4u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& c : j["checks"]) by_name[c["name"]] = c;
  EXPECT_EQ(by_name["chunks have documents"]["first_orphans"], nlohmann::json({"999"}));
  EXPECT_EQ(by_name["documents are cached"]["first_orphans"], nlohmann::json({"7"}));
  EXPECT_EQ(by_name["cache keys have documents"]["orphans"], 0);
  EXPECT_TRUE(by_name["chunks have documents"]["error"].is_null());

  RunResult text = Reprise({"verify-stack", "--check", "documents are cached"});
  EXPECT_EQ(text.exit_code, 12);
  EXPECT_NE(text.out.find("ORPHANS documents are cached: 50 values, 1 orphans"),
            std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n          7\n"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("chunks have documents"), std::string::npos) << text.out;

  RunResult one = Reprise({"verify-stack", "--check", "cache keys have documents", "--json"});
  EXPECT_EQ(one.exit_code, 0) << one.out << one.err;

  RunResult site = Reprise({"verify-stack", "--site", "dr", "--check", "documents are cached",
                            "--max-orphans", "2", "--json"});
  EXPECT_EQ(site.exit_code, 12) << site.err;
  nlohmann::json s = nlohmann::json::parse(site.out, nullptr, false);
  ASSERT_TRUE(s.is_object()) << site.out;
  EXPECT_EQ(s["site"], "dr");
  EXPECT_EQ(s["checks"][0]["orphans"], kDocuments);
  EXPECT_EQ(s["checks"][0]["first_orphans"].size(), 2u);

  RunResult unknown = Reprise({"verify-stack", "--check", "nope"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no consistency check 'nope'"), std::string::npos) << unknown.err;

  redis_->Kill();
  RunResult down = Reprise({"verify-stack"});
  EXPECT_EQ(down.exit_code, 1) << down.out << down.err;
  EXPECT_NE(down.err.find("ERROR   documents are cached: could not run"), std::string::npos)
      << down.err;
  EXPECT_NE(down.err.find("could not run"), std::string::npos) << down.err;
}

// ---- PostgreSQL + Qdrant (the contract server) -------------------------------------------

// 1200 chunk rows; two vectors per chunk (payload chunk_id), so one page of a filtered scroll
// does not hold every match of a batch.
constexpr int kQdrantChunks = 1200;

class VerifyStackQdrantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
    QdrantContract::Options o;
    o.reference_dir = std::string(REPRISE_SOURCE_DIR) + "/tests/contract/qdrant";
    o.api_key = "vector-key";
    qdrant_ = std::make_unique<QdrantContract>(o);
    ASSERT_TRUE(qdrant_->running()) << qdrant_->error();
    pg_ = PgServer::Create(tmp_.path(), "pg");
    ASSERT_TRUE(pg_ && pg_->running());
    std::string err;
    ASSERT_TRUE(pg_->Sql("create table chunks(id int primary key);"
                         "insert into chunks select i from generate_series(1, " +
                             std::to_string(kQdrantChunks) + ") i;",
                         "postgres", &err))
        << err;
    ASSERT_EQ(Request("PUT", "/collections/rag",
                      {{"vectors", {{"size", 2}, {"distance", "Cosine"}}}}),
              200);
    nlohmann::json points = nlohmann::json::array();
    for (int c = 1; c <= kQdrantChunks; ++c) {
      for (int k = 0; k < 2; ++k) {
        points.push_back({{"id", 2 * c - 1 + k},
                          {"vector", {0.5, 0.25 * k}},
                          {"payload", {{"chunk_id", c}, {"text", "chunk " + std::to_string(c)}}}});
      }
    }
    ASSERT_EQ(Upsert(points), 200);
    plan_ = MakePlan("vector-key-secret");
  }

  void TearDown() override {
    if (qdrant_) {
      EXPECT_EQ(qdrant_->Violations(), std::vector<std::string>{});
    }
  }

  int Request(const std::string& method, const std::string& path, const nlohmann::json& body) {
    httplib::Client client("127.0.0.1", qdrant_->port());
    httplib::Headers headers = {{"api-key", "vector-key"}};
    auto res = method == "PUT" ? client.Put(path, headers, body.dump(), "application/json")
                               : client.Post(path, headers, body.dump(), "application/json");
    return res ? res->status : -1;
  }
  int Upsert(const nlohmann::json& points) {
    return Request("PUT", "/collections/rag/points?wait=true", {{"points", points}});
  }

  Plan MakePlan(const std::string& key_secret) {
    std::string text =
        "version: 1\nname: rag\n"
        "secrets:\n  vector-key-secret: {env: [VERIFY_TEST_QDRANT_KEY]}\n"
        "  wrong-key: {env: [VERIFY_TEST_WRONG_KEY]}\n"
        "sites:\n  local: {repository: " + tmp_.path() + "/repo}\n"
        "components:\n"
        "  db: {kind: postgres, class: transactional, connection: '" + pg_->conninfo() + "'}\n"
        "  vectors: {kind: qdrant, class: embeddings, url: '" + qdrant_->url() +
        "/', api_key: " + key_secret + "}\n"
        "consistency:\n"
        "  - name: vectors have chunk rows\n"
        "    each: {vectors: rag, payload: chunk_id}\n"
        "    exists_in: {db: 'select 1 from chunks where id = $1'}\n"
        "  - name: chunks have vectors\n"
        "    each: {db: 'select id from chunks'}\n"
        "    exists_in: {vectors: rag, payload: chunk_id}\n";
    auto plan = ParsePlan(text, "reprise.yaml");
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? std::move(*plan) : Plan{};
  }

  CheckResult Run(const Plan& plan, size_t i, CheckOptions options = {.batch_size = 600}) {
    auto secrets = [](const std::string& name) -> Result<std::string> {
      if (name == "vector-key-secret") return std::string("vector-key");
      if (name == "wrong-key") return std::string("not-the-key");
      return NotFound("no secret '" + name + "'");
    };
    return stackcheck::RunPlanCheck(plan, plan.consistency.at(i), nullptr, secrets, options);
  }

  TempDir tmp_;
  std::unique_ptr<QdrantContract> qdrant_;
  std::unique_ptr<PgServer> pg_;
  Plan plan_;
};

TEST_F(VerifyStackQdrantTest, CleanStackPasses) {
  ASSERT_EQ(plan_.consistency.size(), 2u);
  CheckResult vectors = Run(plan_, 0);
  EXPECT_TRUE(vectors.passed()) << vectors.error.ToString();
  EXPECT_EQ(vectors.examined, 2u * kQdrantChunks);  // paged through 1000 at a time
  EXPECT_EQ(vectors.tested, static_cast<uint64_t>(kQdrantChunks));
  CheckResult chunks = Run(plan_, 1);
  EXPECT_TRUE(chunks.passed()) << chunks.error.ToString();
  EXPECT_EQ(chunks.examined, static_cast<uint64_t>(kQdrantChunks));
  // The API key went along.
  for (const std::string& key : qdrant_->HeaderValues("api-key")) EXPECT_EQ(key, "vector-key");
}

TEST_F(VerifyStackQdrantTest, FindsExactlyThePlantedOrphans) {
  // A vector whose chunk row is missing, one whose chunk_id is not even a number, one
  // without the payload key (not a value); a chunk row whose two vectors are gone; a chunk
  // row whose vector stores its id as a string (still found: "7" matches "7").
  std::string err;
  ASSERT_EQ(Upsert({{{"id", 100001}, {"vector", {0.1, 0.2}}, {"payload", {{"chunk_id", 99999}}}},
                    {{"id", 100002}, {"vector", {0.1, 0.2}},
                     {"payload", {{"chunk_id", "not-a-chunk"}}}},
                    {{"id", 100003}, {"vector", {0.1, 0.2}}, {"payload", {{"text", "no id"}}}},
                    {{"id", 100004}, {"vector", {0.1, 0.2}},
                     {"payload", {{"chunk_id", std::to_string(kQdrantChunks + 1)}}}}}),
            200);
  ASSERT_TRUE(pg_->Sql("insert into chunks values (" + std::to_string(kQdrantChunks + 1) +
                           "), (" + std::to_string(kQdrantChunks + 2) + ")",
                       "postgres", &err))
      << err;

  CheckResult vectors = Run(plan_, 0);
  EXPECT_TRUE(vectors.error.ok()) << vectors.error.ToString();
  EXPECT_EQ(vectors.examined, 2u * kQdrantChunks + 3);
  EXPECT_EQ(Sorted(vectors.first_orphans), (std::vector<std::string>{"99999", "not-a-chunk"}));

  CheckResult chunks = Run(plan_, 1);
  EXPECT_TRUE(chunks.error.ok()) << chunks.error.ToString();
  EXPECT_EQ(chunks.first_orphans,
            (std::vector<std::string>{std::to_string(kQdrantChunks + 2)}));
}

TEST_F(VerifyStackQdrantTest, RefusalsAndOutagesAreErrors) {
  Plan wrong = MakePlan("wrong-key");
  CheckResult refused = Run(wrong, 1);
  EXPECT_FALSE(refused.passed());
  EXPECT_EQ(refused.error.code(), Code::kUnauthenticated) << refused.error.ToString();
  EXPECT_NE(refused.error.message().find("api_key"), std::string::npos);

  ConsistencyCheck missing = plan_.consistency[1];
  missing.exists_in.query = "no_such_collection";
  auto secrets = [](const std::string&) -> Result<std::string> { return std::string("vector-key"); };
  CheckResult absent = stackcheck::RunPlanCheck(plan_, missing, nullptr, secrets, CheckOptions{});
  EXPECT_EQ(absent.error.code(), Code::kNotFound) << absent.error.ToString();
  EXPECT_NE(absent.error.message().find("collection 'no_such_collection'"), std::string::npos);

  // Everything below expects no violations, so look at them now.
  EXPECT_EQ(qdrant_->Violations(), std::vector<std::string>{});
  qdrant_.reset();
  CheckResult down = Run(plan_, 0);
  EXPECT_FALSE(down.passed());
  EXPECT_EQ(down.error.code(), Code::kUnavailable) << down.error.ToString();
  EXPECT_EQ(down.examined, 0u);
}

// ---- PostgreSQL + S3 (RGW) -------------------------------------------------------------

class S3DocumentsVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = LoadRgwEnv();
    if (!env_) GTEST_SKIP() << kRgwSkipReason;
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
    bucket_ = env_->bucket_prefix + "-verify-" + std::to_string(::getpid()) + "-" + RandomHex(6);
    auto owner = S3Storage::Create(Options(""));
    ASSERT_TRUE(owner.ok()) << owner.status().ToString();
    ASSERT_TRUE((*owner)->CreateBucket().ok());
    auto docs = S3Storage::Create(Options("tenant"));
    ASSERT_TRUE(docs.ok());
    docs_ = std::move(*docs);
    pg_ = PgServer::Create(tmp_.path(), "pg");
    ASSERT_TRUE(pg_ && pg_->running());
    std::string err;
    ASSERT_TRUE(pg_->Sql("create table documents(id int primary key, object_key text);"
                         "insert into documents select i, 'docs/' || i || '.pdf' "
                         "  from generate_series(1, 30) i;",
                         "postgres", &err))
        << err;
    for (int i = 1; i <= 30; ++i) {
      std::string body = "document " + std::to_string(i);
      ASSERT_TRUE(docs_->Put("docs/" + std::to_string(i) + ".pdf", AsBytes(body)).ok());
    }
    // Outside the prefix the component names: never seen.
    auto outside = S3Storage::Create(Options("elsewhere"));
    ASSERT_TRUE(outside.ok());
    ASSERT_TRUE((*outside)->Put("docs/stray-outside.pdf", AsBytes(std::string("x"))).ok());
  }

  void TearDown() override {
    if (!env_ || bucket_.empty()) return;
    auto all = S3Storage::Create(Options(""));
    if (!all.ok()) return;
    if (auto list = (*all)->List(""); list.ok()) {
      for (const auto& o : *list) (void)(*all)->Delete(o.key);
    }
    (void)(*all)->DeleteBucket();
  }

  S3Options Options(const std::string& prefix) const {
    return S3Options{
        .bucket = bucket_,
        .prefix = prefix,
        .endpoint = env_->endpoint,
        .region = env_->region,
        .path_style = true,
        .credentials = {.access_key_id = env_->access_key, .secret_access_key = env_->secret_key}};
  }

  Plan MakePlan(const std::string& bucket) {
    std::string text =
        "version: 1\nname: docs\n"
        "secrets:\n  docs_keys: {env: [VERIFY_TEST_KEY_ID, VERIFY_TEST_SECRET]}\n"
        "sites:\n  local: {repository: " + tmp_.path() + "/repo}\n"
        "components:\n"
        "  db: {kind: postgres, class: transactional, connection: '" + pg_->conninfo() + "'}\n"
        "  documents: {kind: s3, class: documents, credentials: docs_keys, url: 's3://" +
        bucket + "/tenant?endpoint=" + env_->endpoint + "&region=" + env_->region + "'}\n"
        "consistency:\n"
        "  - name: rows have objects\n"
        "    each: {db: 'select object_key from documents'}\n"
        "    exists_in: {documents: '$1'}\n"
        "  - name: objects have rows\n"
        "    each: {documents: 'docs/'}\n"
        "    exists_in: {db: 'select 1 from documents where object_key = $1'}\n";
    auto plan = ParsePlan(text, "reprise.yaml");
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? std::move(*plan) : Plan{};
  }

  CheckResult Run(const Plan& plan, size_t i) {
    // The secret as a multi-variable env secret reads: its values joined by '\n'.
    auto secrets = [this](const std::string& name) -> Result<std::string> {
      if (name != "docs_keys") return NotFound("no secret '" + name + "'");
      return env_->access_key + "\n" + env_->secret_key;
    };
    return stackcheck::RunPlanCheck(plan, plan.consistency.at(i), nullptr, secrets,
                                    CheckOptions{.batch_size = 8});
  }

  TempDir tmp_;
  std::optional<RgwEnv> env_;
  std::string bucket_;
  std::unique_ptr<S3Storage> docs_;
  std::unique_ptr<PgServer> pg_;
};

TEST_F(S3DocumentsVerifyTest, FindsRowsWithoutObjectsAndObjectsWithoutRows) {
  Plan plan = MakePlan(bucket_);
  ASSERT_EQ(plan.consistency.size(), 2u);
  CheckResult rows = Run(plan, 0);
  EXPECT_TRUE(rows.passed()) << rows.error.ToString();
  EXPECT_EQ(rows.examined, 30u);
  CheckResult objects = Run(plan, 1);
  EXPECT_TRUE(objects.passed()) << objects.error.ToString();
  EXPECT_EQ(objects.examined, 30u);

  // A row whose object is missing, an object nobody's row names, a row naming no valid key.
  std::string err;
  ASSERT_TRUE(pg_->Sql("insert into documents values (31, 'docs/31.pdf'), (32, '../up.pdf')",
                       "postgres", &err)) << err;
  ASSERT_TRUE(docs_->Delete("docs/5.pdf").ok());
  ASSERT_TRUE(docs_->Put("docs/stray.pdf", AsBytes(std::string("?"))).ok());

  rows = Run(plan, 0);
  EXPECT_TRUE(rows.error.ok()) << rows.error.ToString();
  EXPECT_EQ(Sorted(rows.first_orphans),
            (std::vector<std::string>{"../up.pdf", "docs/31.pdf", "docs/5.pdf"}));
  objects = Run(plan, 1);
  EXPECT_TRUE(objects.error.ok()) << objects.error.ToString();
  EXPECT_EQ(objects.first_orphans, (std::vector<std::string>{"docs/stray.pdf"}));
}

TEST_F(S3DocumentsVerifyTest, AMissingBucketIsAnErrorNotOrphans) {
  Plan plan = MakePlan(bucket_ + "-absent");
  CheckResult rows = Run(plan, 0);
  EXPECT_FALSE(rows.passed());
  EXPECT_FALSE(rows.error.ok());
  EXPECT_EQ(rows.orphans, 0u);
  EXPECT_NE(rows.error.message().find("component 'documents'"), std::string::npos)
      << rows.error.message();
}

}  // namespace
}  // namespace reprise::testing
