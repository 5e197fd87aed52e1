#include "plan/plan.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace reprise {
namespace {

using std::chrono::seconds;

const std::filesystem::path kExamples =
    std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples";

// Parses `text` as reprise.yaml and returns the error lines; fails the test if it loads.
std::vector<std::string> ErrorLines(const std::string& text) {
  Result<Plan> plan = ParsePlan(text, "reprise.yaml");
  EXPECT_FALSE(plan.ok()) << "plan loaded but should not have";
  if (plan.ok()) return {};
  EXPECT_EQ(plan.status().code(), Code::kInvalidArgument);
  std::vector<std::string> lines;
  std::istringstream in(plan.status().message());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The one error of `text`, which must start with `prefix` ("reprise.yaml:12:5: a.b: ").
std::string OnlyError(const std::string& text) {
  std::vector<std::string> lines = ErrorLines(text);
  EXPECT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  return lines.empty() ? "" : lines[0];
}

Plan MustParse(const std::string& text) {
  Result<Plan> plan = ParsePlan(text, "reprise.yaml");
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return plan.ok() ? std::move(plan).value() : Plan{};
}

std::vector<std::string> WarningStrings(const Plan& plan) {
  std::vector<std::string> out;
  for (const auto& w : plan.warnings) out.push_back(w.ToString());
  return out;
}

bool HasLine(const std::vector<std::string>& lines, const std::string& line) {
  for (const auto& l : lines) {
    if (l == line) return true;
  }
  return false;
}

#define EXPECT_STARTS_WITH(s, prefix) EXPECT_EQ((s).rfind((prefix), 0), 0u) << (s)
#define EXPECT_CONTAINS(s, part) EXPECT_NE((s).find(part), std::string::npos) << (s)

// A plan with everything needed, to which tests append or in which they change one line.
const char* const kBase = R"(version: 1
name: test
secrets:
  repository_password: {file: /etc/reprise/pass}
sites:
  local:
    repository: /var/backups/r
components:
  etc:
    kind: files
    class: configuration
    paths: [/etc]
)";

TEST(PlanTest, ExampleReprisePlanLoads) {
  Result<Plan> loaded = LoadPlan((kExamples / "reprise.yaml").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Plan& plan = *loaded;
  EXPECT_EQ(plan.name, "rag-enterprise");
  EXPECT_EQ(plan.objectives.rto.minor, seconds(15 * 60));
  EXPECT_EQ(plan.objectives.rto.major, seconds(2 * 3600));
  EXPECT_EQ(plan.objectives.rto.disaster, seconds(8 * 3600));
  ASSERT_NE(plan.objectives.FindClass("transactional"), nullptr);
  EXPECT_EQ(plan.objectives.FindClass("transactional")->rpo, seconds(300));
  EXPECT_EQ(plan.objectives.availability, "99.9%");

  ASSERT_EQ(plan.tiers.size(), 3u);
  EXPECT_EQ(plan.tiers[0].name, "critical");
  EXPECT_EQ(plan.tiers[0].components, (std::vector<std::string>{"postgres", "keycloak", "redis"}));
  EXPECT_EQ(plan.tiers[2].components, (std::vector<std::string>{"k8s-config", "ops-files"}));

  ASSERT_EQ(plan.sites.size(), 3u);
  EXPECT_EQ(plan.sites[0].name, "primary");
  EXPECT_EQ(plan.sites[1].name, "dr");
  EXPECT_EQ(plan.sites[2].name, "cold");
  EXPECT_EQ(plan.sites[0].role, SiteRole::kPrimary);
  EXPECT_EQ(plan.sites[1].role, SiteRole::kWarm);
  EXPECT_EQ(plan.sites[2].role, SiteRole::kCold);
  EXPECT_EQ(plan.PrimarySite(), &plan.sites[0]);
  EXPECT_EQ(plan.sites[1].credentials, "s3_dr");
  EXPECT_EQ(plan.RetentionFor(plan.sites[0]),
            (RetentionPolicy{.keep_last = 10, .keep_within_seconds = 7 * 86400}));
  EXPECT_EQ(plan.RetentionFor(plan.sites[1]),
            (RetentionPolicy{.keep_daily = 30, .keep_weekly = 8, .keep_monthly = 12}));
  EXPECT_EQ(plan.RetentionFor(plan.sites[2]),
            (RetentionPolicy{.keep_daily = 30, .keep_monthly = 12}));  // top-level default
  EXPECT_EQ(plan.sites[0].endpoints.redis, "redis://redis-master:6379");
  ASSERT_FALSE(plan.sites[0].health.empty());
  EXPECT_EQ(plan.sites[0].health[0].expect_status, 200);

  ASSERT_NE(plan.RepositoryPassword(), nullptr);
  EXPECT_EQ(plan.RepositoryPassword()->file, "/secrets/backup-passphrase.txt");
  ASSERT_NE(plan.FindSecret("s3_dr"), nullptr);
  EXPECT_EQ(plan.FindSecret("s3_dr")->source, Secret::Source::kEnv);
  EXPECT_EQ(plan.FindSecret("s3_dr")->env,
            (std::vector<std::string>{"DR_AWS_ACCESS_KEY_ID", "DR_AWS_SECRET_ACCESS_KEY"}));
  EXPECT_EQ(plan.FindSecret("slack_webhook")->env, std::vector<std::string>{"SLACK_WEBHOOK_URL"});

  ASSERT_EQ(plan.components.size(), 7u);
  const ComponentSpec* files = plan.FindComponent("ops-files");
  ASSERT_NE(files, nullptr);
  EXPECT_EQ(files->kind, ComponentKind::kFiles);
  EXPECT_EQ(files->files.paths, (std::vector<std::string>{"/scripts", "/config"}));
  EXPECT_EQ(files->files.excludes.size(), 3u);
  EXPECT_TRUE(files->files.one_file_system);
  const ComponentSpec* redis = plan.FindComponent("redis");
  ASSERT_NE(redis, nullptr);
  EXPECT_EQ(redis->kind, ComponentKind::kRedis);
  EXPECT_EQ(redis->data_class, "transactional");
  EXPECT_EQ(redis->redis.method, RedisSpec::Method::kReplication);
  EXPECT_EQ(redis->redis.connection, "redis://redis-master:6379");
  EXPECT_EQ(redis->redis.password, "redis_password");
  const ComponentSpec* k8s = plan.FindComponent("k8s-config");
  ASSERT_NE(k8s, nullptr);
  EXPECT_EQ(k8s->command.redact, "kubernetes-secrets");
  EXPECT_NE(k8s->command.backup.find("kubectl get"), std::string::npos);

  EXPECT_TRUE(plan.deferred.contains("schedules"));
  EXPECT_FALSE(plan.deferred.contains("failover"));

  std::vector<std::string> w = WarningStrings(plan);
  std::string file = (kExamples / "reprise.yaml").string();
  auto has_warning = [&](const std::string& suffix) {
    for (const auto& s : w) {
      if (s.size() >= suffix.size() &&
          s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0 &&
          s.rfind(file + ":", 0) == 0) {
        return true;
      }
    }
    return false;
  };
  EXPECT_FALSE(has_warning("is not built yet; backups of it will fail"))
      << ::testing::PrintToString(w);
  ASSERT_EQ(plan.consistency.size(), 2u);
  EXPECT_EQ(plan.consistency[0].each.component, "qdrant");
  EXPECT_EQ(plan.consistency[0].each.field, "chunk_id");
  EXPECT_EQ(plan.consistency[1].exists_in.component, "documents");
  EXPECT_EQ(plan.FindComponent("documents")->s3.credentials, "minio_documents");
  EXPECT_FALSE(has_warning("sites.primary.health: accepted but not used yet (failover is not "
                           "built)"));
  ASSERT_TRUE(plan.failover.dns.has_value());
  EXPECT_EQ(plan.failover.dns->record, "api.rag-system.example.");
  EXPECT_EQ(plan.failover.dns->zone, "rag-system.example.");
  EXPECT_EQ(plan.failover.dns->tsig_secret, "dns_tsig");
  EXPECT_EQ(plan.failover.max_lag_bytes, 16u * 1000 * 1000);
  EXPECT_EQ(plan.sites[1].dns_value, "5.6.7.8");
  ASSERT_NE(plan.notifications.FindChannel("slack"), nullptr);
  EXPECT_EQ(plan.notifications.FindChannel("slack")->kind, NotifyChannel::Kind::kSlack);
  EXPECT_EQ(plan.notifications.FindChannel("slack")->url_secret, "slack_webhook");
  EXPECT_EQ(plan.notifications.FindChannel("ops-mail")->to,
            std::vector<std::string>{"ops-team@company.com"});
  EXPECT_TRUE(has_warning("schedules: not built yet; ignored"));
  EXPECT_FALSE(
      has_warning("components.ops-files: kind 'files' is not built yet; backups of it "
                  "will fail"));
}

TEST(PlanTest, ExampleMinimalPlanLoadsWithDefaultsAndNoWarnings) {
  Result<Plan> loaded = LoadPlan((kExamples / "minimal.yaml").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Plan& plan = *loaded;
  EXPECT_TRUE(plan.warnings.empty()) << ::testing::PrintToString(WarningStrings(plan));
  EXPECT_EQ(plan.objectives.rto.minor, seconds(15 * 60));
  EXPECT_EQ(plan.objectives.rto.major, seconds(2 * 3600));
  EXPECT_EQ(plan.objectives.rto.disaster, seconds(8 * 3600));
  ASSERT_EQ(plan.objectives.rpo.size(), 4u);
  EXPECT_EQ(plan.objectives.rpo[0].name, "transactional");
  EXPECT_EQ(plan.objectives.rpo[0].rpo, seconds(5 * 60));
  EXPECT_EQ(plan.objectives.FindClass("documents")->rpo, seconds(3600));
  EXPECT_EQ(plan.objectives.FindClass("embeddings")->rpo, seconds(3600));
  EXPECT_EQ(plan.objectives.FindClass("configuration")->rpo, seconds(24 * 3600));
  ASSERT_EQ(plan.tiers.size(), 1u);
  EXPECT_EQ(plan.tiers[0].name, "all");
  EXPECT_EQ(plan.tiers[0].components, std::vector<std::string>{"system"});
  ASSERT_EQ(plan.sites.size(), 1u);
  EXPECT_EQ(plan.sites[0].role, SiteRole::kPrimary);
}

TEST(PlanTest, MissingFileIsNotFound) {
  Result<Plan> plan = LoadPlan((kExamples / "no-such-plan.yaml").string());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), Code::kNotFound);
  EXPECT_CONTAINS(plan.status().message(), "no-such-plan.yaml");
}

TEST(PlanTest, UnknownTopLevelKeySuggestsClosest) {
  std::string e = OnlyError(std::string(kBase) + "retension: {keep_daily: 7}\n");
  EXPECT_EQ(e, "reprise.yaml:13:1: retension: unknown key 'retension' (did you mean 'retention'?)");
}

TEST(PlanTest, UnknownNestedKeySuggestsClosest) {
  std::string text = kBase;
  text.replace(text.find("    repository:"), 15, "    repositry:");
  std::vector<std::string> lines = ErrorLines(text);
  EXPECT_TRUE(HasLine(lines,
                      "reprise.yaml:7:5: sites.local.repositry: unknown key 'repositry' "
                      "(did you mean 'repository'?)"))
      << ::testing::PrintToString(lines);
  // The site now lacks its repository, which is reported too.
  EXPECT_TRUE(HasLine(lines,
                      "reprise.yaml:7:5: sites.local.repository: required key is "
                      "missing; HINT: write e.g. 'repository: file:///backups/rag'"))
      << ::testing::PrintToString(lines);
}

TEST(PlanTest, UnknownKeyFarFromAllListsChoices) {
  std::string e = OnlyError(std::string(kBase) + "zzzzzzzzzz: 1\n");
  EXPECT_STARTS_WITH(e,
                     "reprise.yaml:13:1: zzzzzzzzzz: unknown key 'zzzzzzzzzz' (expected one "
                     "of: version, name, objectives,");
}

TEST(PlanTest, UnknownKindNamesLineFieldAndChoices) {
  std::string text = kBase;
  text.replace(text.find("kind: files"), 11, "kind: filez");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:10:11: components.etc.kind: unknown kind 'filez' (did you mean 'files'? "
            "expected one of: files, postgres, redis, qdrant, s3, command)");
}

TEST(PlanTest, BadDuration) {
  std::string e = OnlyError(std::string(kBase) +
                            "objectives:\n"
                            "  rto: {minor: 15m, major: 2 hours}\n");
  EXPECT_STARTS_WITH(e, "reprise.yaml:14:28: objectives.rto.major: invalid duration '2 hours'");
  EXPECT_CONTAINS(e, "HINT:");
}

TEST(PlanTest, BadDurationInRetention) {
  std::string text = kBase;
  text.replace(text.find("    repository: /var/backups/r\n"), 31,
               "    repository: /var/backups/r\n    retention: {keep_within: 10}\n");
  EXPECT_STARTS_WITH(OnlyError(text),
                     "reprise.yaml:8:30: sites.local.retention.keep_within: "
                     "invalid duration '10': the number has no unit");
}

TEST(PlanTest, ClassNotInObjectives) {
  std::string text = kBase;
  text.replace(text.find("class: configuration"), 20, "class: configuraton");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:11:12: components.etc.class: class 'configuraton' is not defined in "
            "objectives.rpo (did you mean 'configuration'?)");
  text = kBase;
  text.replace(text.find("class: configuration"), 20, "class: logs");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:11:12: components.etc.class: class 'logs' is not defined in "
            "objectives.rpo (defined: transactional, documents, embeddings, configuration)");
}

