// Just enough XML for S3's responses (ListObjectsV2, errors, multipart uploads): flat
// documents with known element names, no DTDs. Not a general parser: it finds elements by
// name, ignores namespaces and attributes, and decodes the five entities and &#...; refs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reprise::s3 {

// The raw contents of every <tag>...</tag> (and "" for <tag/>) in document order. An element
// named "KeyCount" is not a "Key". Elements of the same name must not nest (S3's do not).
std::vector<std::string_view> XmlElements(std::string_view doc, std::string_view tag);
// The decoded text of the first <tag>, or nullopt when there is none.
std::optional<std::string> XmlText(std::string_view doc, std::string_view tag);
std::string XmlUnescape(std::string_view text);
std::string XmlEscape(std::string_view text);

}  // namespace reprise::s3
