// Time, injected: code that decides by time (retention, lock staleness, schedules) takes a
// Clock so tests use a fake one instead of sleeping.
#pragma once

#include <cstdint>
#include <string>

namespace reprise {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowUnixNanos() const = 0;
  int64_t NowUnix() const { return NowUnixNanos() / 1000000000; }
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnixNanos() const override;
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t unix_nanos) : now_(unix_nanos) {}
  int64_t NowUnixNanos() const override { return now_; }
  void Advance(int64_t nanos) { now_ += nanos; }

 private:
  int64_t now_;
};

// "2026-11-24T15:04:05.123456789Z"
std::string FormatRfc3339(int64_t unix_nanos);
// Inverse of FormatRfc3339 (UTC "Z" only; fraction optional). Returns false on bad input.
bool ParseRfc3339(const std::string& text, int64_t* unix_nanos);

}  // namespace reprise
