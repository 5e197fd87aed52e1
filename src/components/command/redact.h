// Redaction of Kubernetes Secrets in YAML, for command components whose output is
// `kubectl get ... -o yaml` (or -o json, which is YAML too).
//
// The input is one or many YAML documents ("---"). Every mapping anywhere in them whose `kind`
// is the scalar "Secret" (a top-level object, an item of a `kind: List` at any depth of
// nesting, or an object embedded elsewhere) has:
//   - every value under `data` and `stringData` replaced by the string "REDACTED" (keys kept;
//     a null value stays null; a non-map `data` is replaced whole);
//   - its metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"] (a JSON copy
//     of the applied Secret, data included) rewritten with the same redaction, or replaced by
//     "REDACTED" when it is not JSON.
// `type`, metadata and every other field are kept. Nothing outside Secrets is touched: values
// in ConfigMaps, environment variables in Deployments, secrets inside strings are NOT redacted.
//
// The output is YAML again: the same documents in the same order, semantically equal to the
// input apart from the redacted values (comments, anchors and the original layout are not
// kept; scalars that were quoted in the input are written double-quoted so that "123" or
// "true" stay strings).
//
// Errors: input that is not YAML -> kInvalidArgument naming the line and column (never the
// text, which may hold a secret).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace reprise {

// `secrets`, when given, receives the number of Secret objects redacted.
Result<std::string> RedactKubernetesSecrets(std::string_view yaml, size_t* secrets = nullptr);

}  // namespace reprise
