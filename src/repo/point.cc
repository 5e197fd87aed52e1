#include "repo/point.h"

#include "common/clock.h"
#include "repo/format.h"

namespace reprise {

const PointComponent* Point::Find(const std::string& component) const {
  for (const auto& c : components)
    if (c.name == component) return &c;
  return nullptr;
}

nlohmann::json PointToJson(const Point& p) {
  nlohmann::json comps = nlohmann::json::array();
  for (const auto& c : p.components) {
    nlohmann::json manifest = nlohmann::json::array();
    for (const auto& id : c.manifest) manifest.push_back(id.Hex());
    comps.push_back({{"name", c.name},
                     {"kind", c.kind},
                     {"status", c.status},
                     {"error", c.error},
                     {"started", FormatRfc3339(c.started_ns)},
                     {"finished", FormatRfc3339(c.finished_ns)},
                     {"manifest", manifest},
                     {"entries", c.entries},
                     {"info", c.info},
                     {"stats", c.stats},
                     {"warnings", c.warnings},
                     {"warning_count", c.warning_count}});
  }
  nlohmann::json j = {{"version", kFormatVersion}, {"time", FormatRfc3339(p.time_ns)},
                      {"host", p.host},           {"user", p.user},
                      {"plan", p.plan},           {"site", p.site},
                      {"tags", p.tags},           {"status", p.status},
                      {"components", comps},      {"stats", p.stats}};
  if (!p.copied_from.empty()) j["copied_from"] = p.copied_from;
  return j;
}

Result<Point> PointFromJson(const nlohmann::json& j) {
  try {
    Point p;
    if (j.at("version").get<int>() != kFormatVersion)
      return FailedPrecondition("point has format version " + j.at("version").dump() +
                                ", this reprise reads version " + std::to_string(kFormatVersion));
    if (!ParseRfc3339(j.at("time").get<std::string>(), &p.time_ns))
      return Corruption("point has a bad time");
    p.host = j.value("host", "");
    p.user = j.value("user", "");
    p.plan = j.value("plan", "");
    p.site = j.value("site", "");
    p.tags = j.value("tags", std::vector<std::string>{});
    p.status = j.at("status").get<std::string>();
    p.stats = j.value("stats", nlohmann::json::object());
    p.copied_from = j.value("copied_from", "");
    for (const auto& cj : j.at("components")) {
      PointComponent c;
      c.name = cj.at("name").get<std::string>();
      c.kind = cj.at("kind").get<std::string>();
      c.status = cj.at("status").get<std::string>();
      c.error = cj.value("error", "");
      ParseRfc3339(cj.value("started", ""), &c.started_ns);
      ParseRfc3339(cj.value("finished", ""), &c.finished_ns);
      for (const auto& h : cj.at("manifest")) {
        ASSIGN_OR_RETURN(Id id, Id::FromHex(h.get<std::string>()));
        c.manifest.push_back(id);
      }
      c.entries = cj.value("entries", uint64_t{0});
      c.info = cj.value("info", nlohmann::json::object());
      c.stats = cj.value("stats", nlohmann::json::object());
      c.warnings = cj.value("warnings", std::vector<std::string>{});
      c.warning_count = cj.value("warning_count", uint64_t{0});
      p.components.push_back(std::move(c));
    }
    return p;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("point is malformed: ") + e.what());
  }
}

}  // namespace reprise
