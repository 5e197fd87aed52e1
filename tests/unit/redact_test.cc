// RedactKubernetesSecrets (src/components/command/redact.h): every Secret shape loses its
// values, nothing else changes (compared as parsed trees, not as text).
#include "components/command/redact.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/bytes.h"

namespace reprise {
namespace {

std::vector<YAML::Node> Parse(const std::string& text) { return YAML::LoadAll(text); }

// What a scalar reads as: a quoted one is a string; a plain one is what yaml-cpp converts it to.
std::string ScalarType(const YAML::Node& n) {
  if (n.Tag() == "!") return "string";
  if (n.Tag() != "?" && !n.Tag().empty()) return n.Tag();
  bool b;
  if (YAML::convert<bool>::decode(n, b)) return "bool";
  double d;
  if (YAML::convert<double>::decode(n, d)) return "number";
  if (YAML::IsNullString(n.Scalar())) return "null";
  return "string";
}

// Deep equality of two trees: same types, same scalars, same map entries in the same order.
// Scalars also compare by what they read as, so that "123" vs 123 counts as a change.
bool SameTree(const YAML::Node& a, const YAML::Node& b, std::string* why, std::string path = "") {
  if (a.Type() != b.Type()) {
    *why = "type differs at '" + path + "'";
    return false;
  }
  switch (a.Type()) {
    case YAML::NodeType::Scalar: {
      if (a.Scalar() != b.Scalar()) {
        *why = "scalar differs at '" + path + "': '" + a.Scalar() + "' vs '" + b.Scalar() + "'";
        return false;
      }
      if (ScalarType(a) != ScalarType(b)) {
        *why = "scalar type differs at '" + path + "': " + ScalarType(a) + " vs " + ScalarType(b);
        return false;
      }
      return true;
    }
    case YAML::NodeType::Sequence: {
      if (a.size() != b.size()) {
        *why = "length differs at '" + path + "'";
        return false;
      }
      for (size_t i = 0; i < a.size(); ++i) {
        if (!SameTree(a[i], b[i], why, path + "[" + std::to_string(i) + "]")) return false;
      }
      return true;
    }
    case YAML::NodeType::Map: {
      if (a.size() != b.size()) {
        *why = "size differs at '" + path + "'";
        return false;
      }
      auto ia = a.begin(), ib = b.begin();
      for (; ia != a.end(); ++ia, ++ib) {
        if (!SameTree(ia->first, ib->first, why, path + ".<key>")) return false;
        if (!SameTree(ia->second, ib->second, why, path + "." + ia->first.Scalar())) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

std::string Redact(const std::string& in, size_t* secrets = nullptr) {
  auto out = RedactKubernetesSecrets(in, secrets);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : std::string();
}

const char* kListWithSecretAndConfigMap = R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata:
    name: db-credentials
    namespace: rag
    labels:
      app: rag
  type: Opaque
  data:
    username: cmFnX2FwcA==
    password: czNjcjN0LXBhc3N3MHJk
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: settings
  data:
    LOG_LEVEL: debug
    REPLICAS: "3"
    ENABLED: "true"
    config.yaml: |
      retries: 5
      endpoint: http://qdrant:6333
metadata:
  resourceVersion: ""
)";

TEST(RedactKubernetesSecrets, ListSecretValuesGoConfigMapUntouched) {
  size_t secrets = 99;
  std::string out = Redact(kListWithSecretAndConfigMap, &secrets);
  EXPECT_EQ(secrets, 1u);
  YAML::Node doc = YAML::Load(out);
  YAML::Node original = YAML::Load(kListWithSecretAndConfigMap);
  ASSERT_EQ(doc["items"].size(), 2u);
  const YAML::Node secret = doc["items"][0];
  EXPECT_EQ(secret["kind"].as<std::string>(), "Secret");
  EXPECT_EQ(secret["type"].as<std::string>(), "Opaque");
  EXPECT_EQ(secret["metadata"]["name"].as<std::string>(), "db-credentials");
  EXPECT_EQ(secret["metadata"]["labels"]["app"].as<std::string>(), "rag");
  ASSERT_EQ(secret["data"].size(), 2u);
  EXPECT_EQ(secret["data"]["username"].as<std::string>(), "REDACTED");
  EXPECT_EQ(secret["data"]["password"].as<std::string>(), "REDACTED");
  std::string why;
  EXPECT_TRUE(SameTree(doc["items"][1], original["items"][1], &why)) << why << "\n" << out;
  EXPECT_TRUE(SameTree(doc["metadata"], original["metadata"], &why)) << why;
  EXPECT_EQ(out.find("czNjcjN0LXBhc3N3MHJk"), std::string::npos);
}

TEST(RedactKubernetesSecrets, MultiDocumentStream) {
  const std::string in = R"(apiVersion: v1
kind: Secret
metadata:
  name: first
data:
  token: Zmlyc3QtdG9rZW4tdmFsdWU=
---
apiVersion: v1
kind: Service
metadata:
  name: qdrant
spec:
  ports:
  - port: 6333
---
apiVersion: v1
kind: Secret
metadata:
  name: second
stringData:
  api-key: second-api-key-plain
)";
  size_t secrets = 0;
  std::string out = Redact(in, &secrets);
  EXPECT_EQ(secrets, 2u);
  auto docs = Parse(out);
  auto want = Parse(in);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0]["data"]["token"].as<std::string>(), "REDACTED");
  EXPECT_EQ(docs[2]["stringData"]["api-key"].as<std::string>(), "REDACTED");
  std::string why;
  EXPECT_TRUE(SameTree(docs[1], want[1], &why)) << why;
  EXPECT_EQ(out.find("Zmlyc3QtdG9rZW4tdmFsdWU="), std::string::npos);
  EXPECT_EQ(out.find("second-api-key-plain"), std::string::npos);
}

TEST(RedactKubernetesSecrets, NestedListsAtAnyDepth) {
  const std::string in = R"(kind: List
items:
- kind: List
  items:
  - kind: List
    items:
    - apiVersion: v1
      kind: Secret
      metadata: {name: deep}
      data: {key: ZGVlcC1zZWNyZXQ=}
  - apiVersion: v1
    kind: Secret
    metadata: {name: middle}
    stringData: {pw: middle-secret}
)";
  size_t secrets = 0;
  std::string out = Redact(in, &secrets);
  EXPECT_EQ(secrets, 2u);
  YAML::Node doc = YAML::Load(out);
  EXPECT_EQ(doc["items"][0]["items"][0]["items"][0]["data"]["key"].as<std::string>(), "REDACTED");
  EXPECT_EQ(doc["items"][0]["items"][1]["stringData"]["pw"].as<std::string>(), "REDACTED");
  EXPECT_EQ(doc["items"][0]["items"][0]["items"][0]["metadata"]["name"].as<std::string>(),
            "deep");
}

TEST(RedactKubernetesSecrets, DataAndStringDataTogetherKeepKeys) {
  const std::string in = R"(apiVersion: v1
kind: Secret
metadata:
  name: both
type: kubernetes.io/basic-auth
data:
  username: YWRtaW4=
stringData:
  password: plain-text-password
  empty: ""
  nothing:
)";
  std::string out = Redact(in);
  YAML::Node doc = YAML::Load(out);
  EXPECT_EQ(doc["type"].as<std::string>(), "kubernetes.io/basic-auth");
  EXPECT_EQ(doc["data"]["username"].as<std::string>(), "REDACTED");
  EXPECT_EQ(doc["stringData"]["password"].as<std::string>(), "REDACTED");
  EXPECT_EQ(doc["stringData"]["empty"].as<std::string>(), "REDACTED");
  EXPECT_TRUE(doc["stringData"]["nothing"].IsNull());
  EXPECT_EQ(doc["stringData"].size(), 3u);
}

