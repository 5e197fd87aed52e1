#include "components/command/command_component.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

#include "common/subprocess.h"
#include "components/command/redact.h"

namespace reprise {
namespace {

using nlohmann::json;

constexpr std::string_view kRedactKubernetes = "kubernetes-secrets";

class Sha256Stream {
 public:
  Sha256Stream() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void Update(ByteView data) {
    EVP_DigestUpdate(ctx_.get(), data.data(), data.size());
    bytes_ += data.size();
  }
  std::string Hex() {
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    return HexEncode(ByteView(md, n));
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
  uint64_t bytes_ = 0;
};

// The last few lines of stderr, for a message.
std::string StderrTail(const std::string& err) {
  constexpr size_t kMaxChars = 2000, kMaxLines = 10;
  std::string s = err;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t start = s.size(), lines = 0;
  while (start > 0 && lines < kMaxLines && s.size() - start < kMaxChars) {
    size_t nl = s.rfind('\n', start - 1);
    start = nl == std::string::npos ? 0 : nl;
    ++lines;
    if (nl == std::string::npos) break;
  }
  if (start < s.size() && s[start] == '\n') ++start;
  if (s.size() - start > kMaxChars) start = s.size() - kMaxChars;
  return s.substr(start);
}

// "the backup command of component 'k8s' exited with status 2: <stderr>". The command text is
// left out on purpose: a plan author may have written a secret into it.
Status CheckCommandExit(const std::string& what, const SubprocessResult& r) {
  if (r.success()) return Status::Ok();
  std::string tail = StderrTail(r.stderr_tail);
  std::string msg = fmt::format("{} {}", what, r.Describe());
  msg += tail.empty() ? std::string(" (no error output)") : ": " + tail;
  // kFailedPrecondition even for a timeout: RunBackup takes kUnavailable from a component for a
  // storage failure and stops the whole backup, where only this component should fail.
  if (r.timed_out) {
    return FailedPrecondition(msg +
                              ": HINT: raise the component's timeout if the command needs longer");
  }
  return FailedPrecondition(std::move(msg));
}

std::string NameOf(const CommandComponentOptions& o, const json& info) {
  if (!o.name.empty()) return o.name;
  if (info.is_object() && info.contains("name") && info["name"].is_string()) {
    std::string n = info["name"].get<std::string>();
    if (!n.empty()) return n;
  }
  return "command";
}

SubprocessOptions CommandOptions(const CommandComponentOptions& o, const std::string& script) {
  SubprocessOptions so;
  so.argv = ShellArgv(script);
  so.env = o.env;
  so.run_as = o.run_as;
  so.cwd = o.cwd.empty() ? "/" : o.cwd;
  so.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(o.timeout);
  return so;
}

Status WriteAll(int fd, ByteView data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// The file a restore without a command writes.
Result<std::string> TargetFile(const std::string& target, const std::string& name) {
  namespace fs = std::filesystem;
  if (target.empty()) {
    return InvalidArgument(fmt::format(
        "command component '{}' has no restore command and no target: HINT: give a target file "
        "or directory, or a restore command in the plan",
        name));
  }
  std::error_code ec;
  if (target.back() == '/' || fs::is_directory(target, ec)) {
    std::string file = name;
    for (char& c : file) {
      if (c == '/') c = '_';
    }
    return (fs::path(target) / (file + ".out")).string();
  }
  return target;
}

Status WriteFileAtomically(RestoreSource& source, const json& content, const std::string& path,
                           bool overwrite, const std::string& want_sha, Sha256Stream& hash) {
  namespace fs = std::filesystem;
  fs::path final_path(path);
  fs::path dir = final_path.parent_path();
  if (dir.empty()) dir = ".";
  struct stat st;
  if (!overwrite && lstat(path.c_str(), &st) == 0) {
    return AlreadyExists(fmt::format(
        "'{}' already exists: HINT: restore with overwrite to replace it, or choose another "
        "target",
        path));
  }
  std::string templ = (dir / ("." + final_path.filename().string() + ".reprise-XXXXXX")).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  int fd = mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) {
    Status st = ErrnoError("create a temporary file in", dir.string(), errno);
    return Status(st.code(),
                  st.message() + ": HINT: the target's directory must exist and be writable");
  }
  std::string tmp = buf.data();
  Status s = source.ReadContent(content, [&](ByteView data) {
    hash.Update(data);
    return WriteAll(fd, data, tmp);
  });
  if (s.ok() && fsync(fd) != 0) s = ErrnoError("fsync", tmp, errno);
  if (close(fd) != 0 && s.ok()) s = ErrnoError("close", tmp, errno);
  if (s.ok() && !want_sha.empty() && hash.Hex() != want_sha) {
    s = Corruption(fmt::format("the restored stream for '{}' does not match its recorded SHA-256",
                               path));
  }
  if (s.ok()) {
    if (overwrite) {
      if (rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename to", path, errno);
    } else if (link(tmp.c_str(), path.c_str()) != 0) {
      // link() never replaces: a file that appeared meanwhile is not clobbered.
      s = errno == EEXIST ? AlreadyExists(fmt::format("'{}' already exists", path))
                          : ErrnoError("link to", path, errno);
    }
  }
  unlink(tmp.c_str());  // after rename: ENOENT, harmless
  if (!s.ok()) return s;
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (fsync(dfd) != 0) s = ErrnoError("fsync", dir.string(), errno);
    close(dfd);
  }
  return s;
}

}  // namespace

CommandComponent::CommandComponent(CommandComponentOptions options)
    : options_(std::move(options)) {}

Result<json> CommandComponent::Backup(BackupSink& sink) {
  const std::string name = NameOf(options_, nullptr);
  const std::string what = fmt::format("the backup command of component '{}'", name);
  if (options_.backup.empty()) {
    return InvalidArgument(fmt::format(
        "command component '{}' has no backup command: HINT: set backup: in the plan", name));
  }
  const bool redact = !options_.redact.empty();
  if (redact && options_.redact != kRedactKubernetes) {
    return InvalidArgument(fmt::format(
        "command component '{}': unknown redact filter '{}': HINT: the only filter is '{}'", name,
        options_.redact, kRedactKubernetes));
  }

  SubprocessOptions so = CommandOptions(options_, options_.backup);
  Sha256Stream hash;
  std::unique_ptr<ContentWriter> writer;
  std::string buffered;
  if (redact) {
    so.stdout_sink = [&](ByteView data) -> Status {
      sink.progress().bytes_read.fetch_add(data.size(), std::memory_order_relaxed);
      if (buffered.size() + data.size() > options_.redact_max_bytes) {
        return FailedPrecondition(fmt::format(
            "{} printed more than {} bytes, the most that is redacted in memory: HINT: split it "
            "into several components (one namespace or kind each)",
            what, options_.redact_max_bytes));
      }
      buffered.append(AsString(data));
      return Status::Ok();
    };
  } else {
    writer = sink.NewContent();
    so.stdout_sink = [&](ByteView data) -> Status {
      sink.progress().bytes_read.fetch_add(data.size(), std::memory_order_relaxed);
      hash.Update(data);
      return writer->Write(data);
    };
  }

  Result<SubprocessResult> run = RunSubprocess(so);
  if (!run.ok()) return run.status().WithContext(what);
  const SubprocessResult& r = *run;
  // On failure the partial stream is dropped (its writer's destructor ends it); the component
  // fails and its chunks are unreferenced.
  if (!r.success()) return CheckCommandExit(what, r);

  size_t secrets = 0;
  if (redact) {
    Result<std::string> clean = RedactKubernetesSecrets(buffered, &secrets);
    std::string().swap(buffered);  // the unredacted text goes as soon as possible
    if (!clean.ok()) return clean.status().WithContext(fmt::format("component '{}'", name));
    writer = sink.NewContent();
    ByteView all = AsBytes(*clean);
    constexpr size_t kPiece = 1 << 20;
    for (size_t off = 0; off < all.size(); off += kPiece) {
      ByteView piece = all.subspan(off, std::min(kPiece, all.size() - off));
      hash.Update(piece);
      RETURN_IF_ERROR(writer->Write(piece));
    }
  }
  ContentFuture content = writer->Close();
  const uint64_t bytes = hash.bytes();
  json entry = {{"type", "stdout"},
                {"bytes", bytes},
                {"sha256", hash.Hex()},
                {"redacted", redact}};
  RETURN_IF_ERROR(sink.AddEntry(std::move(entry), {content}));
  sink.progress().entries.fetch_add(1, std::memory_order_relaxed);

  json info = {{"command", options_.backup},
               {"exit_code", r.exit_code},
               {"bytes", bytes},
               {"redact", redact ? json(options_.redact) : json(nullptr)},
               {"name", name}};
  if (redact) info["secrets_redacted"] = secrets;
  return info;
}

Status CommandComponent::Restore(const json& info, RestoreSource& source,
                                 const RestoreOptions& options) {
  const std::string name = NameOf(options_, info);
  std::vector<json> entries;
  RETURN_IF_ERROR(source.ForEachEntry([&](const json& e) {
    if (e.value("type", "") == "stdout") entries.push_back(e);
    return Status::Ok();
  }));
  if (entries.size() != 1 || !entries[0].contains("contents") ||
      !entries[0]["contents"].is_array() || entries[0]["contents"].size() != 1) {
    return Corruption(fmt::format(
        "the manifest of command component '{}' does not hold exactly one stored stream", name));
  }
  const json& entry = entries[0];
  const json& content = entry["contents"][0];
  const std::string want_sha = entry.value("sha256", "");

  std::string command = options_.restore;
  if (auto p = options.params.find("restore"); p != options.params.end()) {
    if (!p->is_string()) {
      return InvalidArgument(fmt::format(
          "command component '{}': the restore parameter must be a string", name));
    }
    command = p->get<std::string>();
  }

  Sha256Stream hash;
  if (command.empty()) {
    ASSIGN_OR_RETURN(std::string path, TargetFile(options.target, name));
    return WriteFileAtomically(source, content, path, options.overwrite, want_sha, hash)
        .WithContext(fmt::format("restoring command component '{}'", name));
  }

  const std::string what = fmt::format("the restore command of component '{}'", name);
  SubprocessOptions so = CommandOptions(options_, command);
  so.stdin_feed = [&](const StdinWriter& write) {
    return source.ReadContent(content, [&](ByteView data) {
      hash.Update(data);
      return write(data);
    });
  };
  so.stdout_sink = [](ByteView) { return Status::Ok(); };
  Result<SubprocessResult> run = RunSubprocess(so);
  if (!run.ok()) {
    Status st = run.status().WithContext(what);
    if (st.message().find("stopped reading") != std::string::npos) {
      st = Status(st.code(), st.message() +
                                 ": HINT: the restore command must read all of its standard input");
    }
    return st;
  }
  RETURN_IF_ERROR(CheckCommandExit(what, *run));
  if (!want_sha.empty() && hash.Hex() != want_sha) {
    return Corruption(fmt::format(
        "the stream piped into {} does not match its recorded SHA-256", what));
  }
  return Status::Ok();
}

}  // namespace reprise
