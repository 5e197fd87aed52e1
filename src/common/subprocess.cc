#include "common/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace reprise {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kMessageTail = 2000;  // stderr bytes quoted in an error message

// What the child reports through the exec-error pipe before it exits with 127.
enum ChildStage : int { kStageChdir = 1, kStageGroups, kStageGid, kStageUid, kStageExec, kStageFd };

struct ChildFailure {
  int stage;
  int err;
};

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Moves `fd` to a number >= 3 (close-on-exec), so dup2 onto 0..2 in the child never clobbers
// another of our descriptors.
int AboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

Status MakePipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", "subprocess", errno);
  fds[0] = AboveStdio(fds[0]);
  fds[1] = AboveStdio(fds[1]);
  if (fds[0] < 0 || fds[1] < 0) return ErrnoError("fcntl", "subprocess", errno);
  return Status::Ok();
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string LookupEnv(const std::map<std::string, std::string>& env, bool inherit,
                      const std::string& name) {
  auto it = env.find(name);
  if (it != env.end()) return it->second;
  if (inherit) {
    const char* v = getenv(name.c_str());
    if (v != nullptr) return v;
  }
  return "";
}

// Finds argv[0] the way execvp would, but before fork, so a missing program is a clear error.
Result<std::string> ResolveProgram(const SubprocessOptions& o) {
  const std::string& name = o.argv[0];
  if (name.empty()) return InvalidArgument("empty program name");
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), F_OK) != 0) {
      return NotFound(fmt::format("program '{}' not found", name));
    }
    return name;
  }
  std::string path = LookupEnv(o.env, o.inherit_env, "PATH");
  if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
  bool exists_not_executable = false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (access(candidate.c_str(), F_OK) == 0) exists_not_executable = true;
    start = end + 1;
  }
  if (exists_not_executable) {
    return PermissionDenied(fmt::format("program '{}' is not executable", name));
  }
  return NotFound(
      fmt::format("program '{}' not found in PATH '{}': HINT: install it or give "
                  "its full path",
                  name, path));
}

struct RunAs {
  bool change = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string home, name;
};

Result<RunAs> ResolveUser(const std::string& user, const std::string& program) {
  RunAs r;
  if (user.empty()) return r;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int err = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (err != 0 || found == nullptr) {
    return InvalidArgument(
        fmt::format("cannot run '{}' as user '{}': no such user", program, user));
  }
  r.uid = pw.pw_uid;
  r.gid = pw.pw_gid;
  r.home = pw.pw_dir ? pw.pw_dir : "/";
  r.name = pw.pw_name;
  if (r.uid == geteuid()) return r;  // already that user: nothing to change
  if (geteuid() != 0) {
    return PermissionDenied(fmt::format(
        "cannot run '{}' as user '{}': only root can switch users: HINT: run reprise as root or "
        "as '{}', or remove the run-as setting",
        program, user, user));
  }
  int n = 64;
  for (int attempt = 0; attempt < 4; ++attempt) {
    r.groups.resize(static_cast<size_t>(n));
    int count = n;
    if (getgrouplist(r.name.c_str(), r.gid, r.groups.data(), &count) >= 0) {
      r.groups.resize(static_cast<size_t>(count));
      break;
    }
    n = count > n ? count : n * 4;
  }
  r.change = true;
  return r;
}

std::string TrimTail(const std::string& s, size_t max) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() > max) {
    t = t.substr(t.size() - max);
    size_t nl = t.find('\n');
    if (nl != std::string::npos && nl + 1 < t.size()) t = t.substr(nl + 1);
    t = "..." + t;
  }
  return t;
}

}  // namespace

std::string SubprocessResult::Describe() const {
  if (timed_out) {
    return term_signal ? fmt::format("timed out and was stopped with signal {} ({})", term_signal,
                                     strsignal(term_signal))
                       : fmt::format("timed out (then exited with status {})", exit_code);
  }
  if (term_signal != 0) {
    return fmt::format("was killed by signal {} ({})", term_signal, strsignal(term_signal));
  }
  return fmt::format("exited with status {}", exit_code);
}

