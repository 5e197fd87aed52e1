// Notifications (plan: notifications.channels / routes): Slack and generic webhooks over
// libcurl, mail over SMTP with libcurl. A failed notification never fails the operation that
// sent it: Dispatch returns what failed, the caller logs it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "plan/plan.h"

namespace reprise::notify {

struct Event {
  std::string type;     // "failover.completed", "failover.refused", "backup.failed" ...
  std::string title;    // one line: "failover to 'dr' completed in 4.2 s"
  std::string text;     // several lines for people (mail body, Slack text)
  nlohmann::json data = nlohmann::json::object();  // the figures, for machines
};

class Channel {
 public:
  virtual ~Channel() = default;
  virtual Status Send(const Event& event) = 0;
  virtual std::string name() const = 0;
};

using SecretLookup = std::function<Result<std::string>(const std::string& name)>;
// Slack: POST {"text": title + text}. Webhook: POST {"type","title","text","data"} as JSON.
// SMTP: one mail per event, Subject "[reprise] " + title, to every address of the channel,
// body: the text and `data` as JSON. smtps:// is TLS throughout; smtp:// uses STARTTLS when
// offered and requires it when the channel has credentials (no password in clear).
// Timeouts 10 s; URLs and credentials are never put into messages.
Result<std::unique_ptr<Channel>> MakeChannel(const NotifyChannel& spec,
                                             const SecretLookup& secrets);

// Whether an event type matches a route pattern ("failover.*", "*", exact).
bool EventMatches(const std::string& pattern, const std::string& type);

struct DispatchReport {
  std::vector<std::string> sent;    // channel names
  // Messages naming the channel: "mail channel 'ops-mail': Couldn't connect to server ...",
  // "slack channel 'ops': HTTP 404 ..." (never the URL).
  std::vector<std::string> failed;
};
// Sends the event to every channel a route names for it (no routes: to every channel), each
// channel once and all in parallel; returns when every send has finished or timed out.
DispatchReport Dispatch(const NotificationsSpec& spec, const SecretLookup& secrets,
                        const Event& event);

}  // namespace reprise::notify
