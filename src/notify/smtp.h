// Internal to src/notify: mail over SMTP with libcurl.
//
// TLS: smtps:// is TLS from the first byte. smtp:// with credentials requires STARTTLS
// (CURLUSESSL_ALL), so a password never crosses the network in clear, even if someone strips
// the server's STARTTLS offer; smtp:// without credentials uses STARTTLS when the server
// offers it (CURLUSESSL_TRY) and plain SMTP otherwise, as mail relays do. Certificates are
// always verified.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "notify/notifier.h"

namespace reprise::notify {

struct SmtpSettings {
  std::string name;       // the channel's, for messages
  std::string url;        // smtp://host[:port] or smtps://host[:port]
  bool url_from_secret = false;
  std::string from;       // "reprise <dr@example.com>" or "dr@example.com"
  std::vector<std::string> to;
  std::string user, password;  // empty user: no AUTH
  long timeout_ms = 10000;
};

std::unique_ptr<Channel> MakeSmtpChannel(SmtpSettings settings);

// The RFC 5322 message for `event` (CRLF line ends): Date, From, To, Subject "[reprise] " +
// title, Message-ID, MIME-Version, Content-Type text/plain; charset=utf-8, then the text and
// the event's data as indented JSON. `now` is seconds since the epoch (UTC).
std::string BuildMailMessage(const Event& event, const std::string& from,
                             const std::vector<std::string>& to, int64_t now);

// "Name <a@b>" -> "a@b"; "a@b" -> "a@b".
std::string MailAddress(const std::string& text);

}  // namespace reprise::notify
