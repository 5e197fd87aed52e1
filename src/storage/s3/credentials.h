// Where the S3 backend finds its credentials when the caller gives none (a plan site's
// `credentials` secret, resolved by the CLI and passed to OpenS3Storage, replaces all of
// this; docs/storage-s3.md "Per-site credentials"), in this order (never in the URL):
// 1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) from the environment;
// 2. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials,
//    profile AWS_PROFILE (default "default"), keys aws_access_key_id, aws_secret_access_key,
//    aws_session_token.
// The environment is injected (EnvLookup) so tests need not touch the process's.
// Errors name the variables and files looked at, never a secret value.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "storage/s3/sigv4.h"

namespace reprise::s3 {

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads the process environment (getenv); unset and empty are both nullopt.
EnvLookup ProcessEnv();

// kUnauthenticated when nothing is found or only half a key pair is; kIOError when the
// credentials file exists but cannot be read.
Result<Credentials> ResolveCredentials(const EnvLookup& env);

// The region to sign with when the URL gives none: AWS_REGION, AWS_DEFAULT_REGION, us-east-1.
std::string DefaultRegion(const EnvLookup& env);

}  // namespace reprise::s3
