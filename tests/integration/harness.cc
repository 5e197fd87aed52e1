#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/bytes.h"
#include "repo/crypto.h"

extern char** environ;

namespace reprise::testing {

namespace {

std::string ReadAll(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

std::string FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return Sha256(AsBytes(s)).Hex();
}

void Walk(const std::string& root, const std::string& rel, std::map<std::string, EntryFacts>* out,
          std::map<std::pair<dev_t, ino_t>, std::string>* inodes) {
  std::string full = rel.empty() ? root : root + "/" + rel;
  struct stat st;
  if (lstat(full.c_str(), &st) != 0) return;
  EntryFacts f;
  f.mode = st.st_mode & 07777;
  f.uid = st.st_uid;
  f.gid = st.st_gid;
  f.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode)) {
    f.type = "file";
    f.size = st.st_size;
    f.blocks = st.st_blocks;
    f.sha256 = FileSha256(full);
    if (st.st_nlink > 1) {
      auto [it, fresh] = inodes->try_emplace({st.st_dev, st.st_ino}, rel);
      f.link_group = it->second;
    }
  } else if (S_ISDIR(st.st_mode)) {
    f.type = "dir";
  } else if (S_ISLNK(st.st_mode)) {
    f.type = "symlink";
    char buf[4096];
    ssize_t n = readlink(full.c_str(), buf, sizeof buf);
    f.target.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
    f.mtime_ns = 0;  // not every filesystem keeps symlink times exactly; compared elsewhere
  } else if (S_ISFIFO(st.st_mode)) {
    f.type = "fifo";
  } else {
    f.type = "other";
  }
  (*out)[rel] = f;
  if (!S_ISDIR(st.st_mode)) return;
  DIR* d = opendir(full.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (auto* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) Walk(root, rel.empty() ? n : rel + "/" + n, out, inodes);
}

}  // namespace

RunResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  int out_pipe[2], err_pipe[2];
  // O_CLOEXEC: only the dup2 copies (fds 1 and 2) reach the child, so a daemon it leaves behind
  // (pg_ctl start) cannot hold the pipes open and hang the reader.
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
  posix_spawn_file_actions_addclose(&fa, err_pipe[0]);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    if (s.rfind("REPRISE_", 0) == 0) continue;  // the test says what it means
    envs.push_back(s);
  }
  // Later settings win, as in a shell: drop earlier ones of the same name.
  for (const auto& e : env) {
    std::string name = e.substr(0, e.find('=') + 1);
    std::erase_if(envs, [&](const std::string& x) { return x.rfind(name, 0) == 0; });
    envs.push_back(e);
  }
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);
  RunResult r;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    r.err = std::string("spawn failed: ") + std::strerror(rc);
    return r;
  }
  std::thread err_reader([&] { r.err = ReadAll(err_pipe[0]); });
  r.out = ReadAll(out_pipe[0]);
  err_reader.join();
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::map<std::string, EntryFacts> Snapshot(const std::string& root) {
  std::map<std::string, EntryFacts> out;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  Walk(root, "", &out, &inodes);
  return out;
}

std::string Diff(const std::map<std::string, EntryFacts>& want,
                 const std::map<std::string, EntryFacts>& got) {
  std::ostringstream d;
  for (const auto& [path, w] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      d << "missing: '" << path << "'\n";
      continue;
    }
    EntryFacts g = it->second, ww = w;
    if (ww.type == "file" && g.blocks <= ww.blocks + 64) g.blocks = ww.blocks;
    if (path.empty()) g.mtime_ns = ww.mtime_ns, g.mode = ww.mode;  // the root dir itself
    if (!(ww == g)) {
      d << "differs: '" << path << "': type " << ww.type << "/" << g.type << " mode " << std::oct
        << ww.mode << "/" << g.mode << std::dec << " uid " << ww.uid << "/" << g.uid << " mtime "
        << ww.mtime_ns << "/" << g.mtime_ns << " size " << ww.size << "/" << g.size
        << " blocks " << ww.blocks << "/" << it->second.blocks << " target '" << ww.target
        << "'/'" << g.target << "' sha " << ww.sha256.substr(0, 8) << "/"
        << g.sha256.substr(0, 8) << " link '" << ww.link_group << "'/'" << g.link_group
        << "'\n";
    }
  }
  for (const auto& [path, g] : got)
    if (!want.count(path)) d << "extra: '" << path << "'\n";
  return d.str();
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/reprise-it-XXXXXX";
  path_ = mkdtemp(tmpl);
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty()) out.push_back(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string RandomText(size_t n, unsigned seed) {
  static const char* words[] = {"reprise ", "backup ", "restore ", "point ", "pack ",
                                "index ", "vector ", "chunk ", "\n", "embedding "};
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n + 16);
  while (s.size() < n) s += words[rng() % 10];
  s.resize(n);
  return s;
}

void WriteNoise(const std::string& path, size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  WriteFile(path, s);
}

}  // namespace reprise::testing
