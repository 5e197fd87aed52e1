// The plan (reprise.yaml): what to save, where, how often it must be recoverable and in what
// order to bring it back. docs/plan-reference.md describes every key; keep it in step.
//
// LoadPlan/ParsePlan read and validate a plan in one pass, cross references included (a tier
// naming a missing component, a class not in objectives.rpo, credentials naming a missing
// secret). On failure they return kInvalidArgument whose message lists EVERY problem, one per
// line, sorted by position, each as "file:line:col: field.path: message". On success the plan
// may carry warnings (sections accepted but not built yet, defaults applied) for the caller to
// show. Defaults are filled in, so a loaded plan needs no further checks; whether a repository
// is available at all (a site, or -r on the command line) is for the caller to decide.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "repo/retention.h"

namespace reprise {

// 1-based line and column in the plan file; 0/0 when the value is a default.
struct PlanLocation {
  int line = 0;
  int column = 0;
};

struct PlanWarning {
  std::string file;
  PlanLocation at;
  std::string field;  // "sites.dr.health"
  std::string message;
  // "reprise.yaml:12:5: sites.dr.health: accepted but not used yet (failover is not built)"
  std::string ToString() const;
};

// A class of data with its recovery point objective: how old the newest restorable point of
// a component of that class may be.
struct DataClass {
  std::string name;
  std::chrono::seconds rpo{0};
};

struct Objectives {
  // Recovery time objectives per incident severity.
  struct Rto {
    std::chrono::seconds minor{15 * 60};
    std::chrono::seconds major{2 * 3600};
    std::chrono::seconds disaster{8 * 3600};
  } rto;
  // In document order. When the plan has no objectives.rpo: transactional 5m, documents 1h,
  // embeddings 1h, configuration 24h. A plan's own objectives.rpo replaces these entirely.
  std::vector<DataClass> rpo;
  std::string availability;  // "99.9%", or empty; informational

