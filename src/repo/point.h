// Recovery points: what one backup saved, per component. A point is written last, after every
// pack and index it needs is durable, so a visible point is always restorable.
//
//   points/<id> = Seal(CompressBlob(JSON), aad="reprise-point-v1"), id = SHA-256 of the file
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

struct PointComponent {
  std::string name;
  std::string kind;
  std::string status = "ok";  // ok | failed
  std::string error;
  int64_t started_ns = 0;
  int64_t finished_ns = 0;
  std::vector<Id> manifest;  // tree blobs: the manifest's JSON lines, chunked
  uint64_t entries = 0;
  nlohmann::json info = nlohmann::json::object();   // what the component returned
  nlohmann::json stats = nlohmann::json::object();  // bytes read, new bytes, ...
  std::vector<std::string> warnings;                // first 100
  uint64_t warning_count = 0;
};

struct Point {
  Id id;  // not stored in the file: it is the file's name
  int64_t time_ns = 0;
  std::string host, user, plan, site;
  std::vector<std::string> tags;
  std::string status = "complete";  // complete | partial
  std::vector<PointComponent> components;
  nlohmann::json stats = nlohmann::json::object();
  // Set by a re-encrypting `copy`: the id (64 hex) of the point this one was copied from in
  // the source repository, whose key differs (so the ids differ). Empty otherwise; stored as
  // "copied_from" only when set.
  std::string copied_from;

  const PointComponent* Find(const std::string& component) const;
};

nlohmann::json PointToJson(const Point& p);
Result<Point> PointFromJson(const nlohmann::json& j);

}  // namespace reprise
