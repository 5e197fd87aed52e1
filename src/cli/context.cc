#include "cli/context.h"

#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

namespace reprise::cli {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Result<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("opening " + what, path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  // One trailing newline is the editor's, not the secret's.
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  if (s.empty()) return InvalidArgument(what + " '" + path + "' is empty");
  return s;
}

Result<std::string> Prompt(const std::string& question) {
  if (!isatty(STDIN_FILENO))
    return InvalidArgument(
        "no passphrase: give --password-file or REPRISE_PASSWORD_FILE (or "
        "secrets.repository_password in the plan)");
  std::cerr << question << std::flush;
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string line;
  std::getline(std::cin, line);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::cerr << "\n";
  if (line.empty()) return InvalidArgument("the passphrase is empty");
  return line;
}

}  // namespace

Result<const Plan*> Context::LoadPlanIfAny() {
  if (!plan_loaded_) {
    plan_loaded_ = true;
    std::string path = opts.plan;
    if (path.empty() && std::filesystem::exists("reprise.yaml")) path = "reprise.yaml";
    if (!path.empty()) {
      ASSIGN_OR_RETURN(Plan p, LoadPlan(path));
      for (const auto& w : p.warnings)
        if (opts.verbose > 0) Warn("warning: " + w.ToString());
      plan_ = std::move(p);
    }
  }
  return plan_ ? &*plan_ : static_cast<const Plan*>(nullptr);
}

Result<Context::RepoChoice> Context::ChooseRepository() {
  if (!opts.repo.empty()) return RepoChoice{opts.repo};
  if (auto env = Env("REPRISE_REPOSITORY"); !env.empty()) return RepoChoice{env};
  ASSIGN_OR_RETURN(const Plan* plan, LoadPlanIfAny());
  if (plan && !plan->sites.empty()) {
    if (opts.site.empty()) {
      const Site* primary = plan->PrimarySite();
      const Site* s = primary ? primary : &plan->sites.front();
      return RepoChoice{s->repository, s};
    }
    const Site* s = plan->FindSite(opts.site);
    if (!s) return InvalidArgument("the plan has no site '" + opts.site + "'");
    return RepoChoice{s->repository, s};
  }
  return InvalidArgument(
      "no repository: give -r/--repo, set REPRISE_REPOSITORY, or name sites in the plan");
}

Result<std::string> Context::RepositoryUrl() {
  ASSIGN_OR_RETURN(RepoChoice c, ChooseRepository());
  return c.url;
}

Result<const Site*> Context::RepositorySite() {
  ASSIGN_OR_RETURN(RepoChoice c, ChooseRepository());
  return c.site;
}

Result<std::string> Context::Passphrase(bool confirm_new) {
  if (!opts.password_file.empty()) return ReadSecretFile(opts.password_file, "password file");
  if (auto f = Env("REPRISE_PASSWORD_FILE"); !f.empty()) return ReadSecretFile(f, "password file");
  if (auto p = Env("REPRISE_PASSWORD"); !p.empty()) return p;
  ASSIGN_OR_RETURN(const Plan* plan, LoadPlanIfAny());
  if (plan) {
    if (const Secret* s = plan->RepositoryPassword()) {
      if (s->source == Secret::Source::kFile) return ReadSecretFile(s->file, "password file");
      if (!s->env.empty()) {
        auto v = Env(s->env.front().c_str());
        if (v.empty())
          return InvalidArgument("secrets.repository_password: environment variable '" +
                                 s->env.front() + "' is not set");
        return v;
      }
    }
  }
  ASSIGN_OR_RETURN(std::string first, Prompt("passphrase: "));
  if (confirm_new) {
    ASSIGN_OR_RETURN(std::string again, Prompt("passphrase again: "));
    if (again != first) return InvalidArgument("the passphrases do not match");
  }
  return first;
}

Result<std::string> Context::SecretValue(const std::string& name) {
  ASSIGN_OR_RETURN(const Plan* plan, LoadPlanIfAny());
  const Secret* s = plan ? plan->FindSecret(name) : nullptr;
  if (!s) return NotFound("no secret '" + name + "' in the plan");
  if (s->source == Secret::Source::kFile) return ReadSecretFile(s->file, "secret '" + name + "'");
  if (s->env.empty()) return InvalidArgument("secret '" + name + "' names no source");
  // Several variables (an S3 key pair): their values, one per line, as a file would hold them.
  std::string joined;
  for (const std::string& var : s->env) {
    std::string v = Env(var.c_str());
    if (v.empty())
      return InvalidArgument("secrets." + name + ": environment variable '" + var +
                             "' is not set");
    if (!joined.empty()) joined += '\n';
    joined += v;
  }
  return joined;
}

