#include "notify/smtp.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>

#include <fmt/format.h>

#include "common/bytes.h"

namespace reprise::notify {

namespace {

void CurlGlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Header values are one line: a title with a newline must not add headers.
std::string OneLine(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  return out;
}

bool IsAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x80; });
}

// RFC 2047 encoded-word for a non-ASCII Subject, in chunks so no encoded word passes 75
// characters. Chunks end on UTF-8 character boundaries.
std::string EncodeHeaderWord(const std::string& s) {
  if (IsAscii(s)) return s;
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = std::min(s.size(), i + 45);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64Encode(AsBytes(std::string_view(s).substr(i, end - i))) + "?=";
    i = end;
  }
  return out;
}

std::string RfcDate(int64_t now) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(now);
  struct tm tm {};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday],
                     tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

// Body lines end in CRLF and stay under RFC 5322's 998 octets.
void AppendBody(std::string& out, const std::string& text) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos
                                                                  : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    while (line.size() > 990) {
      out += line.substr(0, 990) + "\r\n";
      line.erase(0, 990);
    }
    out += line + "\r\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
}

struct Upload {
  const std::string* data;
  size_t offset = 0;
};

size_t ReadMessage(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* up = static_cast<Upload*>(userdata);
  size_t n = std::min(size * nitems, up->data->size() - up->offset);
  if (n > 0) std::memcpy(buffer, up->data->data() + up->offset, n);
  up->offset += n;
  return n;
}

class SmtpChannel : public Channel {
 public:
  // curl_global_init runs here, on the thread that makes channels (Dispatch sends from others).
  explicit SmtpChannel(SmtpSettings s) : s_(std::move(s)) { CurlGlobalInitOnce(); }

  std::string name() const override { return s_.name; }

  Status Send(const Event& event) override {
    std::string what = fmt::format("mail channel '{}'", s_.name);
    if (s_.to.empty()) return InvalidArgument(what + ": no recipients (to)");
    if (s_.from.empty()) return InvalidArgument(what + ": no sender (from)");
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(),
                                                             &curl_easy_cleanup);
    if (!curl) return Internal("curl_easy_init failed");
    std::string message = BuildMailMessage(event, s_.from, s_.to,
                                           static_cast<int64_t>(std::time(nullptr)));
    Upload upload{&message};
    curl_slist* rcpt = nullptr;
    for (const auto& to : s_.to) {
      rcpt = curl_slist_append(rcpt, ("<" + MailAddress(to) + ">").c_str());
    }
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcpt_owner(rcpt,
                                                                           &curl_slist_free_all);
    std::string mail_from = "<" + MailAddress(s_.from) + ">";
    bool implicit_tls = s_.url.starts_with("smtps://");
    char errbuf[CURL_ERROR_SIZE] = {0};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, s_.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s_.timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s_.timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadMessage);
    curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!implicit_tls) {
      curl_easy_setopt(c, CURLOPT_USE_SSL, s_.user.empty() ? static_cast<long>(CURLUSESSL_TRY)
                                                           : static_cast<long>(CURLUSESSL_ALL));
    }
    if (!s_.user.empty()) {
      curl_easy_setopt(c, CURLOPT_USERNAME, s_.user.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, s_.password.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    long smtp_code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &smtp_code);
    if (rc == CURLE_OK) return Status::Ok();

    std::string reason = curl_easy_strerror(rc);
    // curl's detail names the host at most; a URL from a secret may still be a credential.
    if (errbuf[0] != '\0' && !s_.url_from_secret) reason += std::string(" (") + errbuf + ")";
    if (smtp_code != 0) reason += fmt::format(", last server reply {}", smtp_code);
    std::string msg = what + ": " + reason;
    switch (rc) {
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return InvalidArgument(msg + ": HINT: write smtp://host:port or smtps://host:port");
      case CURLE_LOGIN_DENIED:
        return Unauthenticated(msg + ": HINT: check the user and password in the credentials "
                                     "secret");
      case CURLE_USE_SSL_FAILED:
        return FailedPrecondition(
            msg + ": HINT: the server does not offer STARTTLS, and credentials are only sent "
                  "over TLS; use smtps:// or a server with STARTTLS");
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
        return FailedPrecondition(msg + ": HINT: the server's TLS certificate does not verify");
      default:
        break;
    }
    if (smtp_code >= 500) return FailedPrecondition(msg + ": the mail server refused it");
    return Unavailable(msg);
  }

 private:
  SmtpSettings s_;
};

}  // namespace

std::string MailAddress(const std::string& text) {
  size_t open = text.rfind('<');
  size_t close = text.rfind('>');
  std::string a = (open != std::string::npos && close != std::string::npos && close > open)
                      ? text.substr(open + 1, close - open - 1)
                      : text;
  a = OneLine(a);
  size_t b = a.find_first_not_of(' ');
  size_t e = a.find_last_not_of(' ');
  return b == std::string::npos ? "" : a.substr(b, e - b + 1);
}

std::string BuildMailMessage(const Event& event, const std::string& from,
                             const std::vector<std::string>& to, int64_t now) {
  std::string domain = "reprise.invalid";
  std::string from_addr = MailAddress(from);
  if (size_t at = from_addr.rfind('@'); at != std::string::npos && at + 1 < from_addr.size()) {
    domain = from_addr.substr(at + 1);
  }
  std::random_device rd;
  std::string id = fmt::format("{:08x}{:08x}{:08x}.{}", rd(), rd(), rd(), now);
  std::string to_line;
  for (const auto& t : to) to_line += (to_line.empty() ? "" : ", ") + OneLine(t);

  std::string m;
  m += "Date: " + RfcDate(now) + "\r\n";
  m += "From: " + OneLine(from) + "\r\n";
  m += "To: " + to_line + "\r\n";
  m += "Subject: " + EncodeHeaderWord(OneLine("[reprise] " + event.title)) + "\r\n";
  m += "Message-ID: <" + id + "@" + domain + ">\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  std::string body = event.text.empty() ? event.title : event.text;
  if (!event.data.empty()) {
    body += "\n\n" + event.data.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  m += std::string("Content-Transfer-Encoding: ") + (IsAscii(body) ? "7bit" : "8bit") + "\r\n";
  m += "X-Reprise-Event: " + OneLine(event.type) + "\r\n";
  m += "\r\n";
  AppendBody(m, body);
  return m;
}

std::unique_ptr<Channel> MakeSmtpChannel(SmtpSettings settings) {
  return std::make_unique<SmtpChannel>(std::move(settings));
}

}  // namespace reprise::notify
