#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "repo/format.h"
#include "repo/keys.h"

namespace reprise::cli {

namespace {

Result<std::string> NewPassphrase(Context& ctx, const std::string& file) {
  if (file.empty()) {
    // Reuse the prompt logic, which refuses to run without a terminal.
    GlobalOptions saved = ctx.opts;
    ctx.opts.password_file.clear();
    auto p = ctx.Passphrase(/*confirm_new=*/true);
    ctx.opts = saved;
    if (!p.ok())
      return InvalidArgument("no new passphrase: give --new-password-file (" +
                             p.status().message() + ")");
    return p;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return ErrnoError("opening new password file", file, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (s.empty()) return InvalidArgument("new password file '" + file + "' is empty");
  return s;
}

Result<Id> ResolveKey(Repository& repo, const std::string& prefix) {
  ASSIGN_OR_RETURN(auto keys, ListKeyFiles(repo.storage()));
  const KeyInfo* found = nullptr;
  for (const auto& k : keys) {
    if (k.id.Hex().rfind(prefix, 0) != 0) continue;
    if (found) return InvalidArgument("key '" + prefix + "' is ambiguous");
    found = &k;
  }
  if (!found) return NotFound("no key '" + prefix + "'. HINT: 'reprise key list'");
  return found->id;
}

// Wraps the open repository's master key under a new passphrase; returns the new key's id.
Result<Id> AddNewKey(Context& ctx, Repository& repo, const std::string& new_file) {
  ASSIGN_OR_RETURN(std::string pass, NewPassphrase(ctx, new_file));
  return AddKeyFile(repo.storage(), repo.key(), pass, ScryptParams{}, ctx.clock);
}

}  // namespace

void AddKeyCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("key", "manage the passphrases that open the repository");
  cmd->require_subcommand(1);
  auto new_file = std::make_shared<std::string>();
  auto remove_id = std::make_shared<std::string>();

  auto* list = cmd->add_subcommand("list", "list key files");
  list->callback([&ctx, run] {
    *run = [&ctx]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto keys = ListKeyFiles((*repo)->storage());
      if (!keys.ok()) return ctx.Fail(keys.status());
      nlohmann::json out = nlohmann::json::array();
      for (const auto& k : *keys) {
        bool current = k.id == (*repo)->key_id();
        out.push_back({{"id", k.id.Hex()}, {"current", current}, {"created", k.created},
                       {"host", k.host}, {"user", k.user}, {"kdf", k.kdf_name}});
        ctx.Say(std::string(current ? "* " : "  ") + k.id.Short() + "  " +
                k.created.substr(0, 19) + "  " + k.user + "@" + k.host +
                (k.kdf_name == "hmac-sha256" ? "  (generated key file)" : ""));
      }
      if (ctx.opts.json) ctx.PrintJson(out);
      return kExitOk;
    };
  });

  auto generate = std::make_shared<std::string>();
  auto* add = cmd->add_subcommand("add", "add a passphrase, or a generated key file");
  add->add_option("--new-password-file", *new_file, "file holding the new passphrase");
  add->add_option("--generate-key-file", *generate,
                  "write a new random 256-bit key secret to this file (mode 0600, must not "
                  "exist) and add a key for it: it opens the repository without the slow "
                  "passphrase KDF, for wal-push in archive_command");
  add->callback([&ctx, run, new_file, generate] {
    *run = [&ctx, new_file, generate]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      Result<Id> id = Id{};
      if (!generate->empty()) {
        if (!new_file->empty())
          return ctx.Fail(InvalidArgument("--generate-key-file and --new-password-file exclude "
                                          "each other"));
        std::string secret = GenerateKeySecret();
        int fd = ::open(generate->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) return ctx.Fail(ErrnoError("creating key file", *generate, errno));
        std::string line = secret + "\n";
        bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
        ::close(fd);
        if (!ok) {
          ::unlink(generate->c_str());
          return ctx.Fail(ErrnoError("writing key file", *generate, errno));
        }
        id = AddGeneratedKeyFile((*repo)->storage(), (*repo)->key(), secret, ctx.clock);
        if (!id.ok()) ::unlink(generate->c_str());
      } else {
        id = AddNewKey(ctx, **repo, *new_file);
      }
      if (!id.ok()) return ctx.Fail(id.status());
      if (ctx.opts.json) ctx.PrintJson({{"id", id->Hex()}});
      ctx.Say("added key " + id->Short());
      return kExitOk;
    };
  });

  auto* remove = cmd->add_subcommand("remove", "remove a key file (not the one in use)");
  remove->add_option("id", *remove_id, "key id or prefix")->required();
  remove->callback([&ctx, run, remove_id] {
    *run = [&ctx, remove_id]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto id = ResolveKey(**repo, *remove_id);
      if (!id.ok()) return ctx.Fail(id.status());
      if (*id == (*repo)->key_id())
        return ctx.Fail(FailedPrecondition(
            "key '" + id->Short() + "' is the one this passphrase opens; refusing to remove it. "
            "HINT: open with another key to remove this one, or use 'key passwd'"));
      if (auto st = (*repo)->storage().Delete(KeyFileKey(*id)); !st.ok()) return ctx.Fail(st);
      ctx.Say("removed key " + id->Short());
      return kExitOk;
    };
  });

  auto* passwd = cmd->add_subcommand("passwd", "change the passphrase of the key in use");
  passwd->add_option("--new-password-file", *new_file, "file holding the new passphrase");
  passwd->callback([&ctx, run, new_file] {
    *run = [&ctx, new_file]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      // New key first, then the old one: a crash in between leaves both working.
      auto id = AddNewKey(ctx, **repo, *new_file);
      if (!id.ok()) return ctx.Fail(id.status());
      if (auto st = (*repo)->storage().Delete(KeyFileKey((*repo)->key_id())); !st.ok())
        return ctx.Fail(st);
      if (ctx.opts.json) ctx.PrintJson({{"id", id->Hex()}});
      ctx.Say("passphrase changed: key " + (*repo)->key_id().Short() + " replaced by " +
              id->Short());
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
