#include "orchestrate/pg_recovery.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/subprocess.h"
#include "components/files/posix.h"

namespace reprise {

namespace {

namespace fs = std::filesystem;

struct Archived {
  std::set<uint64_t> complete;  // segnos with a complete segment
  std::set<uint64_t> partial;   // segnos with a .partial one
};

std::string ConfQuote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += "''";
    else out += c;
  }
  return out + "'";
}

std::string PgTime(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char frac[16];
  snprintf(frac, sizeof frac, ".%06lld+00", static_cast<long long>((ns % 1000000000) / 1000));
  return std::string(buf) + frac;
}

}  // namespace

Result<WalNeeds> PlanRecoveryWal(WalStore& wal, const nlohmann::json& info,
                                 const RecoveryTarget& target) {
  const uint64_t seg_size = info.value("wal_segment_size", pg::kDefaultSegmentSize);
  auto start = pg::ParseSegmentName(info.value("start_wal", ""), seg_size);
  auto end = pg::ParseSegmentName(info.value("end_wal", ""), seg_size);
  if (!start || !end) return Corruption("the point does not record its WAL segments");
  ASSIGN_OR_RETURN(std::vector<std::string> names, wal.List());

  std::map<uint32_t, Archived> by_tli;
  std::set<uint32_t> histories;
  for (const auto& n : names) {
    if (pg::IsHistoryFileName(n)) {
      histories.insert(static_cast<uint32_t>(std::stoul(n.substr(0, 8), nullptr, 16)));
      continue;
    }
    bool partial = n.size() == 32 && n.substr(24) == ".partial";
    auto id = pg::ParseSegmentName(partial ? n.substr(0, 24) : n, seg_size);
    if (!id) continue;  // .backup files and the like
    (partial ? by_tli[id->tli].partial : by_tli[id->tli].complete).insert(id->segno);
  }

  // The timeline path: the newest timeline whose history contains the point's timeline.
  struct Step {
    uint32_t tli;
    std::optional<pg::Lsn> ends_at;  // switch point to the next timeline on the path
  };
  std::vector<Step> path = {{start->tli, std::nullopt}};
  uint32_t target_tli = start->tli;
  for (auto it = histories.rbegin(); it != histories.rend(); ++it) {
    if (*it <= start->tli) break;
    ASSIGN_OR_RETURN(Bytes text, wal.Fetch(pg::HistoryFileName(*it)));
    ASSIGN_OR_RETURN(auto switches, pg::ParseHistory(std::string(text.begin(), text.end())));
    bool descends = std::any_of(switches.begin(), switches.end(),
                                [&](const pg::TimelineSwitch& s) { return s.parent_tli == start->tli; });
    if (!descends) continue;
    path.clear();
    for (const auto& s : switches)
      if (s.parent_tli >= start->tli) path.push_back({s.parent_tli, s.switch_lsn});
    path.push_back({*it, std::nullopt});
    target_tli = *it;
    break;
  }

  // How far the WAL must go.
  std::optional<uint64_t> stop_segno;  // inclusive; nullopt = as far as archived
  if (target.kind == RecoveryTarget::Kind::kImmediate) stop_segno = end->segno;
  if (target.kind == RecoveryTarget::Kind::kLsn)
    stop_segno = std::max<uint64_t>(end->segno, target.lsn / seg_size);

  WalNeeds needs;
  needs.target_timeline = target_tli;
  for (uint32_t h : histories)
    if (h <= target_tli) needs.files.push_back(pg::HistoryFileName(h));
  uint64_t segno = start->segno;
  bool stop = false;
  for (size_t i = 0; i < path.size() && !stop; ++i) {
    const Step& step = path[i];
    const Archived& a = by_tli[step.tli];
    const bool last_tli = i + 1 == path.size();
    uint64_t last_segno;
    if (!last_tli) {
      // The switch segment itself is read from the next timeline.
      uint64_t sw = *step.ends_at / seg_size;
      last_segno = sw == 0 ? 0 : sw - 1;
    } else {
      uint64_t newest = segno;
      if (!a.complete.empty()) newest = std::max(newest, *a.complete.rbegin());
      if (!a.partial.empty()) newest = std::max(newest, *a.partial.rbegin());
      last_segno = newest;
    }
    for (; segno <= last_segno; ++segno) {
      if (stop_segno && segno > *stop_segno) {
        stop = true;
        break;
      }
      pg::SegmentId id{step.tli, segno};
      std::string name = pg::SegmentNameOf(id, seg_size);
      if (a.complete.count(segno)) {
        needs.files.push_back(name);
      } else if (last_tli && segno == last_segno && a.partial.count(segno)) {
        needs.files.push_back(name + ".partial");
      } else {
        return FailedPrecondition(
            "WAL segment '" + name + "' is missing from the archive of component '" +
            info.value("component", std::string()) + "' (recovery from " +
            info.value("start_lsn", std::string()) + " needs every segment from '" +
            pg::SegmentNameOf(*start, seg_size) + "'). HINT: check archive_command / wal-stream; "
            "a point whose WAL has a gap can only be recovered up to the gap (--to-lsn)");
      }
      if (needs.first.empty()) needs.first = name;
      needs.last = name;
      // A time target: stop after the first segment archived after that time.
      if (target.kind == RecoveryTarget::Kind::kTime && segno >= end->segno) {
        ASSIGN_OR_RETURN(WalRecord rec, wal.Load(needs.files.back()));
        if (rec.time_ns > target.time_ns) {
          stop = true;
          break;
        }
      }
    }
  }
  if (stop_segno && !stop && segno <= *stop_segno)
    return FailedPrecondition("the WAL archive of component '" +
                              info.value("component", std::string()) + "' ends at '" +
                              needs.last + "', before the point's end or the target LSN");
  // Whatever the target, recovery cannot end before the backup's end.
  if (!stop && segno <= end->segno)
    return FailedPrecondition(
        "WAL segment '" + pg::SegmentNameOf(pg::SegmentId{path.back().tli, segno}, seg_size) +
        "' is missing from the archive of component '" + info.value("component", std::string()) +
        "': the point is consistent only at " + info.value("end_lsn", std::string()) +
        ". HINT: wait until archive_command / wal-stream has archived it");
  return needs;
}

