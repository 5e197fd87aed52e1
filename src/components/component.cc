#include "components/component.h"

#include <cstdint>
#include <limits>

namespace reprise {

nlohmann::json ContentToJson(const Content& content) {
  if (content.map) return nlohmann::json{{"map", content.map->Hex()}, {"size", content.size}};
  nlohmann::json list = nlohmann::json::array();
  for (const ChunkRef& chunk : content.chunks) {
    list.push_back(nlohmann::json::array({chunk.id.Hex(), chunk.length}));
  }
  return list;
}

namespace {

Status BadContent(size_t index, std::string_view why) {
  return Corruption("content list entry " + std::to_string(index) + " " + std::string(why));
}

Result<ChunkRef> ChunkRefFromJson(const nlohmann::json& pair, size_t index) {
  if (!pair.is_array() || pair.size() != 2) {
    return BadContent(index, "is not an [id, length] pair");
  }
  if (!pair[0].is_string()) return BadContent(index, "has an id that is not a string");
  Result<Id> id = Id::FromHex(pair[0].get_ref<const std::string&>());
  if (!id.ok()) return BadContent(index, "has a bad id: " + id.status().message());
  // Parsed text gives number_unsigned for lengths; negative numbers and fractions are refused.
  const nlohmann::json& len = pair[1];
  if (!len.is_number_unsigned() && !(len.is_number_integer() && len.get<int64_t>() >= 0)) {
    return BadContent(index, "has a length that is not a non-negative integer");
  }
  uint64_t length = pair[1].get<uint64_t>();
  if (length > std::numeric_limits<uint32_t>::max()) {
    return BadContent(index, "has an oversized length " + std::to_string(length));
  }
  return ChunkRef{.id = *id, .length = static_cast<uint32_t>(length)};
}

}  // namespace

Result<Content> ContentFromJson(const nlohmann::json& j) {
  if (j.is_object()) {
    auto map = j.find("map");
    auto size = j.find("size");
    if (map == j.end() || !map->is_string() || size == j.end() || !size->is_number_unsigned())
      return Corruption("content is an object but not a block map reference {map, size}");
    Result<Id> id = Id::FromHex(map->get_ref<const std::string&>());
    if (!id.ok()) return Corruption("block map reference has a bad id: " + id.status().message());
    Content content;
    content.map = *id;
    content.size = size->get<uint64_t>();
    return content;
  }
  if (!j.is_array()) return Corruption("content list is not a JSON array");
  Content content;
  content.chunks.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    ASSIGN_OR_RETURN(ChunkRef chunk, ChunkRefFromJson(j[i], i));
    content.size += chunk.length;
    content.chunks.push_back(chunk);
  }
  return content;
}

}  // namespace reprise
