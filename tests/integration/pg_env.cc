#include "pg_env.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"

extern char** environ;

namespace reprise::testing {

namespace {

constexpr char kPgBin[] = "/usr/lib/postgresql/15/bin";
constexpr char kServerUser[] = "postgres";

bool IsRoot() { return geteuid() == 0; }

std::string ReadFd(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

std::string RunuserPath() {
  for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "/usr/sbin/runuser";
}

// Like RunCommand, but the child gets only stdin (/dev/null), stdout and stderr: pg_ctl's
// postmaster must not inherit our pipes, or reading them would never see the end.
RunResult Run(const std::vector<std::string>& argv) {
  RunResult r;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc == 0) {
    std::thread err_reader([&] { r.err = ReadFd(err_pipe[0]); });
    r.out = ReadFd(out_pipe[0]);
    err_reader.join();
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else {
    r.err = "cannot run '" + argv[0] + "': " + std::strerror(rc);
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  return r;
}

RunResult RunAsServer(std::vector<std::string> argv) {
  std::vector<std::string> full = PgServer::AsServerUser();
  full.insert(full.end(), argv.begin(), argv.end());
  return Run(full);
}

// chown -R to the server user (root only); symlinks are not followed.
void ChownToServer(const std::string& path) {
  if (!IsRoot()) return;
  Run({"/bin/chown", "-R", std::string(kServerUser) + ":" + kServerUser, path});
}

// chown of one directory (not its contents) to the server user (root only).
void ChownOneToServer(const std::string& path) {
  if (!IsRoot()) return;
  if (struct passwd* pw = getpwnam(kServerUser)) {
    if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      std::cerr << "pg_env: cannot chown '" << path << "'\n";
    }
  }
}

void AppendConf(const std::string& data_dir, const std::vector<std::string>& lines) {
  std::ofstream out(data_dir + "/postgresql.conf", std::ios::app);
  out << "\n# reprise tests\n";
  for (const auto& l : lines) out << l << "\n";
}

// The server user must be able to reach `dir`: every parent needs o+x. Temp directories
// (0700 from mkdtemp) are opened up; anything else is reported.
bool MakeTraversable(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::absolute(dir);
  for (fs::path cur = p.parent_path(); !cur.empty(); cur = cur.parent_path()) {
    struct stat st;
    if (stat(cur.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH)) {
      if (cur.string().starts_with("/tmp/")) {
        chmod(cur.c_str(), (st.st_mode & 07777) | 0055);
      } else {
        std::cerr << "pg_env: '" << cur << "' is not traversable by user postgres\n";
        return false;
      }
    }
    if (cur == cur.root_path()) break;
  }
  return true;
}

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parent pid and state of a process from /proc, or false when it is gone.
bool ProcStat(pid_t pid, pid_t* ppid, char* state) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(in, s)) return false;
  size_t close = s.rfind(')');
  if (close == std::string::npos || close + 4 > s.size()) return false;
  std::istringstream rest(s.substr(close + 2));
  rest >> *state >> *ppid;
  return true;
}

bool Alive(pid_t pid) {
  pid_t ppid;
  char state = '?';
  return ProcStat(pid, &ppid, &state) && state != 'Z' && state != 'X';
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    pid_t ppid = 0;
    char state;
    if (ProcStat(static_cast<pid_t>(pid), &ppid, &state) && ppid == parent) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(d);
  return out;
}

}  // namespace

void ChownToPostgres(const std::string& path) { ChownToServer(path); }

ArchivingRepo MakeArchivingRepo(const std::string& base, const std::string& passphrase) {
  namespace fs = std::filesystem;
  ArchivingRepo a{base + "/reprise", base + "/repo", base + "/repo.key", ""};
  std::error_code ec;
  fs::copy_file(REPRISE_BINARY, a.bin, ec);
  if (ec) return {.error = "copying the binary: " + ec.message()};
  chmod(a.bin.c_str(), 0755);
  std::string pw = base + "/pw";
  WriteFile(pw, passphrase + "\n");
  chmod(pw.c_str(), 0600);
  RunResult r = RunCommand({a.bin, "--repo", a.repo, "--password-file", pw, "init"});
  if (r.exit_code == 0) {
    r = RunCommand({a.bin, "--repo", a.repo, "--password-file", pw, "key", "add",
                    "--generate-key-file", a.key});
  }
  if (r.exit_code != 0) return {.error = "reprise init / key add: " + r.err};
  ChownToPostgres(a.repo);
  ChownToPostgres(a.key);
  return a;
}

