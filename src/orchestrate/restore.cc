#include "orchestrate/restore.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "common/thread_pool.h"
#include "orchestrate/component_factory.h"
#include "repo/content.h"

namespace reprise {

Result<RestoreReport> RunRestore(Repository& repo, const Point& point, const RestoreJob& job,
                                 const std::function<void(const std::string&, uint64_t)>& tick) {
  for (const auto& name : job.components)
    if (!point.Find(name))
      return NotFound("point '" + point.id.Short() + "' has no component '" + name + "'");
  RestoreReport report;
  auto start = std::chrono::steady_clock::now();
  ThreadPool pool(ReadThreads(), 4 * ReadThreads());
  for (const auto& pc : point.components) {
    bool wanted = job.components.empty() ||
                  std::find(job.components.begin(), job.components.end(), pc.name) !=
                      job.components.end();
    if (!wanted) continue;
    if (pc.status != "ok") {
      if (!job.components.empty())
        return FailedPrecondition("component '" + pc.name + "' failed in point '" +
                                  point.id.Short() + "' (" + pc.error + "): nothing to restore");
      continue;
    }
    const ComponentSpec* spec = job.plan ? job.plan->FindComponent(pc.name) : nullptr;
    ASSIGN_OR_RETURN(auto component, MakeComponentForRestore(pc.kind, spec, job.secrets));
    RepoRestoreSource source(repo, pc, pool);
    auto t0 = std::chrono::steady_clock::now();
    Status st;
    {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      std::thread ticker;
      if (tick)
        ticker = std::thread([&] {
          std::unique_lock lk(mu);
          while (!cv.wait_for(lk, std::chrono::milliseconds(250), [&] { return done; }))
            tick(pc.name, source.bytes_read());
        });
      st = component->Restore(pc.info, source, job.options);
      {
        std::lock_guard lk(mu);
        done = true;
      }
      cv.notify_all();
      if (ticker.joinable()) ticker.join();
    }
    if (!st.ok()) return st.WithContext("restoring component '" + pc.name + "'");
    ComponentRestoreReport cr{
        .name = pc.name,
        .kind = pc.kind,
        .seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
        .bytes = source.bytes_read()};
    report.bytes += cr.bytes;
    report.components.push_back(cr);
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace reprise