Result<std::unique_ptr<Subprocess>> Subprocess::Start(const SubprocessOptions& options) {
  if (options.argv.empty()) return InvalidArgument("cannot run a program: empty command line");
  std::unique_ptr<Subprocess> p(new Subprocess());
  p->options_ = options;
  p->program_ = options.argv[0];
  if (options.stdin_feed) p->options_.stdin_pipe = true;
  const SubprocessOptions& o = p->options_;

  ASSIGN_OR_RETURN(std::string path, ResolveProgram(o));
  ASSIGN_OR_RETURN(RunAs run_as, ResolveUser(o.run_as, p->program_));

  // Everything the child needs is built here: between fork and exec only async-signal-safe
  // calls may run (other threads may hold the allocator's locks).
  std::map<std::string, std::string> env_over = o.env;
  if (!o.run_as.empty()) {
    env_over.emplace("HOME", run_as.home);
    env_over.emplace("USER", run_as.name);
    env_over.emplace("LOGNAME", run_as.name);
  }
  std::vector<std::string> env_strings;
  if (o.inherit_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      size_t eq = kv.find('=');
      std::string name(kv.substr(0, eq));
      if (env_over.count(name) == 0) env_strings.emplace_back(kv);
    }
  }
  for (const auto& [k, v] : env_over) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = o.argv;
  for (std::string& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  const char* cwd = o.cwd.empty() ? nullptr : o.cwd.c_str();

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  auto close_all = [&] {
    for (int* fds : {in, out, err, report}) {
      CloseFd(fds[0]);
      CloseFd(fds[1]);
    }
  };
  Status st;
  if (o.stdin_pipe) {
    st = MakePipe(in);
  } else {
    in[0] = AboveStdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (in[0] < 0) st = ErrnoError("open", "/dev/null", errno);
  }
  if (st.ok()) st = MakePipe(out);
  if (st.ok()) st = MakePipe(err);
  if (st.ok()) st = MakePipe(report);
  if (!st.ok()) {
    close_all();
    return st;
  }
  // Bigger pipes mean fewer wake-ups when streaming gigabytes (best effort).
  fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
  if (o.stdin_pipe) fcntl(in[1], F_SETPIPE_SZ, 1 << 20);

  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close_all();
    return ErrnoError("fork", p->program_, e);
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    auto fail = [&](int stage) {
      ChildFailure f{stage, errno};
      ssize_t ignored = write(report[1], &f, sizeof(f));
      (void)ignored;
      _exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
    if (o.new_process_group) setpgid(0, 0);
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) fail(kStageFd);
    // Descriptors another thread opened without O_CLOEXEC must not leak into the child.
    syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    if (cwd != nullptr && chdir(cwd) != 0) fail(kStageChdir);
    if (run_as.change) {
      if (setgroups(run_as.groups.size(), run_as.groups.data()) != 0) fail(kStageGroups);
      if (setgid(run_as.gid) != 0) fail(kStageGid);
      if (setuid(run_as.uid) != 0) fail(kStageUid);
    }
    execve(path.c_str(), argv.data(), envp.data());
    fail(kStageExec);
  }

  p->pid_ = pid;
  if (o.new_process_group) setpgid(pid, pid);  // both sides, so no signal races setpgid
  CloseFd(in[0]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  CloseFd(report[1]);
  ChildFailure failure{0, 0};
  size_t got = 0;
  while (got < sizeof(failure)) {
    ssize_t n = read(report[0], reinterpret_cast<char*>(&failure) + got, sizeof(failure) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  CloseFd(report[0]);
  p->stdin_fd_ = in[1];
  p->stdout_fd_ = out[0];
  p->stderr_fd_ = err[0];
  if (got > 0) {
    p->Reap(true);
    CloseFd(p->stdin_fd_);
    const std::string& prog = p->program_;
    switch (failure.stage) {
      case kStageChdir:
        return ErrnoError(fmt::format("cannot start '{}': chdir", prog), o.cwd, failure.err);
      case kStageGroups:
      case kStageGid:
      case kStageUid:
        return PermissionDenied(fmt::format("cannot start '{}' as user '{}': {}", prog, o.run_as,
                                            strerror(failure.err)));
      case kStageExec:
        return ErrnoError(fmt::format("cannot start '{}': exec", prog), path, failure.err);
      default:
        return IOError(fmt::format("cannot start '{}': {}", prog, strerror(failure.err)));
    }
  }
  if (p->stdin_fd_ >= 0) SetNonBlocking(p->stdin_fd_);
  SetNonBlocking(p->stdout_fd_);
  SetNonBlocking(p->stderr_fd_);
  if (o.timeout.count() > 0) p->deadline_ = Clock::now() + o.timeout;
  return p;
}

Subprocess::~Subprocess() {
  CloseFd(stdin_fd_);
  if (pid_ > 0 && !reaped_) {
    Signal(SIGKILL);
    Reap(true);
  }
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
}

void Subprocess::Signal(int sig) {
  if (pid_ <= 0) return;
  if (options_.new_process_group) {
    // The group may outlive the child (what it started); its id is not reused while it lives.
    kill(-pid_, sig);
  } else if (!reaped_) {
    kill(pid_, sig);
  }
}

void Subprocess::Reap(bool block) {
  if (reaped_ || pid_ <= 0) return;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r < 0 && errno == EINTR) continue;
    if (r == pid_) {
      reaped_ = true;
      wait_status_ = status;
    } else if (r < 0) {
      reaped_ = true;  // ECHILD: someone else reaped it; nothing more to learn
      wait_status_ = 0;
    }
    return;
  }
}