bool PgAvailable() {
  if (access((std::string(kPgBin) + "/pg_ctl").c_str(), X_OK) != 0) return false;
  if (IsRoot() && getpwnam(kServerUser) == nullptr) return false;
  return true;
}

int FreePort() {
  // Shared by all tests of this process; a different starting point per process keeps
  // concurrently running test binaries apart (ctest -j runs one process per test, with
  // neighbouring pids: they are hashed apart). Below 32768, Linux's default range for
  // outgoing connections' ports, so no client socket takes a port a server is about to use.
  static std::mutex mu;
  static std::set<int> given;
  static int next =
      20000 + static_cast<int>((static_cast<uint64_t>(getpid()) * 2654435761u) % 12000);
  std::lock_guard<std::mutex> lock(mu);
  for (int tries = 0; tries < 20000; ++tries) {
    int port = next++;
    if (next >= 32000) next = 20000;
    if (given.count(port)) continue;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (free) {
      given.insert(port);
      return port;
    }
  }
  return 0;
}

std::string PgServer::Bin(const std::string& program) {
  return std::string(kPgBin) + "/" + program;
}

std::vector<std::string> PgServer::AsServerUser() {
  if (!IsRoot()) return {};
  return {RunuserPath(), "-u", kServerUser, "--"};
}

