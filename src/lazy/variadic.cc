// The variadic functions reprise calls from the lazily loaded libraries, forwarded by hand
// (scripts/dev/gen-lazy-shims.py does the others): a variadic call cannot be passed on as it
// is, so each reads its one trailing argument with the type the library documents for it.
#include <archive.h>
#include <curl/curl.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include "lazy/lazy_library.h"

extern "C" {

// The option's number says its argument's type (curl/curl.h, CURLOPTTYPE_*): long below
// OBJECTPOINT, a pointer (object or function) up to OFF_T, curl_off_t up to BLOB, then a
// pointer to a struct curl_blob.
CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  auto real = REPRISE_LAZY_CALL(kCurl, curl_easy_setopt);
  va_list ap;
  va_start(ap, option);
  CURLcode rc;
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    rc = real(curl, option, va_arg(ap, long));
  } else if (option < CURLOPTTYPE_OFF_T) {
    rc = real(curl, option, va_arg(ap, void*));
  } else if (option < CURLOPTTYPE_BLOB) {
    rc = real(curl, option, va_arg(ap, curl_off_t));
  } else {
    rc = real(curl, option, va_arg(ap, void*));
  }
  va_end(ap);
  return rc;
}

// Every CURLINFO_* takes a pointer to where the answer goes.
CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  auto real = REPRISE_LAZY_CALL(kCurl, curl_easy_getinfo);
  va_list ap;
  va_start(ap, info);
  void* where = va_arg(ap, void*);
  va_end(ap);
  return real(curl, info, where);
}

// Formatted here, passed on as "%s".
void archive_set_error(struct archive* a, int error, const char* format, ...) {
  auto real = REPRISE_LAZY_CALL(kArchive, archive_set_error);
  if (!format) {
    real(a, error, nullptr);
    return;
  }
  va_list ap;
  va_start(ap, format);
  va_list again;
  va_copy(again, ap);
  int n = std::vsnprintf(nullptr, 0, format, ap);
  va_end(ap);
  std::string text(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(text.data(), text.size() + 1, format, again);
  va_end(again);
  real(a, error, "%s", text.c_str());
}

}  // extern "C"