TEST(PlanTest, PlanRpoReplacesDefaultClasses) {
  std::string text = std::string(kBase) + "objectives:\n  rpo: {logs: 1d}\n";
  std::vector<std::string> lines = ErrorLines(text);
  EXPECT_TRUE(HasLine(lines,
                      "reprise.yaml:11:12: components.etc.class: class 'configuration' is "
                      "not defined in objectives.rpo (defined: logs)"))
      << ::testing::PrintToString(lines);
  text.replace(text.find("class: configuration"), 20, "class: logs");
  Plan plan = MustParse(text);
  ASSERT_EQ(plan.objectives.rpo.size(), 1u);
  EXPECT_EQ(plan.objectives.rpo[0].rpo, seconds(86400));
  // RTO keeps its defaults when only the RPO is given.
  EXPECT_EQ(plan.objectives.rto.major, seconds(7200));
}

TEST(PlanTest, TierNamingMissingComponent) {
  std::string e = OnlyError(std::string(kBase) +
                            "tiers:\n"
                            "  - name: first\n"
                            "    components: [etc, ect]\n");
  EXPECT_EQ(e,
            "reprise.yaml:15:23: tiers[0].components[1]: component 'ect' is not defined in "
            "components (did you mean 'etc'?)");
}

TEST(PlanTest, ComponentInTwoTiers) {
  std::string e = OnlyError(std::string(kBase) +
                            "tiers:\n"
                            "  - name: first\n"
                            "    components: [etc]\n"
                            "  - name: second\n"
                            "    components: [etc]\n");
  EXPECT_EQ(e,
            "reprise.yaml:17:18: tiers[1].components[0]: component 'etc' is already in tier "
            "'first'; a component belongs to exactly one tier");
}

