// The process runner against real programs (sh, cat, echo, env, sleep): streaming both ways
// without buffering, exit codes and signals, timeouts, stderr tails, the environment, users.
#include "common/subprocess.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace reprise {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A cheap running hash of a byte stream, position-sensitive, to compare what went in with
// what came out.
struct StreamHash {
  uint64_t h = 1469598103934665603ULL;
  uint64_t bytes = 0;
  void Add(ByteView b) {
    for (uint8_t c : b) h = (h ^ c) * 1099511628211ULL;
    bytes += b.size();
  }
};

Bytes Noise(size_t n, uint32_t seed) {
  Bytes out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<uint8_t>(x);
  }
  return out;
}

Result<SubprocessResult> RunArgv(std::vector<std::string> argv) {
  SubprocessOptions o;
  o.argv = std::move(argv);
  return RunSubprocess(o);
}

TEST(SubprocessTest, EchoOutputIsCaptured) {
  auto r = RunArgv({"echo", "hello", "two words"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_data, "hello two words\n");
  EXPECT_TRUE(CheckExit("echo", *r).ok());
}

TEST(SubprocessTest, ArgumentsAreNotInterpretedByAShell) {
  auto r = RunArgv({"echo", "$HOME", "a;b", "`id`"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "$HOME a;b `id`\n");
}

TEST(SubprocessTest, ExitCodeIsReportedWithProgramAndStderr) {
  auto r = RunArgv(ShellArgv("echo 'something broke' >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->success());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->term_signal, 0);
  Status st = CheckExit("/bin/sh", *r);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("'/bin/sh' exited with status 3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("something broke"), std::string::npos) << st.message();
}

TEST(SubprocessTest, DeathBySignalIsReported) {
  auto r = RunArgv(ShellArgv("kill -9 $$"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->success());
  EXPECT_EQ(r->term_signal, SIGKILL);
  Status st = CheckExit("sh", *r);
  EXPECT_NE(st.message().find("killed by signal 9"), std::string::npos) << st.message();
}

TEST(SubprocessTest, FiftyMegabytesStreamThroughCatBothWays) {
  constexpr size_t kTotal = 50u << 20;
  constexpr size_t kPiece = 1u << 20;
  StreamHash in, out;
  size_t largest_chunk = 0;
  SubprocessOptions o;
  o.argv = {"cat"};
  o.stdin_feed = [&](const StdinWriter& write) -> Status {
    for (size_t done = 0; done < kTotal; done += kPiece) {
      Bytes piece = Noise(kPiece, static_cast<uint32_t>(done / kPiece));
      in.Add(piece);
      RETURN_IF_ERROR(write(piece));
    }
    return Status::Ok();
  };
  o.stdout_sink = [&](ByteView b) {
    largest_chunk = std::max(largest_chunk, b.size());
    out.Add(b);
    return Status::Ok();
  };
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe();
  EXPECT_EQ(out.bytes, kTotal);
  EXPECT_EQ(out.h, in.h);
  EXPECT_TRUE(r->stdout_data.empty());  // streamed, not kept
  EXPECT_GT(largest_chunk, 0u);
  EXPECT_LE(largest_chunk, 1u << 20);  // handed over in pieces, never whole
}

TEST(SubprocessTest, ChildThatWritesBeforeReadingDoesNotDeadlock) {
  // 8 MB of output before it reads anything, while we push 8 MB of input: both pipes fill up
  // unless the runner drains stdout while it writes.
  SubprocessOptions o;
  o.argv = ShellArgv("head -c 8000000 /dev/zero; cat > /dev/null; echo done");
  Bytes piece(1 << 20, 'x');
  o.stdin_feed = [&](const StdinWriter& write) -> Status {
    for (int i = 0; i < 8; ++i) RETURN_IF_ERROR(write(piece));
    return Status::Ok();
  };
  o.timeout = milliseconds(60000);
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe();
  EXPECT_EQ(r->stdout_data.size(), 8000000u + 5);
  EXPECT_EQ(r->stdout_data.substr(r->stdout_data.size() - 5), "done\n");
}

TEST(SubprocessTest, ChildExitingEarlyWhileFedReportsItsFailure) {
  SubprocessOptions o;
  o.argv = ShellArgv("echo 'refusing input' >&2; exit 4");
  Bytes piece(1 << 20, 'y');
  o.stdin_feed = [&](const StdinWriter& write) -> Status {
    for (int i = 0; i < 32; ++i) RETURN_IF_ERROR(write(piece));
    return Status::Ok();
  };
  auto r = RunSubprocess(o);  // must neither hang nor die of SIGPIPE
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_NE(r->stderr_tail.find("refusing input"), std::string::npos);
}

TEST(SubprocessTest, ChildSucceedingWithoutReadingEverythingIsAnError) {
  SubprocessOptions o;
  o.argv = {"head", "-c", "10"};
  Bytes piece(1 << 20, 'z');
  o.stdin_feed = [&](const StdinWriter& write) -> Status {
    for (int i = 0; i < 32; ++i) RETURN_IF_ERROR(write(piece));
    return Status::Ok();
  };
  auto r = RunSubprocess(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'head' stopped reading its input"), std::string::npos)
      << r.status().message();
}

TEST(SubprocessTest, FeedErrorStopsTheChildAndIsReturned) {
  SubprocessOptions o;
  o.argv = {"cat"};
  o.stdout_sink = [](ByteView) { return Status::Ok(); };
  o.stdin_feed = [&](const StdinWriter& write) -> Status {
    RETURN_IF_ERROR(write(AsBytes("some bytes")));
    return Corruption("blob 'abcd' is damaged");
  };
  auto r = RunSubprocess(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(SubprocessTest, SinkErrorStopsAnEndlessProducer) {
  SubprocessOptions o;
  o.argv = {"yes"};
  uint64_t seen = 0;
  o.stdout_sink = [&](ByteView b) -> Status {
    seen += b.size();
    if (seen > (4u << 20)) return IOError("disk full");
    return Status::Ok();
  };
  auto start = steady_clock::now();
  auto r = RunSubprocess(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "disk full");
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(SubprocessTest, StderrTailKeepsTheEnd) {
  SubprocessOptions o;
  o.argv = ShellArgv(
      "echo FIRST >&2; head -c 300000 /dev/zero | tr '\\0' x >&2; "
      "echo; echo 'the real reason' >&2; exit 1");
  o.stderr_tail_bytes = 64 << 10;
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->stderr_tail.size(), 64u << 10);
  EXPECT_EQ(r->stderr_tail.find("FIRST"), std::string::npos);
  EXPECT_EQ(r->stderr_tail.substr(r->stderr_tail.size() - 16), "the real reason\n");
  Status st = CheckExit("sh", *r);
  EXPECT_NE(st.message().find("the real reason"), std::string::npos);
  EXPECT_LT(st.message().size(), 4096u);  // a message, not 64 KiB
}

TEST(SubprocessTest, TimeoutSendsTerm) {
  SubprocessOptions o;
  o.argv = {"sleep", "30"};
  o.timeout = milliseconds(200);
  auto start = steady_clock::now();
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGTERM);
  Status st = CheckExit("sleep", *r);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("timed out"), std::string::npos) << st.message();
}

TEST(SubprocessTest, TimeoutKillsWhatIgnoresTerm) {
  SubprocessOptions o;
  // The shell and its sleep both ignore SIGTERM; the group gets SIGKILL after the grace.
  o.argv = ShellArgv("trap '' TERM; sleep 30; echo survived");
  o.timeout = milliseconds(200);
  o.kill_grace = milliseconds(300);
  auto start = steady_clock::now();
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGKILL);
  EXPECT_EQ(r->stdout_data.find("survived"), std::string::npos);
}

TEST(SubprocessTest, EnvironmentIsPassed) {
  SubprocessOptions o;
  o.argv = ShellArgv("printf '%s|%s' \"$REPRISE_TEST_SECRET\" \"$PATH\"");
  o.env = {{"REPRISE_TEST_SECRET", "hunter2 with spaces"}};
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  EXPECT_EQ(r->stdout_data, "hunter2 with spaces|" + path);
}

TEST(SubprocessTest, CleanEnvironmentHasOnlyWhatIsGiven) {
  SubprocessOptions o;
  o.argv = {"/usr/bin/env"};
  o.inherit_env = false;
  o.env = {{"A", "1"}, {"B", "two"}};
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "A=1\nB=two\n");
}

TEST(SubprocessTest, SecretsInEnvironmentStayOutOfMessages) {
  SubprocessOptions o;
  o.argv = ShellArgv("echo 'authentication failed' >&2; exit 2");
  o.env = {{"PGPASSWORD", "s3cr3t-value"}};
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  Status st = CheckExit(o.argv[0], *r);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message().find("s3cr3t-value"), std::string::npos);
  EXPECT_EQ(st.ToString().find("s3cr3t-value"), std::string::npos);
}

TEST(SubprocessTest, MissingProgramIsAClearError) {
  auto r = RunArgv({"reprise-no-such-program-x", "arg"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("'reprise-no-such-program-x' not found"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("HINT"), std::string::npos);

  auto abs = RunArgv({"/nonexistent/dir/pg_dump"});
  ASSERT_FALSE(abs.ok());
  EXPECT_EQ(abs.status().code(), Code::kNotFound);
  EXPECT_NE(abs.status().message().find("/nonexistent/dir/pg_dump"), std::string::npos);

  auto empty = RunArgv({});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
}

TEST(SubprocessTest, WorkingDirectoryIsSet) {
  SubprocessOptions o;
  o.argv = {"pwd"};
  o.cwd = "/usr/share";
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "/usr/share\n");

  o.cwd = "/nonexistent/reprise-dir";
  auto bad = RunSubprocess(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
  EXPECT_NE(bad.status().message().find("'pwd'"), std::string::npos) << bad.status().message();
}

TEST(SubprocessTest, CapturedOutputIsBounded) {
  SubprocessOptions o;
  o.argv = {"head", "-c", "100000", "/dev/zero"};
  o.max_captured_stdout = 1000;
  auto r = RunSubprocess(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than 1000 bytes"), std::string::npos);
}

TEST(SubprocessTest, RunsAsAnotherUser) {
  passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user 'nobody'";
  uid_t want = nobody->pw_uid;
  std::string home = nobody->pw_dir;
  SubprocessOptions o;
  o.argv = ShellArgv("id -u; echo \"$HOME\"; echo \"$USER\"");
  o.run_as = "nobody";
  o.cwd = "/";
  auto r = RunSubprocess(o);
  if (geteuid() != 0) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
    return;
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, std::to_string(want) + "\n" + home + "\nnobody\n");

  o.run_as = "reprise-no-such-user";
  auto unknown = RunSubprocess(o);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'reprise-no-such-user'"), std::string::npos);
}

TEST(SubprocessTest, PushInterfaceWritesAndWaits) {
  SubprocessOptions o;
  o.argv = {"wc", "-c"};
  o.stdin_pipe = true;
  auto p = Subprocess::Start(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*p)->Write(AsBytes("0123456789")).ok());
  auto r = (*p)->Wait();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "1000\n");
}

}  // namespace
}  // namespace reprise