void Subprocess::CheckDeadline() {
  if (deadline_ == Clock::time_point::max() || Clock::now() < deadline_) return;
  if (!term_sent_) {
    timed_out_ = term_sent_ = true;
    Signal(SIGTERM);
    deadline_ = Clock::now() + options_.kill_grace;
  } else if (!kill_sent_) {
    kill_sent_ = true;
    Signal(SIGKILL);
    deadline_ = Clock::time_point::max();
  }
}

Status Subprocess::OnStdout(const uint8_t* data, size_t n) {
  if (options_.stdout_sink) return options_.stdout_sink(ByteView(data, n));
  if (result_.stdout_data.size() + n > options_.max_captured_stdout) {
    return InvalidArgument(fmt::format("output of '{}' is larger than {} bytes", program_,
                                       options_.max_captured_stdout));
  }
  result_.stdout_data.append(reinterpret_cast<const char*>(data), n);
  return Status::Ok();
}

void Subprocess::OnStderr(const uint8_t* data, size_t n) {
  std::string& tail = result_.stderr_tail;
  tail.append(reinterpret_cast<const char*>(data), n);
  size_t keep = options_.stderr_tail_bytes;
  // Trim in large steps so a chatty child does not cost a copy per read.
  if (tail.size() > 2 * keep + 4096) tail.erase(0, tail.size() - keep);
}