TEST(PlanTest, ComponentInNoTierGoesToLastTierWithWarning) {
  std::string text = std::string(kBase) +
                     "  web:\n"
                     "    kind: files\n"
                     "    class: documents\n"
                     "    paths: [/srv/www]\n"
                     "tiers:\n"
                     "  - {name: first, components: [web]}\n"
                     "  - {name: second, components: []}\n";
  Plan plan = MustParse(text);
  ASSERT_EQ(plan.tiers.size(), 2u);
  EXPECT_EQ(plan.tiers[0].components, std::vector<std::string>{"web"});
  EXPECT_EQ(plan.tiers[1].components, std::vector<std::string>{"etc"});
  std::vector<std::string> w = WarningStrings(plan);
  EXPECT_TRUE(HasLine(w,
                      "reprise.yaml:9:3: components.etc: not in any tier; added to the last "
                      "tier 'second'"))
      << ::testing::PrintToString(w);
}

TEST(PlanTest, SecretWithInlineValueIsRefused) {
  std::string text = kBase;
  text.replace(text.find("{file: /etc/reprise/pass}"), 25, "{value: hunter2}");
  std::string e = OnlyError(text);
  EXPECT_STARTS_WITH(e,
                     "reprise.yaml:4:25: secrets.repository_password.value: secret values may "
                     "not be written in the plan; HINT:");
  text = kBase;
  text.replace(text.find("{file: /etc/reprise/pass}"), 25, "hunter2");
  e = OnlyError(text);
  EXPECT_STARTS_WITH(e,
                     "reprise.yaml:4:24: secrets.repository_password: secret values may not "
                     "be written in the plan; HINT:");
  // The value itself is never echoed back.
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}

