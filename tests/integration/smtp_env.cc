#include "smtp_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "pg_env.h"

namespace reprise::testing {

namespace {

// /usr/bin/python3 on purpose: a python3 earlier on PATH (pyenv) lacks Debian's modules.
constexpr char kPython[] = "/usr/bin/python3";

bool Listening(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

bool SmtpSinkAvailable() {
  if (access(kPython, X_OK) != 0) return false;
  for (const char* dir : {"/usr/lib/python3/dist-packages/aiosmtpd"}) {
    if (std::filesystem::exists(dir)) return true;
  }
  return false;
}

std::unique_ptr<SmtpSink> SmtpSink::Start(const std::string& dir) {
  namespace fs = std::filesystem;
  std::unique_ptr<SmtpSink> s(new SmtpSink());
  s->dir_ = fs::absolute(dir).string();
  s->port_ = FreePort();
  std::error_code ec;
  fs::create_directories(s->dir_, ec);
  s->daemon_ = Daemon::Start({kPython, "-m", "aiosmtpd", "-n", "-l",
                              "127.0.0.1:" + std::to_string(s->port_), "-c",
                              "aiosmtpd.handlers.Mailbox", s->dir_ + "/maildir"},
                             s->dir_ + "/smtp.log");
  if (!s->daemon_) return nullptr;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Listening(s->port_)) return s;
    if (!s->daemon_->running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "smtp_env: aiosmtpd did not listen on 127.0.0.1:" << s->port_ << ":\n"
            << s->log();
  return nullptr;
}

std::string SmtpSink::url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> SmtpSink::Messages() const {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ + "/maildir/new", ec)) {
    if (e.is_regular_file()) names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const auto& n : names) {
    std::ifstream in(n, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

std::vector<std::string> SmtpSink::WaitForMessages(size_t count,
                                                   std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<std::string> m = Messages();
    if (m.size() >= count || std::chrono::steady_clock::now() >= deadline) return m;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string SmtpSink::log() const { return daemon_ ? daemon_->log() : ""; }

}  // namespace reprise::testing
