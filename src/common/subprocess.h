// Runs a program without a shell: argv as given, extra environment variables (secrets such as
// PGPASSWORD go here, never into argv), optionally as another user, with stdout streamed to a
// callback in chunks (never buffered whole unless asked), stderr's last bytes kept for error
// messages, and a timeout that sends SIGTERM, then SIGKILL after a grace period.
//
// Deadlocks are avoided by polling the child's stdin, stdout and stderr together: while the
// caller writes to stdin, output is drained, so a child that writes before it reads all of
// its input never blocks both sides.
//
// Messages name the program (argv[0]) and carry the tail of its stderr; they never contain
// the environment.
//
// Thread-safety: a Subprocess is used by one thread at a time. Starting children from many
// threads at once is safe (only async-signal-safe calls run between fork and exec).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

// Writes bytes to the child's stdin; returns an error once the child stops reading.
using StdinWriter = std::function<Status(ByteView)>;
// Produces the child's whole stdin by calling `write` as often as needed, then returns. Same
// shape as RestoreSource::ReadContent's sink, so a stored stream can be piped into a command.
using StdinFeed = std::function<Status(const StdinWriter& write)>;

struct SubprocessOptions {
  // argv[0] is looked up in PATH (the PATH of `env` if given there) unless it contains '/'.
  std::vector<std::string> argv;
  // Set (or override) these variables in the child's environment.
  std::map<std::string, std::string> env;
  bool inherit_env = true;  // start from this process's environment (else only `env`)
  // Run as this user (name): needs root unless it is the current user. Sets the uid, the
  // primary and supplementary groups, and HOME, USER and LOGNAME (unless `env` sets them).
  std::string run_as;
  std::string cwd;  // working directory; empty = this process's
  // stdin: when set, a pipe filled by this feed (RunSubprocess); otherwise /dev/null, unless
  // `stdin_pipe` is set for Subprocess::Write.
  StdinFeed stdin_feed;
  bool stdin_pipe = false;
  // stdout: each chunk read is passed here, in order; an error stops the child (SIGKILL) and
  // becomes the run's error. When unset, stdout is kept in SubprocessResult::stdout_data, up
  // to `max_captured_stdout` bytes (more is an error).
  std::function<Status(ByteView)> stdout_sink;
  size_t max_captured_stdout = 16 << 20;
  size_t stderr_tail_bytes = 64 << 10;  // how much of the end of stderr to keep
  // 0 = no limit. On expiry: SIGTERM, then SIGKILL after `kill_grace`.
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds kill_grace{5000};
  // Put the child in a process group of its own, so that a timeout also stops what it
  // started (sh -c 'a | b').
  bool new_process_group = true;
};

struct SubprocessResult {
  int exit_code = -1;   // when it exited normally
  int term_signal = 0;  // when a signal ended it
  bool timed_out = false;
  std::string stdout_data;  // only without stdout_sink
  std::string stderr_tail;  // the last stderr_tail_bytes of stderr

  bool success() const { return exit_code == 0 && term_signal == 0 && !timed_out; }
  // "exited with status 2", "was killed by signal 9 (Killed)", "timed out after 5s".
  std::string Describe() const;
};

// A started child. Destroying it while the child runs kills the child (SIGKILL) and reaps it.
class Subprocess {
 public:
  // Fails with kNotFound when the program does not exist, kPermissionDenied when it may not
  // be run (or run_as needs root), kInvalidArgument for an empty argv or an unknown user.
  static Result<std::unique_ptr<Subprocess>> Start(const SubprocessOptions& options);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& program() const { return program_; }
  // Writes all of `data` to stdin (needs stdin_pipe), draining stdout and stderr meanwhile.
  // Fails when the child closed its stdin (exited), on a timeout, or when the stdout sink
  // fails; call Wait() afterwards for the exit status.
  Status Write(ByteView data);
  void CloseStdin();
  // Closes stdin, drains stdout and stderr to their end and reaps the child. An error means
  // the stdout sink failed (the child was killed), or captured stdout grew too large.
  Result<SubprocessResult> Wait();
  // Sends `sig` to the child (and its group when it has one).
  void Signal(int sig);
  // True when the last Write failed because the child stopped reading its stdin.
  bool stdin_broken() const { return stdin_broken_; }
  // True once the timeout expired (the child was sent SIGTERM).
  bool timed_out() const { return timed_out_; }

 private:
  Subprocess() = default;
  // Moves data between the pipes until `pending` is written (when given) or, without it,
  // until stdout and stderr end. Enforces the timeout.
  Status Pump(ByteView* pending);
  Status OnStdout(const uint8_t* data, size_t n);
  void OnStderr(const uint8_t* data, size_t n);
  void CheckDeadline();
  void Reap(bool block);

  SubprocessOptions options_;
  std::string program_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  int stdin_fd_ = -1, stdout_fd_ = -1, stderr_fd_ = -1;
  bool stdin_broken_ = false;
  bool timed_out_ = false, term_sent_ = false, kill_sent_ = false;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  SubprocessResult result_;
  Status sink_error_;
  std::vector<uint8_t> buf_;
};

// Starts the child, feeds its stdin, streams its stdout and waits for it. Returns the result
// whatever the exit status (check result.success() or use CheckExit); an error means it could
// not run, or the stdin feed or stdout sink failed (the child is then killed).
Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

// OK when `result` is a success; otherwise kFailedPrecondition (kUnavailable for a timeout):
// "'pg_dump' exited with status 1: <last lines of stderr>".
Status CheckExit(const std::string& program, const SubprocessResult& result);

// RunSubprocess + CheckExit.
Status RunChecked(const SubprocessOptions& options);

// Runs a shell script: {"/bin/sh", "-c", script}. Only for scripts a user wrote, such as a
// plan's command; never build one from data.
std::vector<std::string> ShellArgv(const std::string& script);

}  // namespace reprise
