// What every command shares: global flags, the plan (if any), the passphrase, the open
// repository, and how to talk to the user (text on a terminal, JSON for machines, progress
// only on a TTY). Commands are thin: they parse flags and call repo/ and orchestrate/.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "plan/plan.h"
#include "repo/repository.h"
#include "storage/storage.h"

namespace reprise::cli {

// Exit codes (docs/commands/README.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitUsage = 2,
  kExitPartial = 3,
  kExitLocked = 10,
  kExitWrongPassphrase = 11,
  kExitDamage = 12,
};

struct GlobalOptions {
  std::string repo;           // -r/--repo, REPRISE_REPOSITORY
  std::string password_file;  // --password-file, REPRISE_PASSWORD_FILE
  std::string plan;           // --plan, default ./reprise.yaml when present
  std::string site;           // --site
  bool json = false;
  bool quiet = false;
  int verbose = 0;
};

class Context {
 public:
  GlobalOptions opts;
  SystemClock clock;

  // The plan: the file named by --plan (must exist), else ./reprise.yaml when it exists.
  // Returns nullptr-like empty optional when there is none.
  Result<const Plan*> LoadPlanIfAny();
  // -r, else REPRISE_REPOSITORY, else the plan's site (--site, or the first).
  Result<std::string> RepositoryUrl();
  // --password-file, REPRISE_PASSWORD_FILE, REPRISE_PASSWORD, the plan's
  // secrets.repository_password, else a prompt on a terminal. Never from the command line.
  Result<std::string> Passphrase(bool confirm_new = false);
  Result<std::unique_ptr<Repository>> OpenRepo();
  // The plan's site RepositoryUrl() takes the repository from; null with -r,
  // REPRISE_REPOSITORY or no plan (the storage then finds its own credentials).
  Result<const Site*> RepositorySite();
  // The credentials named by `site.credentials`, nullopt when it names none. An env secret
  // lists 2 or 3 variables: access key id, secret access key, optional session token. A file
  // secret holds 2 or 3 lines, the same in that order. Errors name the site, the secret and
  // the variable or file, never a value.
  Result<std::optional<StorageCredentials>> SiteCredentials(const Site& site);
  // The storage at `url`; with `site` (not null), with that site's credentials, which take
  // precedence over the environment.
  Result<std::unique_ptr<Storage>> OpenSiteStorage(const std::string& url, const Site* site);
  // The storage of the repository (RepositoryUrl + RepositorySite): what `init` creates in.
  Result<std::unique_ptr<Storage>> OpenRepoStorage();
  // OpenRepository(url, passphrase) through OpenSiteStorage.
  Result<std::unique_ptr<Repository>> OpenRepoAt(const std::string& url, const Site* site,
                                                 std::string_view passphrase);
  // The value of the plan's secret `name` (its file's contents, or its first environment
  // variable). Never logged.
  Result<std::string> SecretValue(const std::string& name);

  // Output. Human text goes to stdout unless --json; errors always to stderr.
  bool human() const { return !opts.json; }
  void Say(const std::string& line) const;   // suppressed by --quiet and --json
  void Warn(const std::string& line) const;  // stderr, unless --quiet
  void PrintJson(const nlohmann::json& j) const;
  // A progress line on stderr, redrawn in place; only on a TTY and without --quiet/--json.
  void Progress(const std::string& line) const;
  void EndProgress() const;
  // Prints the error and returns the exit code its Status code maps to.
  int Fail(const Status& status) const;

 private:
  struct RepoChoice {
    std::string url;
    const Site* site = nullptr;
  };
  Result<RepoChoice> ChooseRepository();

  std::optional<Plan> plan_;
  bool plan_loaded_ = false;
  mutable bool progress_shown_ = false;
};

int ExitCodeFor(const Status& status);
std::string FormatBytes(uint64_t bytes);
std::string FormatSeconds(double seconds);

}  // namespace reprise::cli