TEST(PlanTest, SecretNeedsExactlyOneSource) {
  std::string text = kBase;
  text.replace(text.find("{file: /etc/reprise/pass}"), 25, "{file: /x, env: X}");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:4:24: secrets.repository_password: give either 'file' "
            "or 'env', not both");
  text = kBase;
  text.replace(text.find("{file: /etc/reprise/pass}"), 25, "{file: pass.txt}");
  EXPECT_STARTS_WITH(OnlyError(text),
                     "reprise.yaml:4:31: secrets.repository_password.file: "
                     "'pass.txt' is not an absolute path");
  text = kBase;
  text.replace(text.find("{file: /etc/reprise/pass}"), 25, "{env: [OK_VAR, 1BAD]}");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:4:39: secrets.repository_password.env[1]: '1BAD' is "
            "not a valid environment variable name");
}

TEST(PlanTest, CredentialsMustNameASecret) {
  std::string text = kBase;
  text.replace(text.find("    repository: /var/backups/r\n"), 31,
               "    repository: /var/backups/r\n    credentials: s3_dr\n");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:8:18: sites.local.credentials: secret 's3_dr' is not "
            "defined in secrets (defined: repository_password)");
}

TEST(PlanTest, SeveralErrorsAreAllReportedInOrder) {
  std::string text = R"(version: 1
name: test
objectives:
  rpo: {documents: soon}
sites:
  local:
    repository: relative/dir
    retention: {keep_daily: -1}
components:
  Etc:
    kind: files
    class: documents
    paths: /etc
tiers:
  - name: first
    components: [nope]
)";
  std::vector<std::string> lines = ErrorLines(text);
  ASSERT_EQ(lines.size(), 6u) << ::testing::PrintToString(lines);
  EXPECT_STARTS_WITH(lines[0],
                     "reprise.yaml:4:20: objectives.rpo.documents: invalid duration "
                     "'soon'");
  EXPECT_STARTS_WITH(lines[1],
                     "reprise.yaml:7:17: sites.local.repository: 'relative/dir' is "
                     "neither a URL nor an absolute path");
  EXPECT_EQ(lines[2],
            "reprise.yaml:8:29: sites.local.retention.keep_daily: -1 is out of range "
            "(0 to 2147483647)");
  EXPECT_STARTS_WITH(lines[3], "reprise.yaml:10:3: components.Etc: invalid component name 'Etc'");
  EXPECT_EQ(lines[4], "reprise.yaml:13:12: components.Etc.paths: expected a list, got '/etc'");
  EXPECT_EQ(lines[5],
            "reprise.yaml:16:18: tiers[0].components[0]: component 'nope' is not "
            "defined in components (defined: Etc)");
}

TEST(PlanTest, BrokenDefinitionsAreNotReportedAgainAsMissing) {
  // 'docs' has a bad kind and 'pw' an inline value: references to them add no errors.
  std::string text = R"(version: 1
name: test
secrets:
  pw: {value: x}
sites:
  s: {repository: /r, credentials: pw}
components:
  docs: {kind: filez, class: documents}
  etc: {kind: files, class: documents, paths: [/etc]}
tiers:
  - {name: one, components: [docs, etc]}
)";
  std::vector<std::string> lines = ErrorLines(text);
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_STARTS_WITH(lines[0],
                     "reprise.yaml:4:8: secrets.pw.value: secret values may not be "
                     "written");
  EXPECT_STARTS_WITH(lines[1], "reprise.yaml:8:16: components.docs.kind: unknown kind 'filez'");
}

