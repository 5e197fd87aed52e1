// A throw-away SMTP sink for the notification tests: aiosmtpd (Debian python3-aiosmtpd) on
// 127.0.0.1:FreePort(), storing every accepted message as one file in DIR/maildir/new (with
// X-MailFrom, X-RcptTo and X-Peer headers added for the envelope). No TLS, no AUTH. Stopped by
// the destructor.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "knot_env.h"

namespace reprise::testing {

bool SmtpSinkAvailable();
inline constexpr char kSmtpSkipReason[] =
    "aiosmtpd is not installed for /usr/bin/python3 (apt-get install python3-aiosmtpd, or bash "
    "scripts/setup.sh --with-services)";

class SmtpSink {
 public:
  // Starts the sink under `dir` and waits (up to 10 s) until it accepts connections.
  // nullptr on failure, after printing its log.
  static std::unique_ptr<SmtpSink> Start(const std::string& dir);

  int port() const { return port_; }
  std::string url() const;  // "smtp://127.0.0.1:<port>"
  // The messages received so far (raw files, sorted by name).
  std::vector<std::string> Messages() const;
  // Waits until at least `count` messages arrived or `timeout` passed; returns them all.
  std::vector<std::string> WaitForMessages(size_t count, std::chrono::milliseconds timeout) const;
  std::string log() const;

 private:
  SmtpSink() = default;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace reprise::testing