Status Subprocess::Pump(ByteView* pending) {
  if (buf_.size() < kReadChunk) buf_.resize(kReadChunk);
  std::vector<uint8_t>& buf = buf_;
  for (;;) {
    if (pending != nullptr && pending->empty()) return Status::Ok();
    if (pending == nullptr && stdout_fd_ < 0 && stderr_fd_ < 0) return Status::Ok();
    CheckDeadline();
    if (pending != nullptr && timed_out_) {
      return Unavailable(fmt::format("'{}' timed out", program_));
    }
    if (kill_sent_) {
      // Whatever still holds the pipes escaped the process group: stop waiting for it once
      // the child itself is gone.
      Reap(false);
      if (reaped_) {
        CloseFd(stdout_fd_);
        CloseFd(stderr_fd_);
        continue;
      }
    }
    pollfd fds[3];
    int n = 0, in_i = -1, out_i = -1, err_i = -1;
    if (pending != nullptr && stdin_fd_ >= 0) {
      in_i = n;
      fds[n++] = {stdin_fd_, POLLOUT, 0};
    }
    if (stdout_fd_ >= 0) {
      out_i = n;
      fds[n++] = {stdout_fd_, POLLIN, 0};
    }
    if (stderr_fd_ >= 0) {
      err_i = n;
      fds[n++] = {stderr_fd_, POLLIN, 0};
    }
    if (pending != nullptr && stdin_fd_ < 0) {
      stdin_broken_ = true;
      return IOError(fmt::format("'{}' stopped reading its input", program_));
    }
    int wait_ms = -1;
    if (kill_sent_) {
      wait_ms = 50;
    } else if (deadline_ != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      wait_ms = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 60000));
    }
    int r = poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll", program_, errno);
    }
    if (r == 0) continue;

    if (in_i >= 0 && fds[in_i].revents != 0) {
      // A child that exits early must not kill us with SIGPIPE: block it on this thread for
      // the write and swallow the one the write raised.
      sigset_t pipe_set, old_set, pending_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
      sigpending(&pending_set);
      bool was_pending = sigismember(&pending_set, SIGPIPE) == 1;
      ssize_t w = write(stdin_fd_, pending->data(), pending->size());
      int e = errno;
      if (w < 0 && e == EPIPE && !was_pending) {
        timespec zero{};
        sigtimedwait(&pipe_set, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
      if (w > 0) {
        *pending = pending->subspan(static_cast<size_t>(w));
      } else if (w < 0 && e != EAGAIN && e != EINTR) {
        CloseFd(stdin_fd_);
        stdin_broken_ = true;
        if (e == EPIPE) {
          return IOError(fmt::format("'{}' stopped reading its input", program_));
        }
        return ErrnoError(fmt::format("writing to '{}'", program_), "stdin", e);
      }
    }
    if (out_i >= 0 && fds[out_i].revents != 0) {
      ssize_t got = read(stdout_fd_, buf.data(), buf.size());
      if (got > 0) {
        Status st = OnStdout(buf.data(), static_cast<size_t>(got));
        if (!st.ok()) {
          sink_error_ = st;
          CloseFd(stdout_fd_);
          CloseFd(stdin_fd_);
          Signal(SIGKILL);
          kill_sent_ = true;
          return st;
        }
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseFd(stdout_fd_);
      }
    }
    if (err_i >= 0 && fds[err_i].revents != 0) {
      ssize_t got = read(stderr_fd_, buf.data(), buf.size());
      if (got > 0) {
        OnStderr(buf.data(), static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseFd(stderr_fd_);
      }
    }
  }
}

Status Subprocess::Write(ByteView data) {
  if (!sink_error_.ok()) return sink_error_;
  if (!options_.stdin_pipe) {
    return Internal(fmt::format("'{}' was started without a stdin pipe", program_));
  }
  if (stdin_fd_ < 0) {
    stdin_broken_ = true;
    return IOError(fmt::format("'{}' stopped reading its input", program_));
  }
  ByteView pending = data;
  return Pump(&pending);
}

void Subprocess::CloseStdin() { CloseFd(stdin_fd_); }

Result<SubprocessResult> Subprocess::Wait() {
  CloseStdin();
  Status pumped = Pump(nullptr);
  if (!pumped.ok()) {
    Signal(SIGKILL);
    kill_sent_ = true;
  }
  // Pipes closed: wait for the exit itself, still under the deadline.
  while (!reaped_) {
    if (deadline_ == Clock::time_point::max()) {
      Reap(true);
      break;
    }
    Reap(false);
    if (reaped_) break;
    CheckDeadline();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
  if (!sink_error_.ok()) return sink_error_;
  if (!pumped.ok()) return pumped;
  std::string& tail = result_.stderr_tail;
  if (tail.size() > options_.stderr_tail_bytes) {
    tail.erase(0, tail.size() - options_.stderr_tail_bytes);
  }
  if (WIFEXITED(wait_status_)) result_.exit_code = WEXITSTATUS(wait_status_);
  if (WIFSIGNALED(wait_status_)) result_.term_signal = WTERMSIG(wait_status_);
  result_.timed_out = timed_out_;
  return std::move(result_);
}

Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> proc, Subprocess::Start(options));
  if (options.stdin_feed) {
    Status fed = options.stdin_feed([&proc](ByteView data) { return proc->Write(data); });
    if (!fed.ok()) {
      if (proc->stdin_broken() || proc->timed_out()) {
        // The child's own failure says more than "it stopped reading".
        ASSIGN_OR_RETURN(SubprocessResult result, proc->Wait());
        if (!result.success()) return result;
        return fed;
      }
      proc->Signal(SIGKILL);
      (void)proc->Wait();
      return fed;
    }
  }
  return proc->Wait();
}

Status CheckExit(const std::string& program, const SubprocessResult& result) {
  if (result.success()) return Status::Ok();
  std::string tail = TrimTail(result.stderr_tail, kMessageTail);
  std::string msg = fmt::format("'{}' {}", program, result.Describe());
  msg += tail.empty() ? std::string(" (no error output)") : ": " + tail;
  if (result.timed_out) return Unavailable(std::move(msg));
  return FailedPrecondition(std::move(msg));
}

Status RunChecked(const SubprocessOptions& options) {
  ASSIGN_OR_RETURN(SubprocessResult result, RunSubprocess(options));
  return CheckExit(options.argv.empty() ? "" : options.argv[0], result);
}

std::vector<std::string> ShellArgv(const std::string& script) { return {"/bin/sh", "-c", script}; }

}  // namespace reprise