Status FetchRecoveryWal(WalStore& wal, const WalNeeds& needs, const std::string& spool_dir,
                        uint64_t segment_size, const std::string& os_user,
                        const std::function<void(size_t, size_t)>& progress) {
  {
    // Files left by an earlier restore must never be offered to this recovery.
    std::error_code ec;
    fs::remove_all(spool_dir, ec);
    if (ec) return files::PathError("emptying", spool_dir, ec.value());
  }
  RETURN_IF_ERROR(files::MakeDirs(spool_dir));
  ::chmod(spool_dir.c_str(), 0700);
  std::optional<files::UserIds> owner;
  if (!os_user.empty() && geteuid() == 0) {
    ASSIGN_OR_RETURN(owner, files::LookupUser(os_user));
    (void)::chown(spool_dir.c_str(), owner->uid, owner->gid);
  }
  size_t done = 0;
  for (const auto& name : needs.files) {
    auto data = wal.Fetch(name);
    if (!data.ok()) return data.status().WithContext("fetching WAL for recovery");
    std::string file = name;
    if (file.size() > 8 && file.substr(file.size() - 8) == ".partial") {
      file = file.substr(0, file.size() - 8);
      if (data->size() < segment_size) data->resize(segment_size, 0);
    }
    std::string path = files::JoinPath(spool_dir, file);
    files::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return files::PathError("creating", path, errno);
    RETURN_IF_ERROR(files::WriteAllAt(fd.get(), *data, 0, path));
    RETURN_IF_ERROR(fd.Close(path));
    if (owner) (void)::chown(path.c_str(), owner->uid, owner->gid);
    if (progress) progress(++done, needs.files.size());
  }
  return Status::Ok();
}

