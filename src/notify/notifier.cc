#include "notify/notifier.h"

#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/bytes.h"
#include "notify/smtp.h"
#include "storage/s3/http.h"

namespace reprise::notify {

namespace {

constexpr long kTimeoutMs = 10000;

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// HttpClient says "<request> '<url>' failed: <reason>"; only the reason is shown, and any
// trace of the URL is taken out: Slack and many webhook URLs are credentials.
std::string TransportReason(const Status& st, const std::string& url) {
  std::string msg = st.message();
  if (size_t at = msg.find("failed: "); at != std::string::npos) msg = msg.substr(at + 8);
  for (size_t at = msg.find(url); !url.empty() && at != std::string::npos; at = msg.find(url)) {
    msg.replace(at, url.size(), "<url>");
  }
  return msg;
}

// Slack incoming webhooks and generic webhooks: one JSON POST, 2xx is delivered.
s3::HttpOptions TimedHttpOptions(long total_timeout_ms) {
  s3::HttpOptions o;
  o.connect_timeout_seconds = 10;
  o.total_timeout_ms = total_timeout_ms;
  return o;
}

class HttpChannel : public Channel {
 public:
  HttpChannel(std::string kind, std::string name, std::string url)
      : kind_(std::move(kind)),
        name_(std::move(name)),
        url_(std::move(url)),
        http_(TimedHttpOptions(kTimeoutMs)) {}

  std::string name() const override { return name_; }

  Status Send(const Event& event) override {
    nlohmann::json body;
    if (kind_ == "slack") {
      body = {{"text", event.text.empty() ? event.title : event.title + "\n" + event.text}};
    } else {
      body = {{"type", event.type},
              {"title", event.title},
              {"text", event.text},
              {"data", event.data}};
    }
    std::string text = Dump(body);
    s3::HttpRequest req{.method = "POST",
                        .url = url_,
                        .headers = {{"Content-Type", "application/json"}},
                        .body = AsBytes(text)};
    std::string what = fmt::format("{} channel '{}'", kind_, name_);
    Result<s3::HttpResponse> resp = http_.Send(req);
    if (!resp.ok()) {
      return Status(resp.status().code(), what + ": " + TransportReason(resp.status(), url_));
    }
    long code = resp->status;
    if (code >= 200 && code < 300) return Status::Ok();
    std::string msg = fmt::format("{}: HTTP {}", what, code);
    if (code == 401 || code == 403 || code == 404 || code == 410) {
      // Slack answers 403/404/410 for a revoked or mistyped hook.
      return PermissionDenied(msg + ": HINT: check the channel's URL (or the secret holding it)");
    }
    if (code == 408 || code == 429 || code >= 500) return Unavailable(msg);
    return FailedPrecondition(msg);
  }

 private:
  std::string kind_, name_, url_;
  s3::HttpClient http_;
};

const char* KindName(NotifyChannel::Kind kind) {
  switch (kind) {
    case NotifyChannel::Kind::kSlack: return "slack";
    case NotifyChannel::Kind::kWebhook: return "webhook";
    case NotifyChannel::Kind::kSmtp: return "mail";
  }
  return "?";
}

Result<std::string> Secret(const SecretLookup& secrets, const std::string& name,
                           const std::string& ctx) {
  if (!secrets) return FailedPrecondition(ctx + ": no secrets available");
  Result<std::string> v = secrets(name);
  if (!v.ok()) return v.status().WithContext(ctx);
  std::string s = v.value();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.empty()) return InvalidArgument(ctx + ": the secret is empty");
  return s;
}

}  // namespace