std::unique_ptr<PgServer> PgServer::Create(const std::string& base_dir, const std::string& name,
                                           const PgServerOptions& options) {
  std::unique_ptr<PgServer> s(new PgServer());
  s->base_dir_ = std::filesystem::absolute(base_dir).string();
  s->name_ = name;
  s->data_dir_ = s->base_dir_ + "/" + name;
  s->port_ = FreePort();
  std::filesystem::create_directories(s->base_dir_);
  if (!MakeTraversable(s->base_dir_)) return nullptr;
  chmod(s->base_dir_.c_str(), 0755);
  ChownOneToServer(s->base_dir_);
  RunResult r = RunAsServer({Bin("initdb"), "-D", s->data_dir_, "-U", "postgres",
                             "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                             "--no-instructions"});
  if (r.exit_code != 0) {
    std::cerr << "pg_env: initdb '" << s->data_dir_ << "' failed:\n" << r.out << r.err;
    return nullptr;
  }
  std::vector<std::string> conf = {
      "listen_addresses = '127.0.0.1'",
      "port = " + std::to_string(s->port_),
      "unix_socket_directories = '" + s->base_dir_ + "'",
      "wal_level = replica",
      "max_wal_senders = 10",
      "max_replication_slots = 10",
      "wal_keep_size = 128MB",  // replicas and WAL checks find their segments
      "hot_standby = on",
      "fsync = off",  // test data only
      "shared_buffers = 32MB",
  };
  conf.insert(conf.end(), options.conf.begin(), options.conf.end());
  AppendConf(s->data_dir_, conf);
  if (options.start && !s->Start()) {
    std::cerr << "pg_env: server '" << name << "' did not start:\n"
              << ReadFileText(s->log_file());
    return nullptr;
  }
  return s;
}

std::unique_ptr<PgServer> PgServer::CreateReplica(const PgServer& primary,
                                                  const std::string& name) {
  std::unique_ptr<PgServer> s(new PgServer());
  s->base_dir_ = primary.base_dir_;
  s->name_ = name;
  s->data_dir_ = s->base_dir_ + "/" + name;
  s->port_ = FreePort();
  RunResult r = RunAsServer({Bin("pg_basebackup"), "-h", "127.0.0.1", "-p",
                             std::to_string(primary.port()), "-U", "postgres", "-D",
                             s->data_dir_, "-R", "-X", "stream", "-c", "fast", "--no-sync"});
  if (r.exit_code != 0) {
    std::cerr << "pg_env: pg_basebackup for '" << name << "' failed:\n" << r.out << r.err;
    return nullptr;
  }
  // -R wrote standby.signal and primary_conninfo; the copied conf still names the primary's
  // port, and a later line wins.
  AppendConf(s->data_dir_, {"port = " + std::to_string(s->port_)});
  if (!s->Start()) {
    std::cerr << "pg_env: replica '" << name << "' did not start:\n"
              << ReadFileText(s->log_file());
    return nullptr;
  }
  // Wait until it streams, so that tests see a working standby.
  for (int i = 0; i < 200; ++i) {
    auto out = primary.Sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
    if (out && *out != "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return s;
}

std::unique_ptr<PgServer> PgServer::Adopt(const std::string& data_dir, const std::string& name) {
  namespace fs = std::filesystem;
  std::unique_ptr<PgServer> s(new PgServer());
  s->data_dir_ = fs::absolute(data_dir).lexically_normal().string();
  while (s->data_dir_.size() > 1 && s->data_dir_.back() == '/') s->data_dir_.pop_back();
  s->base_dir_ = fs::path(s->data_dir_).parent_path().string();
  s->name_ = name;
  s->port_ = FreePort();
  if (!MakeTraversable(s->data_dir_)) return nullptr;
  chmod(s->base_dir_.c_str(), 0755);
  ChownOneToServer(s->base_dir_);  // the log file and the socket go next to the data
  ChownToServer(s->data_dir_);
  // Tablespace links point outside the data directory.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(s->data_dir_ + "/pg_tblspc", ec)) {
    if (e.is_symlink()) ChownToServer(fs::read_symlink(e.path()).string());
  }
  chmod(s->data_dir_.c_str(), 0700);
  AppendConf(s->data_dir_, {"port = " + std::to_string(s->port_),
                            "unix_socket_directories = '" + s->base_dir_ + "'"});
  return s;
}

PgServer::~PgServer() {
  if (!detached_ && !data_dir_.empty() && running()) {
    RunAsServer({Bin("pg_ctl"), "-D", data_dir_, "-m", "immediate", "-w", "stop"});
  }
}

std::string PgServer::conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string PgServer::log_file() const { return base_dir_ + "/" + name_ + ".log"; }

bool PgServer::Start() {
  RunResult r = RunAsServer(
      {Bin("pg_ctl"), "-D", data_dir_, "-l", log_file(), "-w", "-t", "120", "start"});
  return r.exit_code == 0;
}

void PgServer::Stop() {
  RunAsServer({Bin("pg_ctl"), "-D", data_dir_, "-m", "fast", "-w", "-t", "60", "stop"});
}

void PgServer::Kill() {
  std::ifstream pidfile(data_dir_ + "/postmaster.pid");
  pid_t pid = 0;
  if (!(pidfile >> pid) || pid <= 0) return;
  // The children are found before the postmaster dies: afterwards they are re-parented.
  std::vector<pid_t> all = ChildrenOf(pid);
  all.push_back(pid);
  kill(pid, SIGKILL);
  for (pid_t c : all) kill(c, SIGKILL);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (pid_t c : all) {
    while (Alive(c) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // The dead postmaster may stay a zombie when nobody reaps orphans (PID 1 in some
  // containers); its lock file would then keep the next start from running.
  // The same goes for the socket's lock file.
  if (!Alive(pid)) {
    std::error_code ec;
    std::string socket = base_dir_ + "/.s.PGSQL." + std::to_string(port_);
    std::filesystem::remove(data_dir_ + "/postmaster.pid", ec);
    std::filesystem::remove(socket + ".lock", ec);
    std::filesystem::remove(socket, ec);
  }
}

bool PgServer::Promote() {
  RunResult r = RunAsServer({Bin("pg_ctl"), "-D", data_dir_, "-w", "-t", "60", "promote"});
  return r.exit_code == 0;
}

bool PgServer::running() const {
  RunResult r = RunAsServer({Bin("pg_ctl"), "-D", data_dir_, "status"});
  return r.exit_code == 0;
}

std::optional<std::string> PgServer::Sql(const std::string& sql, const std::string& dbname,
                                         std::string* error) const {
  RunResult r = Run({Bin("psql"), "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                     std::to_string(port_), "-U", "postgres", "-d", dbname, "-c", sql});
  if (r.exit_code != 0) {
    if (error) *error += r.err;
    return std::nullopt;
  }
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int PgServer::Pgbench(const std::vector<std::string>& args, const std::string& dbname) const {
  std::vector<std::string> argv = {Bin("pgbench"), "-h", "127.0.0.1", "-p",
                                   std::to_string(port_), "-U", "postgres", "-q"};
  // -q only quiets "-i"; pgbench rejects it otherwise.
  bool init = false;
  for (const auto& a : args) init = init || a == "-i" || a == "--initialize";
  if (!init) argv.pop_back();
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(dbname);
  RunResult r = Run(argv);
  if (r.exit_code != 0) std::cerr << "pg_env: pgbench failed:\n" << r.out << r.err;
  return r.exit_code;
}

}  // namespace reprise::testing