Status WriteRecoveryConfig(const std::string& data_dir, const RecoveryConfig& c) {
  if (c.spool_dir.find('"') != std::string::npos || c.spool_dir.find('\'') != std::string::npos)
    return InvalidArgument("WAL spool path '" + c.spool_dir + "' contains quotes");
  std::ostringstream conf;
  conf << "\n# Added by reprise restore: point-in-time recovery from its WAL spool.\n";
  conf << "restore_command = " << ConfQuote("cp \"" + c.spool_dir + "/%f\" \"%p\"") << "\n";
  conf << "recovery_target_timeline = 'latest'\n";
  switch (c.target.kind) {
    case RecoveryTarget::Kind::kImmediate:
      conf << "recovery_target = 'immediate'\n";
      break;
    case RecoveryTarget::Kind::kTime:
      conf << "recovery_target_time = " << ConfQuote(PgTime(c.target.time_ns)) << "\n";
      conf << "recovery_target_inclusive = on\n";
      break;
    case RecoveryTarget::Kind::kLsn:
      conf << "recovery_target_lsn = " << ConfQuote(pg::FormatLsn(c.target.lsn)) << "\n";
      break;
    case RecoveryTarget::Kind::kEnd:
      break;
  }
  if (c.target.kind != RecoveryTarget::Kind::kEnd) conf << "recovery_target_action = 'promote'\n";
  if (c.port) conf << "port = " << *c.port << "\n";
  if (c.archive_off) conf << "archive_mode = off\n";
  std::string auto_conf = files::JoinPath(data_dir, "postgresql.auto.conf");
  {
    std::ofstream out(auto_conf, std::ios::app);
    out << conf.str();
    if (!out) return files::PathError("writing", auto_conf, errno);
  }
  ::unlink(files::JoinPath(data_dir, "standby.signal").c_str());
  std::string signal = files::JoinPath(data_dir, "recovery.signal");
  { std::ofstream(signal, std::ios::trunc); }
  if (!c.os_user.empty() && geteuid() == 0) {
    ASSIGN_OR_RETURN(auto ids, files::LookupUser(c.os_user));
    (void)::chown(auto_conf.c_str(), ids.uid, ids.gid);
    (void)::chown(signal.c_str(), ids.uid, ids.gid);
  }
  return Status::Ok();
}

Result<double> StartAndAwaitRecovery(const std::string& data_dir, const StartOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string log = files::JoinPath(data_dir, "reprise-recovery.log");
  SubprocessOptions so;
  if (!o.start_command.empty()) {
    so.argv = ShellArgv(o.start_command);
    so.env["PGDATA"] = data_dir;
  } else {
    so.argv = {files::JoinPath(o.bin_dir, "pg_ctl"), "-D", data_dir, "-l", log, "-w", "-t",
               std::to_string(o.timeout_s), "start"};
  }
  if (geteuid() == 0 && !o.os_user.empty()) so.run_as = o.os_user;
  so.timeout = std::chrono::seconds(o.timeout_s);
  auto tail = [&]() {
    std::ifstream in(log);
    std::deque<std::string> lines;
    for (std::string l; std::getline(in, l);) {
      lines.push_back(l);
      if (lines.size() > 8) lines.pop_front();
    }
    std::string out;
    for (const auto& l : lines) out += "\n  " + l;
    return out;
  };
  ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(so));
  if (!r.success())
    return FailedPrecondition("the restored server did not start (" + r.Describe() +
                              "); server log " + log + ":" + tail());
  const std::string signal = files::JoinPath(data_dir, "recovery.signal");
  const std::string pidfile = files::JoinPath(data_dir, "postmaster.pid");
  for (;;) {
    if (::access(signal.c_str(), F_OK) != 0) break;
    if (::access(pidfile.c_str(), F_OK) != 0)
      return FailedPrecondition("the restored server stopped during recovery; server log " +
                                log + ":" + tail());
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(o.timeout_s))
      return Unavailable("recovery did not finish within " + std::to_string(o.timeout_s) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace reprise