Result<std::unique_ptr<Channel>> MakeChannel(const NotifyChannel& spec,
                                             const SecretLookup& secrets) {
  std::string what = fmt::format("{} channel '{}'", KindName(spec.kind), spec.name);
  std::string url = spec.url;
  bool from_secret = false;
  if (url.empty()) {
    if (spec.url_secret.empty()) return InvalidArgument(what + ": no url or url_secret");
    ASSIGN_OR_RETURN(url, Secret(secrets, spec.url_secret,
                                 fmt::format("{}: secret '{}'", what, spec.url_secret)));
    from_secret = true;
  }
  switch (spec.kind) {
    case NotifyChannel::Kind::kSlack:
    case NotifyChannel::Kind::kWebhook:
      if (!url.starts_with("http://") && !url.starts_with("https://")) {
        return InvalidArgument(what + ": the url must start with http:// or https://");
      }
      return std::unique_ptr<Channel>(
          std::make_unique<HttpChannel>(KindName(spec.kind), spec.name, url));
    case NotifyChannel::Kind::kSmtp: {
      if (!url.starts_with("smtp://") && !url.starts_with("smtps://")) {
        return InvalidArgument(what + ": the url must start with smtp:// or smtps://");
      }
      SmtpSettings s;
      s.name = spec.name;
      s.url = url;
      s.url_from_secret = from_secret;
      s.from = spec.from;
      s.to = spec.to;
      if (!spec.credentials.empty()) {
        std::string ctx = fmt::format("{}: secret '{}'", what, spec.credentials);
        ASSIGN_OR_RETURN(std::string cred, Secret(secrets, spec.credentials, ctx));
        size_t colon = cred.find(':');
        if (colon == std::string::npos || colon == 0) {
          return InvalidArgument(ctx + ": expected 'user:password'");
        }
        s.user = cred.substr(0, colon);
        s.password = cred.substr(colon + 1);
      }
      return MakeSmtpChannel(std::move(s));
    }
  }
  return Internal(what + ": unknown kind");
}

bool EventMatches(const std::string& pattern, const std::string& type) {
  // Glob with '*' only (any run of characters, dots included), iterative with backtracking
  // to the last star.
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < type.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == type[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

DispatchReport Dispatch(const NotificationsSpec& spec, const SecretLookup& secrets,
                        const Event& event) {
  DispatchReport report;
  // Which channels: document order of the channels, each once.
  std::set<std::string> wanted;
  if (spec.routes.empty()) {
    for (const auto& c : spec.channels) wanted.insert(c.name);
  } else {
    for (const auto& route : spec.routes) {
      bool match = false;
      for (const auto& pattern : route.on) match = match || EventMatches(pattern, event.type);
      if (!match) continue;
      for (const auto& name : route.to) {
        if (spec.FindChannel(name) == nullptr) {
          report.failed.push_back(fmt::format("channel '{}': a route names it but no channel "
                                              "has that name",
                                              name));
          continue;
        }
        wanted.insert(name);
      }
    }
  }
  struct Job {
    std::string name;
    std::unique_ptr<Channel> channel;
    Status status;
  };
  std::vector<Job> jobs;
  for (const auto& c : spec.channels) {
    if (!wanted.count(c.name)) continue;
    wanted.erase(c.name);  // a duplicated channel name gets one message
    Job job{c.name, nullptr, Status::Ok()};
    // Secrets are looked up here, on the caller's thread; only sending runs in parallel.
    Result<std::unique_ptr<Channel>> made = MakeChannel(c, secrets);
    if (made.ok()) {
      job.channel = std::move(made).value();
    } else {
      job.status = made.status();
    }
    jobs.push_back(std::move(job));
  }
  // One thread per channel: a mail server that hangs for 10 s does not delay the Slack message.
  std::vector<std::thread> threads;
  for (auto& job : jobs) {
    if (!job.channel) continue;
    threads.emplace_back([&job, &event] { job.status = job.channel->Send(event); });
  }
  for (auto& t : threads) t.join();
  for (const auto& job : jobs) {
    if (job.status.ok()) {
      report.sent.push_back(job.name);
    } else {
      report.failed.push_back(job.status.message());
    }
  }
  return report;
}

}  // namespace reprise::notify