Result<std::optional<StorageCredentials>> Context::SiteCredentials(const Site& site) {
  if (site.credentials.empty()) return std::optional<StorageCredentials>();
  std::string where = "credentials of site '" + site.name + "'";
  ASSIGN_OR_RETURN(const Plan* plan, LoadPlanIfAny());
  const Secret* s = plan ? plan->FindSecret(site.credentials) : nullptr;
  if (!s)
    return InvalidArgument(where + ": the plan has no secret '" + site.credentials +
                           "': HINT: add it under secrets");
  where += " (secret '" + site.credentials + "')";
  std::vector<std::string> parts;
  if (s->source == Secret::Source::kFile) {
    ASSIGN_OR_RETURN(std::string text, ReadSecretFile(s->file, where + " file"));
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
        line.pop_back();
      size_t b = 0;
      while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
      if (b < line.size()) parts.push_back(line.substr(b));
    }
    if (parts.size() < 2 || parts.size() > 3)
      return InvalidArgument(where + ": file '" + s->file + "' has " +
                             std::to_string(parts.size()) +
                             " non-empty line(s): HINT: write 2 or 3 lines: the access key id, "
                             "the secret access key, and optionally a session token");
  } else {
    if (s->env.size() < 2 || s->env.size() > 3)
      return InvalidArgument(where + " names " + std::to_string(s->env.size()) +
                             " environment variable(s): HINT: list 2 or 3: "
                             "env: [KEY_ID_VAR, SECRET_KEY_VAR] (and a session token's)");
    for (const std::string& var : s->env) {
      std::string v = Env(var.c_str());
      if (v.empty())
        return InvalidArgument(where + ": environment variable '" + var + "' is not set");
      parts.push_back(std::move(v));
    }
  }
  return std::optional<StorageCredentials>(
      StorageCredentials{.access_key_id = parts[0],
                         .secret_access_key = parts[1],
                         .session_token = parts.size() > 2 ? parts[2] : "",
                         .origin = "secret '" + site.credentials + "' of site '" + site.name +
                                   "'"});
}

Result<std::unique_ptr<Storage>> Context::OpenSiteStorage(const std::string& url,
                                                           const Site* site) {
  if (!site) return OpenStorage(url);
  ASSIGN_OR_RETURN(std::optional<StorageCredentials> creds, SiteCredentials(*site));
  return OpenStorage(url, creds ? &*creds : nullptr);
}

Result<std::unique_ptr<Storage>> Context::OpenRepoStorage() {
  ASSIGN_OR_RETURN(RepoChoice c, ChooseRepository());
  return OpenSiteStorage(c.url, c.site);
}

Result<std::unique_ptr<Repository>> Context::OpenRepoAt(const std::string& url, const Site* site,
                                                        std::string_view passphrase) {
  ASSIGN_OR_RETURN(std::unique_ptr<Storage> storage, OpenSiteStorage(url, site));
  return Repository::Open(std::move(storage), passphrase);
}

Result<std::unique_ptr<Repository>> Context::OpenRepo() {
  ASSIGN_OR_RETURN(RepoChoice c, ChooseRepository());
  ASSIGN_OR_RETURN(std::string pass, Passphrase());
  return OpenRepoAt(c.url, c.site, pass);
}

void Context::Say(const std::string& line) const {
  if (opts.quiet || opts.json) return;
  EndProgress();
  std::cout << line << "\n" << std::flush;
}

void Context::Warn(const std::string& line) const {
  if (opts.quiet) return;
  EndProgress();
  std::cerr << line << "\n" << std::flush;
}

void Context::PrintJson(const nlohmann::json& j) const { std::cout << j.dump(2) << "\n"; }

void Context::Progress(const std::string& line) const {
  if (opts.quiet || opts.json || !isatty(STDERR_FILENO)) return;
  std::cerr << "\r\033[K" << line << std::flush;
  progress_shown_ = true;
}

void Context::EndProgress() const {
  if (!progress_shown_) return;
  std::cerr << "\r\033[K" << std::flush;
  progress_shown_ = false;
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk: return kExitOk;
    case Code::kInvalidArgument: return kExitUsage;
    case Code::kLocked: return kExitLocked;
    case Code::kUnauthenticated: return kExitWrongPassphrase;
    case Code::kCorruption: return kExitDamage;
    default: return kExitError;
  }
}

int Context::Fail(const Status& status) const {
  EndProgress();
  std::cerr << "reprise: error: " << status.message() << "\n";
  return ExitCodeFor(status);
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string FormatSeconds(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.2fs", s);
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60,
                  static_cast<int>(std::lround(s)) % 60);
  }
  return buf;
}

}  // namespace reprise::cli
