// wal-push / wal-fetch: PostgreSQL's archive_command and restore_command.
//   archive_command = 'reprise --plan /etc/reprise/rag.yaml wal-push --component db %p'
//   restore_command = 'reprise --plan /etc/reprise/rag.yaml wal-fetch --component db %f %p'
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <fstream>

#include "cli/commands.h"
#include "common/thread_pool.h"
#include "components/files/posix.h"
#include "pg/wal_names.h"
#include "orchestrate/wal_stream.h"
#include "repo/lock.h"
#include "repo/wal_store.h"

#include <csignal>

namespace reprise::cli {

namespace {

// The component the WAL belongs to: --component, else the plan's only postgres component.
Result<std::string> WalComponent(Context& ctx, const std::string& flag) {
  ASSIGN_OR_RETURN(const Plan* plan, ctx.LoadPlanIfAny());
  if (!flag.empty()) {
    if (plan) {
      const ComponentSpec* c = plan->FindComponent(flag);
      if (!c) return InvalidArgument("the plan has no component '" + flag + "'");
      if (c->kind != ComponentKind::kPostgres)
        return InvalidArgument("component '" + flag + "' is not of kind postgres");
    }
    return flag;
  }
  if (!plan) return InvalidArgument("give --component (no plan to find it in)");
  std::string found;
  for (const auto& c : plan->components) {
    if (c.kind != ComponentKind::kPostgres) continue;
    if (!found.empty())
      return InvalidArgument("the plan has several postgres components: give --component");
    found = c.name;
  }
  if (found.empty()) return InvalidArgument("the plan has no postgres component");
  return found;
}

bool ValidWalName(const std::string& n) {
  auto hex = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return isxdigit(static_cast<unsigned char>(c)); });
  };
  if (n.size() == 24 && hex(n)) return true;                                    // segment
  if (n.size() == 32 && hex(n.substr(0, 24)) && n.substr(24) == ".partial") return true;
  if (n.size() == 16 && hex(n.substr(0, 8)) && n.substr(8) == ".history") return true;
  if (n.size() == 40 && hex(n.substr(0, 24)) && n[24] == '.' && hex(n.substr(25, 8)) &&
      n.substr(33) == ".backup")
    return true;
  return false;
}

// A WAL file mapped read-only (no copy of 16 MiB, pages straight from the page cache).
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path) {
    files::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return files::PathError("opening", path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return files::PathError("stat", path, errno);
    auto m = std::unique_ptr<MappedFile>(new MappedFile());
    m->size_ = static_cast<size_t>(st.st_size);
    if (m->size_ == 0) return m;
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
    if (p == MAP_FAILED) return files::PathError("mapping", path, errno);
    m->data_ = static_cast<uint8_t*>(p);
    return m;
  }
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
  }
  ByteView view() const { return ByteView(data_, size_); }

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Set by SIGTERM/SIGINT during wal-stream (a signal handler can only touch such a flag).
std::atomic<bool> g_stop_stream{false};
extern "C" void StopStream(int) { g_stop_stream = true; }

struct WalFlags {
  std::string component;
  std::string path;  // wal-push: %p; wal-fetch: %p (destination)
  std::string name;  // wal-fetch: %f
  std::string spool, slot;
  int push_interval_ms = 1000;
  bool exit_on_disconnect = false;
};

}  // namespace