TEST(RedactKubernetesSecrets, LastAppliedAnnotationIsRedactedAndStaysJson) {
  const std::string in = R"(apiVersion: v1
kind: Secret
metadata:
  name: applied
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","data":{"password":"YXBwbGllZC1wYXNzd29yZA=="},"kind":"Secret","metadata":{"annotations":{},"name":"applied","namespace":"rag"},"stringData":{"token":"applied-token"},"type":"Opaque"}
    team: search
data:
  password: YXBwbGllZC1wYXNzd29yZA==
)";
  std::string out = Redact(in);
  EXPECT_EQ(out.find("YXBwbGllZC1wYXNzd29yZA=="), std::string::npos) << out;
  EXPECT_EQ(out.find("applied-token"), std::string::npos) << out;
  YAML::Node doc = YAML::Load(out);
  EXPECT_EQ(doc["metadata"]["annotations"]["team"].as<std::string>(), "search");
  std::string applied =
      doc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
          .as<std::string>();
  auto j = nlohmann::json::parse(applied, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << applied;
  EXPECT_EQ(j["data"]["password"], "REDACTED");
  EXPECT_EQ(j["stringData"]["token"], "REDACTED");
  EXPECT_EQ(j["metadata"]["namespace"], "rag");
}

TEST(RedactKubernetesSecrets, AnnotationThatIsNotJsonIsReplacedWhole) {
  const std::string in = R"(kind: Secret
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "password=hunter2-not-json"
data: {}
)";
  std::string out = Redact(in);
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

TEST(RedactKubernetesSecrets, BinaryLookingBase64Value) {
  // Bytes 0x00..0xff base64-encoded: a TLS key or keystore looks like this.
  Bytes raw;
  for (int i = 0; i < 256; ++i) raw.push_back(static_cast<uint8_t>(i));
  const std::string b64 = Base64Encode(raw);
  const std::string in = "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata:\n"
                         "  name: tls\ndata:\n  tls.key: " + b64 + "\n  tls.crt: !!binary " +
                         b64 + "\n";
  std::string out = Redact(in);
  EXPECT_EQ(out.find(b64), std::string::npos);
  EXPECT_EQ(out.find(b64.substr(0, 40)), std::string::npos);
  YAML::Node doc = YAML::Load(out);
  EXPECT_EQ(doc["data"]["tls.key"].as<std::string>(), "REDACTED");
  EXPECT_EQ(doc["data"]["tls.crt"].as<std::string>(), "REDACTED");
  EXPECT_EQ(doc["type"].as<std::string>(), "kubernetes.io/tls");
}