TEST(PlanTest, RequiredKeys) {
  std::vector<std::string> lines = ErrorLines("sites: {}\n");
  ASSERT_EQ(lines.size(), 3u) << ::testing::PrintToString(lines);
  EXPECT_STARTS_WITH(lines[0], "reprise.yaml:1:1: version: required key is missing");
  EXPECT_STARTS_WITH(lines[1], "reprise.yaml:1:1: name: required key is missing");
  EXPECT_STARTS_WITH(lines[2], "reprise.yaml:1:1: components: required key is missing");

  // Without a kind, the other keys ('path' here) are not checked: which are valid depends on it.
  lines = ErrorLines("version: 1\nname: t\ncomponents:\n  a: {path: /x}\n");
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_STARTS_WITH(lines[0], "reprise.yaml:4:6: components.a.class: required key is missing");
  EXPECT_STARTS_WITH(lines[1],
                     "reprise.yaml:4:6: components.a.kind: required key is missing "
                     "(expected one of: files,");
}

TEST(PlanTest, FilesComponentKeys) {
  std::string text = R"(version: 1
name: t
components:
  a: {kind: files, class: documents, pats: [/x]}
  b: {kind: files, class: documents, paths: []}
  c: {kind: files, class: documents, paths: [/ok, rel], one_file_system: yes}
)";
  std::vector<std::string> lines = ErrorLines(text);
  ASSERT_EQ(lines.size(), 5u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0],
            "reprise.yaml:4:6: components.a.paths: required key is missing; HINT: list "
            "the directories to save, e.g. 'paths: [/etc/rag-system]'");
  EXPECT_EQ(lines[1],
            "reprise.yaml:4:38: components.a.pats: unknown key 'pats' (did you mean "
            "'paths'?)");
  EXPECT_EQ(lines[2], "reprise.yaml:5:45: components.b.paths: must list at least one path");
  EXPECT_STARTS_WITH(lines[3],
                     "reprise.yaml:6:51: components.c.paths[1]: 'rel' is not an "
                     "absolute path");
  EXPECT_EQ(lines[4],
            "reprise.yaml:6:74: components.c.one_file_system: expected true or false, "
            "got 'yes'");
}

TEST(PlanTest, QdrantAndS3Components) {
  std::string text = std::string(kBase) +
                     "  vectors:\n"
                     "    kind: qdrant\n"
                     "    class: embeddings\n"
                     "    url: http://127.0.0.1:6333/\n"
                     "    collections: [a, b]\n"
                     "    restore_method: url\n"
                     "  docs:\n"
                     "    kind: s3\n"
                     "    class: documents\n"
                     "    url: s3://bucket/pre?endpoint=http://127.0.0.1:7480\n"
                     "    incremental: none\n"
                     "    connections: 4\n";
  Plan plan = MustParse(text);
  const ComponentSpec* q = plan.FindComponent("vectors");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->kind, ComponentKind::kQdrant);
  EXPECT_EQ(q->qdrant.url, "http://127.0.0.1:6333");
  EXPECT_EQ(q->qdrant.collections, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q->qdrant.restore_method, QdrantSpec::RestoreMethod::kUrl);
  const ComponentSpec* d = plan.FindComponent("docs");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->s3.url, "s3://bucket/pre?endpoint=http://127.0.0.1:7480");
  EXPECT_FALSE(d->s3.incremental);
  EXPECT_EQ(d->s3.connections, 4);
}

TEST(PlanTest, QdrantAndS3ComponentErrors) {
  std::string text = std::string(kBase) +
                     "  vectors: {kind: qdrant, class: embeddings, url: 'qdrant:6333'}\n"
                     "  docs: {kind: s3, class: documents, url: 'https://b'}\n"
                     "  none: {kind: qdrant, class: embeddings}\n";
  Result<Plan> r = ParsePlan(text, "reprise.yaml");
  ASSERT_FALSE(r.ok());
  std::string m(r.status().message());
  EXPECT_CONTAINS(m, "components.vectors.url: 'qdrant:6333' is not an http(s) URL");
  EXPECT_CONTAINS(m, "components.docs.url: must be an s3:// URL");
  EXPECT_CONTAINS(m, "components.none.url: required key is missing");
}

TEST(PlanTest, ConsistencyChecks) {
  std::string base = std::string(kBase) +
                     "  db: {kind: postgres, class: transactional, connection: 'host=h'}\n"
                     "  vectors: {kind: qdrant, class: embeddings, url: 'http://q:6333'}\n";
  Plan plan = MustParse(base +
                        "consistency:\n"
                        "  - name: vectors have rows\n"
                        "    each: {vectors: rag, payload: chunk_id}\n"
                        "    exists_in: {db: 'select 1 from chunks where id = $1'}\n");
  ASSERT_EQ(plan.consistency.size(), 1u);
  EXPECT_EQ(plan.consistency[0].name, "vectors have rows");
  EXPECT_EQ(plan.consistency[0].each.query, "rag");
  EXPECT_EQ(plan.consistency[0].exists_in.query, "select 1 from chunks where id = $1");

  Result<Plan> bad = ParsePlan(base +
                                   "consistency:\n"
                                   "  - each: {etc: x}\n"
                                   "    exists_in: {nope: y}\n"
                                   "  - each: {vectors: rag}\n"
                                   "    exists_in: {db: 'select 1'}\n",
                               "reprise.yaml");
  ASSERT_FALSE(bad.ok());
  std::string m(bad.status().message());
  EXPECT_CONTAINS(m, "consistency[0].each.etc: component 'etc' is of kind 'files'");
  EXPECT_CONTAINS(m, "consistency[0].exists_in.nope: 'nope' is not a component");
  EXPECT_CONTAINS(m, "consistency[1]: component 'vectors' is a qdrant collection");
}