void AddWalCommands(CLI::App& app, Context& ctx, Action* run) {
  auto stream_flags = std::make_shared<WalFlags>();
  auto* stream = app.add_subcommand(
      "wal-stream",
      "receive WAL continuously over the replication protocol and archive it (RPO: seconds); "
      "runs until SIGTERM/SIGINT");
  stream->add_option("--component", stream_flags->component,
                     "the postgres component (default: the plan's only one)");
  stream->add_option("--spool", stream_flags->spool,
                     "local directory for the segment being received (default: the plan's "
                     "wal_spool, else /var/lib/reprise/wal-spool/<component>)");
  stream->add_option("--slot", stream_flags->slot, "replication slot (default: the plan's slot)");
  stream->add_option("--push-interval-ms", stream_flags->push_interval_ms,
                     "how often the partial segment is archived (default 1000)");
  stream->add_flag("--exit-on-disconnect", stream_flags->exit_on_disconnect,
                   "stop when the server goes away instead of reconnecting");
  stream->callback([&ctx, run, stream_flags] {
    *run = [&ctx, f = stream_flags]() -> int {
      auto component = WalComponent(ctx, f->component);
      if (!component.ok()) return ctx.Fail(component.status());
      auto plan = ctx.LoadPlanIfAny();
      if (!plan.ok()) return ctx.Fail(plan.status());
      const ComponentSpec* spec = *plan ? (*plan)->FindComponent(*component) : nullptr;
      if (!spec) return ctx.Fail(InvalidArgument("wal-stream needs a plan naming the component's connection"));
      WalStreamOptions o;
      o.conninfo = spec->postgres.connection;
      if (!spec->postgres.password.empty()) {
        auto pw = ctx.SecretValue(spec->postgres.password);
        if (!pw.ok()) return ctx.Fail(pw.status());
        o.password = *pw;
      }
      o.component = *component;
      o.slot = f->slot.empty() ? spec->postgres.slot : f->slot;
      o.spool_dir = !f->spool.empty() ? f->spool
                    : !spec->postgres.wal_spool.empty()
                        ? spec->postgres.wal_spool
                        : "/var/lib/reprise/wal-spool/" + *component;
      o.push_interval_ms = std::max(50, f->push_interval_ms);
      o.exit_on_disconnect = f->exit_on_disconnect;
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      Repository* r = repo->get();
      o.lock = [&ctx, r]() -> Result<std::shared_ptr<void>> {
        ASSIGN_OR_RETURN(auto l, RepoLock::Acquire(*r, false, "wal-stream", ctx.clock,
                                                   [&](std::string m) { ctx.Warn("warning: " + m); }));
        return std::shared_ptr<void>(std::move(l));
      };
      std::signal(SIGTERM, StopStream);
      std::signal(SIGINT, StopStream);
      WalStreamStats stats;
      Status st = RunWalStream(**repo, o, ctx.clock, g_stop_stream, stats,
                               [&](const std::string& m) { ctx.Warn("wal-stream: " + m); });
      if (!st.ok()) return ctx.Fail(st.WithContext("wal-stream"));
      if (ctx.opts.json)
        ctx.PrintJson({{"bytes", stats.bytes.load()}, {"segments", stats.segments.load()},
                       {"partial_pushes", stats.partial_pushes.load()},
                       {"flushed_lsn", pg::FormatLsn(stats.flushed_lsn.load())}});
      return kExitOk;
    };
  });

  auto push_flags = std::make_shared<WalFlags>();
  auto* push = app.add_subcommand(
      "wal-push", "archive one WAL file (PostgreSQL's archive_command: wal-push %p)");
  push->add_option("path", push_flags->path, "the WAL file (%p)")->required();
  push->add_option("--component", push_flags->component,
                   "the postgres component (default: the plan's only one)");
  push->callback([&ctx, run, push_flags] {
    *run = [&ctx, f = push_flags]() -> int {
      auto t0 = std::chrono::steady_clock::now();
      auto component = WalComponent(ctx, f->component);
      if (!component.ok()) return ctx.Fail(component.status());
      std::string name = f->path.substr(f->path.rfind('/') + 1);
      if (!ValidWalName(name))
        return ctx.Fail(InvalidArgument("'" + name + "' is not a WAL file name (segment, "
                                        ".history, .backup or .partial)"));
      auto file = MappedFile::Open(f->path);
      if (!file.ok()) return ctx.Fail(file.status());
      ByteView data = (*file)->view();
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      // The shared lock is taken on another thread while the segment is being sealed (its
      // writes and fsyncs wait on the disk, not the CPU); Push waits for it before it writes
      // anything. The lock is released when `lock` goes, after the record is durable.
      std::shared_future<Result<std::unique_ptr<RepoLock>>> lock =
          std::async(std::launch::async, [&ctx, r = repo->get()] {
            return RepoLock::Acquire(*r, false, "wal-push", ctx.clock,
                                     [&ctx](std::string m) { ctx.Warn("warning: " + m); });
          }).share();
      auto wait_lock = [&lock]() -> Status { return lock.get().status(); };
      WalStore wal(**repo, *component, ctx.clock);
      // This thread compresses too (WalStore::Push): one helper per other core.
      ThreadPool pool(std::max<size_t>(1, DefaultThreads() - 1), 4);
      bool partial = name.size() == 32;
      auto r = wal.Push(name, data, partial, &pool, wait_lock);
      if (!r.ok()) return ctx.Fail(r.status().WithContext("wal-push '" + name + "'"));
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (ctx.opts.json)
        ctx.PrintJson({{"name", name}, {"component", *component}, {"bytes", data.size()},
                       {"stored", *r == PushOutcome::kStored}, {"milliseconds", ms}});
      else if (ctx.opts.verbose > 0)
        ctx.Say(std::string(*r == PushOutcome::kStored ? "archived " : "already archived ") +
                name + " in " + std::to_string(static_cast<int>(ms)) + " ms");
      return kExitOk;
    };
  });

  auto fetch_flags = std::make_shared<WalFlags>();
  auto* fetch = app.add_subcommand(
      "wal-fetch",
      "fetch one WAL file (PostgreSQL's restore_command: wal-fetch %f %p); exits 1 when the "
      "archive does not have it, 126 when it is damaged (PostgreSQL then aborts recovery)");
  fetch->add_option("name", fetch_flags->name, "the WAL file name (%f)")->required();
  fetch->add_option("path", fetch_flags->path, "where to write it (%p)")->required();
  fetch->add_option("--component", fetch_flags->component,
                    "the postgres component (default: the plan's only one)");
  fetch->callback([&ctx, run, fetch_flags] {
    *run = [&ctx, f = fetch_flags]() -> int {
      auto component = WalComponent(ctx, f->component);
      if (!component.ok()) return ctx.Fail(component.status());
      if (!ValidWalName(f->name))
        return ctx.Fail(InvalidArgument("'" + f->name + "' is not a WAL file name"));
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      WalStore wal(**repo, *component, ctx.clock);
      auto data = wal.Fetch(f->name);
      if (!data.ok() && data.status().code() == Code::kNotFound && f->name.size() == 24) {
        // The newest segment may only exist as a partial one (wal-stream): serve it padded.
        auto partial = wal.Fetch(f->name + ".partial");
        if (partial.ok()) {
          data = std::move(partial);
          if (data->size() < pg::kDefaultSegmentSize) data->resize(pg::kDefaultSegmentSize, 0);
        }
      }
      if (!data.ok()) {
        if (data.status().code() == Code::kNotFound) {
          ctx.Warn("wal-fetch: " + data.status().message());
          return kExitError;  // PostgreSQL: not in the archive (end of recovery or retry)
        }
        // Damage must stop recovery, not end it quietly: PostgreSQL aborts recovery when
        // restore_command exits above 125.
        ctx.Warn("reprise: error: " + data.status().message());
        return 126;
      }
      std::string temp = f->path + ".reprise-tmp";
      files::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd.valid()) return ctx.Fail(files::PathError("creating", temp, errno));
      Status st = files::WriteAllAt(fd.get(), *data, 0, temp);
      if (st.ok()) st = fd.Close(temp);
      if (st.ok() && ::rename(temp.c_str(), f->path.c_str()) != 0)
        st = files::PathError("renaming", temp, errno);
      if (!st.ok()) {
        ::unlink(temp.c_str());
        return ctx.Fail(st);
      }
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
