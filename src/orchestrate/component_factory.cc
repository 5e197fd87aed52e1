#include "orchestrate/component_factory.h"

#include "components/command/command_component.h"
#include "components/qdrant/qdrant_component.h"
#include "components/redis/redis_component.h"
#include "components/s3/s3_documents.h"

#include <filesystem>

#include "components/files/files_component.h"
#include "components/postgres/logical.h"
#include "components/postgres/physical.h"

namespace reprise {

namespace {

// Logical mode: pg_dump per database into the repository; restore into a live server whose
// connection string is the restore target (or, when that is empty, the plan's connection).
class PostgresLogicalComponent final : public Component {
 public:
  explicit PostgresLogicalComponent(LogicalOptions options) : options_(std::move(options)) {}
  std::string kind() const override { return "postgres"; }
  Result<nlohmann::json> Backup(BackupSink& sink) override { return LogicalBackup(options_, sink); }
  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override {
    LogicalOptions target = options_;
    if (!options.target.empty()) target.conninfo = options.target;
    if (target.conninfo.empty())
      return InvalidArgument("a logical postgres restore needs a server: give --target "
                             "'host=... port=... user=...'");
    if (auto j = options.params.find("jobs"); j != options.params.end()) target.jobs = *j;
    if (auto u = options.params.find("os_user"); u != options.params.end() && target.run_as.empty())
      target.run_as = u->get<std::string>();
    return LogicalRestore(info, source, target, options);
  }