TEST(RedactKubernetesSecrets, NoSecretMeansSameTree) {
  const std::string in = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  annotations:
    deployment.kubernetes.io/revision: "7"
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: api
        image: rag/api:1.4
        env:
        - name: DEBUG
          value: "false"
        - name: NOTHING
          value: null
        - name: EMPTY
          value: ''
        args: [--port, "8080", 8081]
        command:
        - sh
        - -c
        - |
          exec api --config /etc/api.yaml
---
kind: ConfigMap
data:
  "123": 'yes'
  multi: "line1\nline2"
  text: >
    folded
    text
)";
  size_t secrets = 5;
  std::string out = Redact(in, &secrets);
  EXPECT_EQ(secrets, 0u);
  auto got = Parse(out);
  auto want = Parse(in);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    std::string why;
    EXPECT_TRUE(SameTree(got[i], want[i], &why)) << why << "\n" << out;
  }
  // Strings stay strings: the quoted "7" and "false" are not turned into a number and a bool.
  EXPECT_NE(out.find("\"7\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"false\""), std::string::npos) << out;
}

TEST(RedactKubernetesSecrets, EmptyInputGivesEmptyOutput) {
  auto out = RedactKubernetesSecrets("");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(Parse(*out).empty() || Parse(*out)[0].IsNull());
}

TEST(RedactKubernetesSecrets, NotYamlNamesTheLineNotTheText) {
  const std::string in = "apiVersion: v1\nkind: Secret\ndata:\n  pw: [c2VjcmV0LXZhbHVl\n  x: y\n";
  auto out = RedactKubernetesSecrets(in);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_NE(out.status().message().find("line "), std::string::npos)
      << out.status().message();
  EXPECT_EQ(out.status().message().find("c2VjcmV0LXZhbHVl"), std::string::npos);

  auto bad = RedactKubernetesSecrets("a: b\n  c: d\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos)
      << bad.status().message();
}

// Every Secret shape at once; then each original value, base64 and decoded, is searched for in
// the output. A redaction that misses any shape makes this fail.
TEST(RedactKubernetesSecrets, NoOriginalValueSurvivesAnywhere) {
  const std::vector<std::string> plain = {
      "postgres-super-password-1", "redis-auth-token-2", "qdrant-api-key-3",
      "minio-secret-key-4", "keycloak-admin-5", "smtp-pass-6", "webhook-hmac-7",
      "applied-only-secret-8"};
  std::vector<std::string> b64;
  for (const auto& p : plain) b64.push_back(Base64Encode(AsBytes(p)));
  const std::string applied_json =
      R"({"apiVersion":"v1","data":{"k":")" + b64[7] +
      R"("},"kind":"Secret","metadata":{"name":"s5"}})";
  std::string in =
      "kind: List\nitems:\n"
      "- kind: Secret\n  metadata: {name: s1}\n  data:\n    a: " + b64[0] + "\n    b: " + b64[1] +
      "\n"
      "- kind: Secret\n  metadata: {name: s2}\n  stringData:\n    c: " + plain[2] + "\n"
      "- kind: List\n  items:\n  - kind: Secret\n    metadata: {name: s3}\n    data: {d: \"" +
      b64[3] + "\"}\n"
      "---\n"
      "kind: Secret\nmetadata: {name: s4}\nstringData: {e: '" + plain[4] +
      "'}\ndata:\n  f: >-\n    " +
      b64[5] + "\n"
      "---\n"
      "kind: Secret\nmetadata:\n  name: s5\n  annotations:\n"
      "    kubectl.kubernetes.io/last-applied-configuration: '" + applied_json + "'\n"
      "data:\n  g: " + b64[6] + "\n"
      "---\n"
      "{\"kind\": \"Secret\", \"metadata\": {\"name\": \"json\"}, \"data\": {\"h\": \"" + b64[2] +
      "\"}}\n";
  // The input really holds every value (else the test proves nothing).
  for (size_t i = 0; i < plain.size(); ++i) {
    bool present = in.find(plain[i]) != std::string::npos || in.find(b64[i]) != std::string::npos;
    ASSERT_TRUE(present) << plain[i];
  }
  size_t secrets = 0;
  std::string out = Redact(in, &secrets);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(secrets, 6u);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(out.find(plain[i]), std::string::npos) << "'" << plain[i] << "' leaked:\n" << out;
    EXPECT_EQ(out.find(b64[i]), std::string::npos) << "'" << b64[i] << "' leaked:\n" << out;
    // Without base64 padding, in case the emitter split or re-quoted it.
    std::string core = b64[i].substr(0, b64[i].find('='));
    EXPECT_EQ(out.find(core), std::string::npos) << "'" << core << "' leaked:\n" << out;
  }
  // The names (metadata) are kept.
  for (const char* n : {"s1", "s2", "s3", "s4", "s5", "json"}) {
    EXPECT_NE(out.find(std::string("name: ") + n), std::string::npos) << n << "\n" << out;
  }
}

}  // namespace
}  // namespace reprise