  const DataClass* FindClass(std::string_view name) const;
};


// Where a secret's value comes from. Values are never written in the plan.
struct Secret {
  enum class Source { kFile, kEnv };
  std::string name;
  Source source = Source::kFile;
  std::string file;              // kFile: absolute path; the value is the file's contents
  std::vector<std::string> env;  // kEnv: one or more variable names (e.g. key id + secret)
  PlanLocation at;
};

enum class SiteRole { kPrimary, kWarm, kCold };
std::string_view SiteRoleName(SiteRole role);

// A health check (docs/plan-reference.md, "Health checks"). Written in the plan as a map with
// exactly one of the keys http, tcp, postgres, redis, command naming its target.
struct HealthCheckSpec {
  enum class Kind { kHttp, kTcp, kPostgres, kRedis, kCommand };
  Kind kind = Kind::kTcp;
  std::string name;    // "name:" or, by default, "<kind> <target>" (passwords never shown)
  std::string target;  // http(s) URL | host:port | libpq conninfo | redis://host:port | sh -c
  std::chrono::milliseconds timeout{5000};
  // http
  int expect_status = 200;
  std::string expect_body;  // substring the body must contain; empty: any
  std::string ca_file;
  // postgres and redis: the role the node must have (nullopt: either).
  std::optional<bool> expect_primary;
  // postgres and redis replicas: how far behind the primary they may be (nullopt: no limit).
  // postgres: bytes of WAL received but not replayed plus, when the primary is known, not yet
  // received; redis: master_repl_offset - slave_repl_offset.
  std::optional<uint64_t> max_lag_bytes;
  std::optional<std::chrono::seconds> max_lag_seconds;  // postgres: now - last replayed xact
  std::string password;                                 // postgres/redis: a secret's name
  PlanLocation at;
};
std::string_view HealthCheckKindName(HealthCheckSpec::Kind kind);

// A step of the ordered restore (docs/plan-reference.md, "tiers"): its components are restored
// in parallel, then its health checks must pass before the next tier starts.
struct Tier {
  std::string name;
  std::vector<std::string> components;  // restored in parallel; reported in this order
  std::vector<HealthCheckSpec> health;  // run after the tier's components are restored
  PlanLocation at;
};

// How reprise reaches a site's databases for health, fencing and promotion.
struct SiteEndpoints {
  std::string postgres;           // libpq conninfo or URI, no password; empty: none
  std::string postgres_password;  // a secret's name, or empty
  std::string redis;              // redis://host:port[/db]; empty: none
  std::string redis_password;     // a secret's name, or empty
  std::string qdrant;             // http(s) URL; kept for the whole-stack restore (not used yet)
  std::string documents;          // s3:// URL; kept for the whole-stack restore (not used yet)
};

// How failback rebuilds a site's PostgreSQL as a replica of the current primary: reprise runs
// on (or has the files of) that host. pg_rewind first, a fresh pg_basebackup when it cannot.
struct RebuildSpec {
  std::string data_directory;  // absolute
  std::string bin_dir = "/usr/lib/postgresql/15/bin";
  std::string os_user;          // runs pg_rewind / pg_basebackup / pg_ctl as this user
  std::string start_command;    // default: pg_ctl -D DIR -w -l DIR/reprise-start.log start
  std::string stop_command;     // default: pg_ctl -D DIR -m fast -w stop
  // How the rebuilt server connects to the new primary (primary_conninfo); default: the new
  // primary site's endpoints.postgres.
  std::string primary_conninfo;
};

struct Site {
  std::string name;
  std::string repository;  // URL ("file:///backups/rag", "s3://bucket/prefix?region=...") or
                           // an absolute path
  SiteRole role = SiteRole::kCold;
  std::string region;
  std::string credentials;  // name of a secret, or empty
  std::optional<RetentionPolicy> retention;
  // Failover (docs/failover.md).
  SiteEndpoints endpoints;
  std::vector<HealthCheckSpec> health;  // the site is healthy when all pass
  std::string dns_value;                // what failover.dns.record points at for this site
  std::vector<std::string> monitoring;  // Prometheus targets ("host:port") of this site
  std::vector<std::string> provision;   // cold site: commands (sh -c) run before a restore
  std::string fence_command;            // replaces the built-in fencing of this site (sh -c)
  std::optional<RebuildSpec> rebuild;   // failback / rebuild of this site's PostgreSQL
  PlanLocation at;
};

enum class ComponentKind { kFiles, kPostgres, kRedis, kQdrant, kS3, kCommand };
std::string_view ComponentKindName(ComponentKind kind);
// Whether backups of this kind are implemented.
bool ComponentKindBuilt(ComponentKind kind);

struct FilesSpec {
  std::vector<std::string> paths;     // absolute, non-empty
  std::vector<std::string> excludes;  // glob patterns
  bool one_file_system = false;
};

// A PostgreSQL cluster (docs/plan-reference.md, "kind: postgres").
struct PostgresSpec {
  enum class Mode { kPhysical, kLogical };
  Mode mode = Mode::kPhysical;
  // libpq connection string or URI, without a password ("host=10.0.0.5 port=5432 user=backup").
  std::string connection;
  std::string password;  // name of a secret holding the password, or empty (.pgpass, trust)
  // Where a restore writes the data directory when --target-dir is not given.
  std::string data_directory;
  std::string bin_dir = "/usr/lib/postgresql/15/bin";  // pg_ctl, pg_dump, pg_restore
  std::string os_user;  // owner of restored files and user the server runs as; empty: as is
  std::string slot = "reprise";  // replication slot of wal-stream
  std::string wal_spool;         // wal-stream's local directory (default under /var/lib/reprise)
  std::string wal = "archive_command";  // stream | archive_command: how WAL reaches reprise
  std::vector<std::string> databases;   // logical mode: these (empty: all)
  int jobs = 2;                         // pg_restore -j
  std::string start_command;  // starts the restored server instead of pg_ctl (sh -c)
};

// A Redis server (docs/components/redis.md).
struct RedisSpec {
  std::string connection;  // redis://host:port[/db], no password
  std::string password;    // a secret's name, or empty
  enum class Method { kReplication, kBgsave };
  Method method = Method::kReplication;
  std::string rdb_path;  // bgsave: the dump file the server writes
  // Restore: where dump.rdb goes and how the server is stopped and started around it.
  std::string restore_rdb_path;
  std::string stop_command;
  std::string start_command;
};

// A Qdrant vector store (docs/components/qdrant.md): collections saved as server snapshots.
struct QdrantSpec {
  std::string url;                       // http(s)://host:6333 (REST API)
  std::string api_key;                   // a secret's name, or empty
  std::vector<std::string> collections;  // empty: every collection
  // A cluster: the REST URL of every peer whose shards must be snapshotted (empty: url only).
  std::vector<std::string> peers;
  enum class RestoreMethod { kUpload, kUrl };
  RestoreMethod restore_method = RestoreMethod::kUpload;  // upload | url (served by reprise)
  std::string ca_file;
  std::chrono::seconds timeout{3600};  // per snapshot create / upload / recover
};

// An S3 bucket of documents (docs/components/s3.md): objects with content type and metadata.
struct S3DocumentsSpec {
  std::string url;          // s3://bucket[/prefix]?endpoint=...&region=... (as a repository URL)
  std::string credentials;  // a secret's name ("KEY_ID,SECRET[,TOKEN]"), or empty: AWS_* / file
  bool incremental = true;  // reuse an object's content when ETag, size and mtime are unchanged
  int connections = 8;      // objects downloaded / uploaded at once
};

// A command whose output is the backup (docs/components/command.md).
struct CommandSpec {
  std::string backup;   // sh -c; its stdout is stored
  std::string restore;  // sh -c; gets the stored bytes on stdin; empty: restore writes a file
  std::string redact;   // "" or "kubernetes-secrets"
  std::chrono::seconds timeout{3600};  // 0: none
  std::string run_as;
  std::map<std::string, std::string> env;         // extra environment, literal values
  std::map<std::string, std::string> secret_env;  // variable -> name of a secret
};

struct ComponentSpec {
  std::string name;
  ComponentKind kind = ComponentKind::kFiles;
  std::string data_class;  // a name in objectives.rpo
  FilesSpec files;         // kind files only
  PostgresSpec postgres;   // kind postgres only
  RedisSpec redis;         // kind redis only
  CommandSpec command;     // kind command only
  QdrantSpec qdrant;       // kind qdrant only
  S3DocumentsSpec s3;      // kind s3 only
  // Kinds not built yet: their other keys as written, a JSON object keyed by the key name.
  nlohmann::json settings = nlohmann::json::object();
  PlanLocation at;
};

// Where failover switches the service name (failover.dns).
struct DnsSpec {
  enum class Provider { kRfc2136, kWebhook, kRoute53 };
  Provider provider = Provider::kRfc2136;
  std::string server;  // rfc2136: "host:port" (port 53 by default) of the primary name server
  std::string zone;    // "rag-system.example."; always absolute (trailing dot added)
  std::string record;  // "api.rag-system.example."; absolute, inside zone
  std::string type = "A";  // A | AAAA | CNAME
  int ttl = 60;
  std::string tsig_secret;  // rfc2136: secret holding "[algorithm:]name:base64key"; or empty
  std::string url;          // webhook: POST target (or url_secret: a secret holding the URL)
  std::string url_secret;
  std::string hosted_zone_id;      // route53: "Z..." or "/hostedzone/Z..."
  std::string endpoint;            // route53: API endpoint; empty: https://route53.amazonaws.com
  std::string credentials_secret;  // route53: "KEY_ID:SECRET[:TOKEN]"; empty: AWS env / file
  std::vector<std::string> resolvers;  // where to check the new value is served (default:
                                       // server)
  std::chrono::seconds propagation_timeout{60};
  PlanLocation at;
};

struct MonitorSpec {
  std::chrono::seconds interval{30};
  int failure_threshold = 3;
  std::vector<std::string> etcd;  // etcd v3 endpoints (http://host:port); empty: no quorum
  std::chrono::seconds lease_ttl{10};
  std::string election_key = "/reprise/failover/leader";
};

struct FailoverSpec {
  std::optional<DnsSpec> dns;
  // Patroni's maximum_lag_on_failover: a replica further behind than this is not promoted
  // without --force.
  uint64_t max_lag_bytes = 16ull << 20;
  std::chrono::seconds catchup_timeout{30};  // how long to wait for replicas after fencing
  std::string monitoring_file;  // Prometheus file_sd JSON rewritten to the new site's targets
  std::string state_dir = "/var/lib/reprise/failover";  // journals of failovers
  MonitorSpec monitor;
  bool present = false;  // the plan has a failover section
  PlanLocation at;
};

struct NotifyChannel {
  enum class Kind { kSlack, kWebhook, kSmtp };
  std::string name;
  Kind kind = Kind::kWebhook;
  std::string url;         // slack/webhook URL, or smtp(s)://host:port
  std::string url_secret;  // or: a secret holding the URL (Slack webhooks are credentials)
  std::string from;        // smtp
  std::vector<std::string> to;     // smtp
  std::string credentials;         // smtp: a secret holding "user:password", or empty
  PlanLocation at;
};

struct NotifyRoute {
  std::vector<std::string> on;  // event patterns: "failover.*", "backup.failed"
  std::vector<std::string> to;  // channel names
};

struct NotificationsSpec {
  std::vector<NotifyChannel> channels;
  std::vector<NotifyRoute> routes;  // none: every event to every channel
  const NotifyChannel* FindChannel(std::string_view name) const;
};

// A check between components of a live or restored stack (docs/plan-reference.md,
// "consistency"): every value `each` yields must be found by `exists_in`; those that are not
// are orphans. What `query` and `field` mean depends on the named component's kind:
//   postgres: query is SQL; in `each` the first column of every row is a value; in `exists_in`
//             it takes the value as $1 and finds it when it returns a row.
//   qdrant:   query is a collection; field is a payload key (each: its value in every point;
//             exists_in: some point has payload field == value).
//   s3:       each: the keys under the prefix `query`; exists_in: the object whose key is
//             `query` with $1 replaced by the value exists.
//   redis:    each: the keys matching the pattern `query`; exists_in: key `query` with $1
//             replaced exists.
struct ConsistencyCheck {
  struct Side {
    std::string component;  // a component of the plan
    std::string query;
    std::string field;
    PlanLocation at;
  };
  std::string name;
  Side each;
  Side exists_in;
  PlanLocation at;
};

struct Plan {
  std::string file;  // as given to LoadPlan/ParsePlan
  int version = 1;
  std::string name;
  Objectives objectives;
  // Restore order. When the plan has none: one tier "all" holding every component.
  // Every component is in exactly one tier.
  std::vector<Tier> tiers;
  std::vector<Secret> secrets;
  std::vector<Site> sites;                   // document order; at most one has role primary
  std::vector<ComponentSpec> components;     // document order; at least one
  std::optional<RetentionPolicy> retention;  // default for sites without their own
  FailoverSpec failover;
  NotificationsSpec notifications;
  std::vector<ConsistencyCheck> consistency;
  // Top-level sections not built yet (schedules, escalation), as written: a JSON
  // object keyed by section name.
  nlohmann::json deferred = nlohmann::json::object();
  std::vector<PlanWarning> warnings;

  const ComponentSpec* FindComponent(std::string_view name) const;
  const Site* FindSite(std::string_view name) const;
  const Secret* FindSecret(std::string_view name) const;
  const Tier* FindTier(std::string_view name) const;
  // The site with role primary, or nullptr.
  const Site* PrimarySite() const;
  // secrets.repository_password, or nullptr.
  const Secret* RepositoryPassword() const { return FindSecret("repository_password"); }
  // The site's own retention, else the plan's, else an empty policy.
  RetentionPolicy RetentionFor(const Site& site) const;
};

// Reads and parses the file. Errors opening it are kNotFound/kPermissionDenied/kIOError.
Result<Plan> LoadPlan(const std::string& path);
// `filename` is used in messages only.
Result<Plan> ParsePlan(std::string_view text, std::string filename);

}  // namespace reprise
