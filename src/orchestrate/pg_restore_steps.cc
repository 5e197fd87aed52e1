#include "orchestrate/pg_restore_steps.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "pg/wal_names.h"
#include "repo/wal_store.h"

namespace reprise {

namespace {
constexpr char kSpoolName[] = "reprise-wal";
}  // namespace

std::string PgRestoreStep::spool_dir() const {
  std::string dir = data_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/" + kSpoolName;
}

bool IsPhysicalPostgres(const PointComponent& pc) {
  return pc.kind == "postgres" && pc.info.value("mode", "") == "physical";
}

std::string PgOsUser(const std::string& given, const ComponentSpec* spec) {
  if (!given.empty()) return given;
  if (spec && spec->kind == ComponentKind::kPostgres && !spec->postgres.os_user.empty())
    return spec->postgres.os_user;
  if (geteuid() == 0 && getpwnam("postgres")) return "postgres";
  return "";
}

Result<PgRestoreStep> PlanPgRestore(Repository& repo, const PointComponent& pc,
                                    std::string data_dir, std::string os_user,
                                    const RecoveryTarget& target, const Clock& clock) {
  if (!IsPhysicalPostgres(pc))
    return Internal("component '" + pc.name + "' is not a physical postgres component");
  PgRestoreStep step;
  step.component = pc.name;
  step.info = pc.info;
  step.info["component"] = pc.name;
  step.data_dir = std::move(data_dir);
  step.os_user = std::move(os_user);
  step.target = target;
  WalStore wal(repo, pc.name, clock);
  ASSIGN_OR_RETURN(step.needs, PlanRecoveryWal(wal, step.info, step.target));
  return step;
}

Status CheckPgDataDir(const std::string& data_dir, bool delta) {
  if (delta) return Status::Ok();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir, ec)) {
    if (e.path().filename() == kSpoolName) continue;
    return FailedPrecondition(
        "target '" + data_dir + "' is not empty. HINT: restore into an empty directory, "
        "or give --delta to update it in place (only blocks that differ are written)");
  }
  return Status::Ok();
}

Status FetchPgWal(Repository& repo, PgRestoreStep& step, const Clock& clock,
                  const std::function<void(size_t done, size_t total)>& progress) {
  auto t0 = std::chrono::steady_clock::now();
  WalStore wal(repo, step.component, clock);
  uint64_t segment = step.info.value("wal_segment_size", pg::kDefaultSegmentSize);
  Status st = FetchRecoveryWal(wal, step.needs, step.spool_dir(), segment, step.os_user,
                               progress ? progress : [](size_t, size_t) {});
  if (!st.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(step.spool_dir(), ec);
    return st.WithContext("nothing was written to '" + step.data_dir + "'");
  }
  step.wal_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status::Ok();
}

Result<double> FinishPgRestore(const PgRestoreStep& step, const PgFinishOptions& options) {
  RecoveryConfig rc{.spool_dir = step.spool_dir(),
                    .target = step.target,
                    .port = options.port,
                    .archive_off = options.archive_off,
                    .os_user = step.os_user};
  RETURN_IF_ERROR(WriteRecoveryConfig(step.data_dir, rc));
  if (!options.start) return 0.0;
  StartOptions so;
  if (!options.bin_dir.empty()) so.bin_dir = options.bin_dir;
  so.start_command = options.start_command;
  so.os_user = step.os_user;
  ASSIGN_OR_RETURN(double seconds, StartAndAwaitRecovery(step.data_dir, so));
  if (!options.keep_spool) {
    std::error_code ec;
    std::filesystem::remove_all(step.spool_dir(), ec);
  }
  return seconds;
}

}  // namespace reprise
