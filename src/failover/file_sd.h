// Prometheus file-based service discovery (file_sd_configs): the failover monitor writes
// which site's endpoints Prometheus should scrape, so that after a promotion the new primary
// is scraped without editing prometheus.yml.
//
// The file is one target group: [{"targets":["host:port",...],"labels":{"name":"value",...}}].
// It is replaced atomically: Prometheus (which re-reads on change) sees either the old or the
// new content, never a half-written file, and a crash leaves one of the two.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace reprise::failover {

// Writes the target group to `path`: a temp file in the same directory (".NAME.tmp-XXXXXX",
// which a "*.json" file_sd glob does not match), fsync, rename over `path`, fsync of the
// directory. The file is mode 0644 (Prometheus often runs as another user). On failure `path`
// is untouched and the temp file removed. Label names must be Prometheus label names
// ([a-zA-Z_][a-zA-Z0-9_]*), else kInvalidArgument and nothing is written.
Status WriteFileSd(const std::string& path, const std::vector<std::string>& targets,
                   const std::map<std::string, std::string>& labels);

// The targets of every group in a file_sd JSON file, in file order. kNotFound when the file
// does not exist, kInvalidArgument when it is not file_sd JSON.
Result<std::vector<std::string>> ReadFileSdTargets(const std::string& path);

}  // namespace reprise::failover