TEST(PlanTest, TierHealthChecks) {
  Plan plan = MustParse(std::string(kBase) +
                        "tiers:\n"
                        "  - name: one\n"
                        "    components: [etc]\n"
                        "    health:\n"
                        "      - {tcp: '127.0.0.1:5432', timeout: 2s}\n");
  ASSERT_EQ(plan.tiers.size(), 1u);
  ASSERT_EQ(plan.tiers[0].health.size(), 1u);
  EXPECT_EQ(plan.tiers[0].health[0].kind, HealthCheckSpec::Kind::kTcp);
}

TEST(PlanTest, SiteRoles) {
  // First site is primary by default, the others cold.
  Plan plan =
      MustParse(std::string(kBase) + "  dr: {kind: files, class: documents, paths: [/d]}\n");
  EXPECT_EQ(plan.sites[0].role, SiteRole::kPrimary);
  std::string two_sites = kBase;
  two_sites.replace(two_sites.find("components:"), 11,
                    "  far: {repository: s3://b/p}\n  near: {repository: /n, role: primary}\n"
                    "components:");
  plan = MustParse(two_sites);
  ASSERT_EQ(plan.sites.size(), 3u);
  // 'near' claims primary, so 'local' (first) does not get it by default.
  EXPECT_EQ(plan.sites[0].role, SiteRole::kCold);
  EXPECT_EQ(plan.sites[1].role, SiteRole::kCold);
  EXPECT_EQ(plan.sites[2].role, SiteRole::kPrimary);
  EXPECT_EQ(plan.PrimarySite()->name, "near");

  std::string dup = kBase;
  dup.replace(dup.find("components:"), 11,
              "  a: {repository: /a, role: primary}\n  b: {repository: /b, role: primary}\n"
              "components:");
  EXPECT_EQ(OnlyError(dup),
            "reprise.yaml:9:3: sites.b: site 'a' is already the primary; at most "
            "one site may have role primary");

  std::string bad = kBase;
  bad.replace(bad.find("components:"), 11, "  a: {repository: /a, role: hot}\ncomponents:");
  EXPECT_EQ(OnlyError(bad),
            "reprise.yaml:8:29: sites.a.role: unknown role 'hot' (expected one "
            "of: primary, warm, cold)");
  bad.replace(bad.find("role: hot"), 9, "role: wram");
  EXPECT_EQ(OnlyError(bad),
            "reprise.yaml:8:29: sites.a.role: unknown role 'wram' (did you mean "
            "'warm'? expected one of: primary, warm, cold)");
}

TEST(PlanTest, DeferredSiteKeysAndSectionsWarn) {
  std::string text = kBase;
  text.replace(text.find("    repository: /var/backups/r\n"), 31,
               "    repository: /var/backups/r\n    dns_value: 1.2.3.4\n");
  text += "schedules: {nightly: {cron: \"0 2 * * *\"}}\n";
  Plan plan = MustParse(text);
  EXPECT_EQ(plan.sites[0].dns_value, "1.2.3.4");
  EXPECT_EQ(plan.deferred["schedules"]["nightly"]["cron"], "0 2 * * *");
  std::vector<std::string> w = WarningStrings(plan);
  ASSERT_EQ(w.size(), 1u) << ::testing::PrintToString(w);
  EXPECT_EQ(w[0], "reprise.yaml:14:1: schedules: not built yet; ignored");
}

TEST(PlanTest, WrongTypes) {
  std::vector<std::string> lines = ErrorLines(R"(version: one
name: [a]
secrets: []
components:
  a: {kind: files, class: documents, paths: [/x, {b: c}]}
)");
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "reprise.yaml:1:10: version: expected a whole number, got 'one'");
  EXPECT_EQ(lines[1], "reprise.yaml:2:7: name: expected a string, got a list");
  EXPECT_EQ(lines[2], "reprise.yaml:3:10: secrets: expected a map (key: value), got a list");
  EXPECT_EQ(lines[3], "reprise.yaml:5:50: components.a.paths[1]: expected a string, got a map");
}

TEST(PlanTest, UnsupportedVersion) {
  std::string text = kBase;
  text.replace(0, 10, "version: 2");
  EXPECT_EQ(OnlyError(text),
            "reprise.yaml:1:10: version: unsupported plan version 2; this "
            "reprise reads version 1");
}

TEST(PlanTest, InvalidYamlNamesPosition) {
  std::string e = OnlyError("version: 1\nname: [unclosed\ncomponents: {}\n");
  EXPECT_STARTS_WITH(e, "reprise.yaml:");
  EXPECT_CONTAINS(e, ": invalid YAML: ");
}

TEST(PlanTest, EmptyAndMultiDocument) {
  EXPECT_STARTS_WITH(OnlyError(""), "reprise.yaml: the plan is empty");
  EXPECT_STARTS_WITH(OnlyError("# only a comment\n"), "reprise.yaml: the plan is empty");
  EXPECT_STARTS_WITH(OnlyError(std::string(kBase) + "---\nversion: 1\n"),
                     "reprise.yaml:14:1: the plan must be one YAML document");
  EXPECT_STARTS_WITH(OnlyError("- a\n- b\n"), "reprise.yaml:1:1: the plan must be a map");
}