 private:
  LogicalOptions options_;
};

// Restores whichever mode the point recorded.
class PostgresRestoreDispatch final : public Component {
 public:
  std::string kind() const override { return "postgres"; }
  Result<nlohmann::json> Backup(BackupSink&) override {
    return Internal("restore-only component used for backup");
  }
  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override {
    if (info.value("mode", "") == "logical")
      return PostgresLogicalComponent(LogicalOptions{}).Restore(info, source, options);
    return PostgresPhysicalComponent(PostgresPhysicalOptions{}).Restore(info, source, options);
  }
};

// The value of the secret `name` for component `spec`; "" when `name` is empty.
Result<std::string> SecretFor(const ComponentSpec& spec, const std::string& name,
                              const SecretLookup& secrets) {
  if (name.empty()) return std::string();
  if (!secrets) return FailedPrecondition("component '" + spec.name + "': no secrets");
  Result<std::string> v = secrets(name);
  if (!v.ok()) return v.status().WithContext("component '" + spec.name + "'");
  return v;
}

}  // namespace

Result<std::unique_ptr<Component>> MakeComponent(const ComponentSpec& spec,
                                                 const SecretLookup& secrets) {
  switch (spec.kind) {
    case ComponentKind::kPostgres: {
      ASSIGN_OR_RETURN(std::string password, SecretFor(spec, spec.postgres.password, secrets));
      if (spec.postgres.mode == PostgresSpec::Mode::kPhysical)
        return std::unique_ptr<Component>(std::make_unique<PostgresPhysicalComponent>(
            PostgresPhysicalOptions{.conninfo = spec.postgres.connection,
                                    .password = password,
                                    .label = "reprise " + spec.name}));
      LogicalOptions lo;
      lo.conninfo = spec.postgres.connection;
      lo.databases = spec.postgres.databases;
      lo.bin_dir = spec.postgres.bin_dir;
      lo.jobs = spec.postgres.jobs;
      if (!password.empty()) lo.env["PGPASSWORD"] = password;
      return std::unique_ptr<Component>(std::make_unique<PostgresLogicalComponent>(lo));
    }
    case ComponentKind::kCommand: {
      CommandComponentOptions co{.name = spec.name,
                                 .backup = spec.command.backup,
                                 .restore = spec.command.restore,
                                 .env = spec.command.env,
                                 .run_as = spec.command.run_as,
                                 .timeout = spec.command.timeout,
                                 .redact = spec.command.redact};
      for (const auto& [var, secret] : spec.command.secret_env) {
        ASSIGN_OR_RETURN(co.env[var], SecretFor(spec, secret, secrets));
      }
      return std::unique_ptr<Component>(std::make_unique<CommandComponent>(std::move(co)));
    }
    case ComponentKind::kRedis: {
      RedisComponentOptions ro;
      ro.url = spec.redis.connection;
      ro.method = spec.redis.method == RedisSpec::Method::kBgsave ? RedisComponentOptions::kBgsave
                                                                 : RedisComponentOptions::kReplication;
      ro.rdb_path = spec.redis.rdb_path;
      ro.restore_rdb_path = spec.redis.restore_rdb_path;
      ro.controller_stop = spec.redis.stop_command;
      ro.controller_start = spec.redis.start_command;
      ASSIGN_OR_RETURN(ro.password, SecretFor(spec, spec.redis.password, secrets));
      return std::unique_ptr<Component>(std::make_unique<RedisComponent>(std::move(ro)));
    }
    case ComponentKind::kQdrant: {
      ASSIGN_OR_RETURN(std::string api_key, SecretFor(spec, spec.qdrant.api_key, secrets));
      return MakeQdrantComponent(spec.qdrant, std::move(api_key));
    }
    case ComponentKind::kS3: {
      std::optional<StorageCredentials> creds;
      if (!spec.s3.credentials.empty()) {
        ASSIGN_OR_RETURN(std::string v, SecretFor(spec, spec.s3.credentials, secrets));
        ASSIGN_OR_RETURN(StorageCredentials c,
                         ParseCredentialsSecret(v, "secret '" + spec.s3.credentials +
                                                        "' of component '" + spec.name + "'"));
        creds = std::move(c);
      }
      return MakeS3DocumentsComponent(spec.s3, std::move(creds));
    }
    case ComponentKind::kFiles:
      return std::unique_ptr<Component>(std::make_unique<FilesComponent>(
          FilesOptions{.paths = spec.files.paths,
                       .excludes = spec.files.excludes,
                       .one_file_system = spec.files.one_file_system}));
    default:
      return Unimplemented("component '" + spec.name + "': kind '" +
                           std::string(ComponentKindName(spec.kind)) +
                           "' is not built yet in this version of reprise");
  }
}

Result<std::unique_ptr<Component>> MakeComponentForRestore(const std::string& kind,
                                                           const ComponentSpec* spec,
                                                           const SecretLookup& secrets) {
  if (spec && ((kind == "command" && spec->kind == ComponentKind::kCommand) ||
               (kind == "redis" && spec->kind == ComponentKind::kRedis) ||
               (kind == "qdrant" && spec->kind == ComponentKind::kQdrant) ||
               (kind == "s3" && spec->kind == ComponentKind::kS3))) {
    return MakeComponent(*spec, secrets);
  }
  if (kind == "qdrant") return MakeQdrantComponent(QdrantSpec{}, "");
  if (kind == "s3") return MakeS3DocumentsComponent(S3DocumentsSpec{}, std::nullopt);
  if (kind == "redis") {
    return std::unique_ptr<Component>(std::make_unique<RedisComponent>(RedisComponentOptions{}));
  }
  if (kind == "command") {
    return std::unique_ptr<Component>(std::make_unique<CommandComponent>(CommandComponentOptions{}));
  }
  if (kind == "files") return std::unique_ptr<Component>(std::make_unique<FilesComponent>(FilesOptions{}));
  if (kind == "postgres") return std::unique_ptr<Component>(std::make_unique<PostgresRestoreDispatch>());
  return Unimplemented("restoring components of kind '" + kind +
                       "' is not built yet in this version of reprise");
}

Result<std::unique_ptr<Component>> MakeFilesComponent(const std::vector<std::string>& paths,
                                                      const std::vector<std::string>& excludes) {
  if (paths.empty()) return InvalidArgument("no paths to back up");
  FilesOptions options;
  options.excludes = excludes;
  for (const auto& p : paths) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    if (ec) return InvalidArgument("path '" + p + "': " + ec.message());
    auto normal = abs.lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    if (!std::filesystem::exists(std::filesystem::symlink_status(normal, ec)))
      return NotFound("path '" + p + "' does not exist");
    options.paths.push_back(normal);
  }
  return std::unique_ptr<Component>(std::make_unique<FilesComponent>(std::move(options)));
}

}  // namespace reprise