TEST(PlanTest, DuplicateKey) {
  std::string e = OnlyError(std::string(kBase) + "  etc:\n    kind: files\n");
  EXPECT_EQ(e, "reprise.yaml:13:3: components.etc: duplicate key; each key may appear once");
}

TEST(PlanTest, ObjectivesValidation) {
  std::vector<std::string> lines = ErrorLines(std::string(kBase) +
                                              "objectives:\n"
                                              "  rto: {minor: 0s, severe: 1h}\n"
                                              "  availability: 101%\n");
  ASSERT_EQ(lines.size(), 3u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "reprise.yaml:14:16: objectives.rto.minor: must be longer than 0s");
  EXPECT_EQ(lines[1],
            "reprise.yaml:14:20: objectives.rto.severe: unknown key 'severe' "
            "(expected one of: minor, major, disaster)");
  EXPECT_EQ(lines[2],
            "reprise.yaml:15:17: objectives.availability: expected a percentage such "
            "as '99.9%', got '101%'");

  Plan plan = MustParse(std::string(kBase) + "objectives:\n  rto: {minor: 3h}\n");
  EXPECT_EQ(plan.objectives.rto.minor, seconds(3 * 3600));
  EXPECT_TRUE(HasLine(WarningStrings(plan),
                      "reprise.yaml:14:8: objectives.rto: expected minor "
                      "<= major <= disaster, got 3h / 2h / 8h"));
}

TEST(PlanTest, RetentionPolicies) {
  std::string text = std::string(kBase) +
                     "retention:\n"
                     "  keep_last: 3\n"
                     "  keep_hourly: 24\n"
                     "  keep_daily: 7\n"
                     "  keep_weekly: 4\n"
                     "  keep_monthly: 12\n"
                     "  keep_yearly: 2\n"
                     "  keep_within: 1w2d\n";
  Plan plan = MustParse(text);
  RetentionPolicy expected{.keep_last = 3,
                           .keep_hourly = 24,
                           .keep_daily = 7,
                           .keep_weekly = 4,
                           .keep_monthly = 12,
                           .keep_yearly = 2,
                           .keep_within_seconds = 9 * 86400};
  ASSERT_TRUE(plan.retention.has_value());
  EXPECT_EQ(*plan.retention, expected);
  EXPECT_EQ(plan.RetentionFor(plan.sites[0]), expected);  // the site has none of its own

  EXPECT_EQ(OnlyError(std::string(kBase) + "retention: {keep_dayly: 7}\n"),
            "reprise.yaml:13:13: retention.keep_dayly: unknown key 'keep_dayly' (did you mean "
            "'keep_daily'?)");
  Plan empty = MustParse(std::string(kBase) + "retention: {}\n");
  EXPECT_TRUE(empty.retention->empty());
  EXPECT_TRUE(HasLine(WarningStrings(empty),
                      "reprise.yaml:13:12: retention: the policy keeps "
                      "nothing in particular; prune will refuse to use "
                      "it"));
}

TEST(PlanTest, NamesAreChecked) {
  std::string e = OnlyError(std::string(kBase) +
                            "  My_Files: {kind: files, class: documents, "
                            "paths: [/x]}\n");
  EXPECT_STARTS_WITH(e,
                     "reprise.yaml:13:3: components.My_Files: invalid component name "
                     "'My_Files'; HINT: use lowercase letters, digits");
}

TEST(PlanTest, AliasBombIsRefused) {
  // Seven levels of ten aliases each: 10^7 values once expanded.
  std::string text = std::string(kBase) + "schedules:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (char n : std::string("bcdefg")) {
    std::string name(1, n);
    text += "  " + name + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", *" : "*") + prev;
    text += "]\n";
    prev = name;
  }
  std::string e = OnlyError(text);
  EXPECT_STARTS_WITH(e, "reprise.yaml:14:3: schedules: too deeply nested or too large");
}


const char* const kFailoverPlan = R"(version: 1
name: test
secrets:
  repository_password: {file: /etc/reprise/pass}
  pg_admin: {env: PGPASSWORD_ADMIN}
  tsig: {file: /etc/reprise/tsig}
sites:
  main:
    repository: /var/backups/r
    endpoints: {postgres: "host=127.0.0.1 port=5432 user=postgres", postgres_password: pg_admin,
                redis: "redis://127.0.0.1:6379"}
    health:
      - {http: "http://127.0.0.1:8080/health", expect_body: ok, timeout: 2s}
      - {postgres: "host=127.0.0.1 port=5432", role: primary, password: pg_admin}
    dns_value: 10.0.0.1
    monitoring: ["127.0.0.1:9187"]
  dr:
    repository: /var/backups/dr
    role: warm
    health: [{redis: "redis://127.0.0.1:6380", role: replica, max_lag: 1MiB}, {tcp: "db:5432"}]
    dns_value: 10.0.0.2
components:
  etc: {kind: files, class: configuration, paths: [/etc]}
failover:
  dns: {server: "127.0.0.1:53", zone: test.reprise, record: api.test.reprise, ttl: 30,
        tsig: {secret: tsig}}
  max_lag: 1MB
  catchup_timeout: 10s
  monitoring_file: /etc/prometheus/rag.json
  monitor: {interval: 2s, failure_threshold: 3, quorum: {etcd: ["http://127.0.0.1:2379"]}}
notifications:
  channels:
    ops: {webhook: "http://127.0.0.1:9000/hook"}
    mail: {smtp: "smtp://127.0.0.1:25", from: reprise@test, to: [ops@test]}
  routes:
    - {on: ["failover.*"], to: [ops, mail]}
)";

TEST(PlanTest, FailoverSectionsParse) {
  Plan plan = MustParse(kFailoverPlan);
  EXPECT_TRUE(plan.warnings.empty()) << ::testing::PrintToString(WarningStrings(plan));
  const Site& main = plan.sites[0];
  EXPECT_EQ(main.endpoints.postgres, "host=127.0.0.1 port=5432 user=postgres");
  EXPECT_EQ(main.endpoints.postgres_password, "pg_admin");
  ASSERT_EQ(main.health.size(), 2u);
  EXPECT_EQ(main.health[0].kind, HealthCheckSpec::Kind::kHttp);
  EXPECT_EQ(main.health[0].timeout, std::chrono::seconds(2));
  EXPECT_EQ(main.health[0].name, "http http://127.0.0.1:8080/health");
  EXPECT_EQ(main.health[1].expect_primary, std::optional<bool>(true));
  const Site& dr = plan.sites[1];
  ASSERT_EQ(dr.health.size(), 2u);
  EXPECT_EQ(dr.health[0].max_lag_bytes, std::optional<uint64_t>(1u << 20));
  EXPECT_EQ(dr.health[0].expect_primary, std::optional<bool>(false));
  EXPECT_EQ(dr.health[1].kind, HealthCheckSpec::Kind::kTcp);
  ASSERT_TRUE(plan.failover.dns);
  EXPECT_EQ(plan.failover.dns->record, "api.test.reprise.");
  EXPECT_EQ(plan.failover.dns->ttl, 30);
  EXPECT_EQ(plan.failover.max_lag_bytes, 1000000u);
  EXPECT_EQ(plan.failover.monitor.etcd, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(plan.failover.monitor.interval, std::chrono::seconds(2));
  ASSERT_EQ(plan.notifications.routes.size(), 1u);
  EXPECT_EQ(plan.notifications.routes[0].to, (std::vector<std::string>{"ops", "mail"}));
}

TEST(PlanTest, FailoverSectionsRefuseBadInput) {
  auto with = [](std::string from, std::string to) {
    std::string text = kFailoverPlan;
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  };
  EXPECT_EQ(OnlyError(with("user=postgres\"", "user=postgres password=x\"")),
            "reprise.yaml:10:27: sites.main.endpoints.postgres: passwords may not be written "
            "in the plan; HINT: remove it and name a secret in postgres_password");
  EXPECT_EQ(OnlyError(with("{tcp: \"db:5432\"}", "{tcp: \"db:5432\", http: \"http://x\"}")),
            "reprise.yaml:20:79: sites.dr.health[1]: a health check has exactly one of: http, "
            "tcp, postgres, redis, command");
  EXPECT_EQ(OnlyError(with("{tcp: \"db:5432\"}", "{tcp: db}")),
            "reprise.yaml:20:85: sites.dr.health[1].tcp: expected host:port, got 'db'");
  EXPECT_EQ(OnlyError(with("to: [ops, mail]", "to: [ops, mial]")),
            "reprise.yaml:36:38: notifications.routes: channel 'mial' is not defined in "
            "notifications.channels (did you mean 'mail'?)");
  EXPECT_EQ(OnlyError(with("record: api.test.reprise", "record: api.other")),
            "reprise.yaml:25:8: failover.dns.record: 'api.other.' is not inside zone "
            "'test.reprise.'");
  EXPECT_EQ(OnlyError(with("password: pg_admin}", "password: pg_admn}")),
            "reprise.yaml:14:73: sites.main.health[1].password: secret 'pg_admn' is not "
            "defined in secrets (did you mean 'pg_admin'?)");
  EXPECT_EQ(OnlyError(with("{server: \"127.0.0.1:53\",", "{provider: route53, server: \"x\",")),
            "reprise.yaml:25:8: failover.dns.hosted_zone_id: the route53 provider needs the "
            "hosted zone's id, e.g. 'Z0123456789ABC'");
  Plan r53 = MustParse(with("{server: \"127.0.0.1:53\",",
                            "{provider: route53, hosted_zone_id: Z1, credentials: tsig,"));
  ASSERT_TRUE(r53.failover.dns);
  EXPECT_EQ(r53.failover.dns->provider, DnsSpec::Provider::kRoute53);
  EXPECT_EQ(r53.failover.dns->hosted_zone_id, "Z1");
  EXPECT_EQ(r53.failover.dns->credentials_secret, "tsig");
  EXPECT_EQ(OnlyError(with("from: reprise@test, ", "")),
            "reprise.yaml:34:11: notifications.channels.mail: an smtp channel needs 'from' and "
            "'to'");
}

}  // namespace
}  // namespace reprise
