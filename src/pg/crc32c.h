// CRC-32C (Castagnoli), as PostgreSQL's backup manifests use it by default. Uses the SSE4.2
// instruction when the CPU has it, a table otherwise; both give the same result.
#pragma once

#include <cstddef>
#include <cstdint>

namespace reprise::pg {

// Continues a CRC: Crc32c(Crc32c(0, a), b) == Crc32c(0, a+b). "123456789" -> 0xE3069283.
uint32_t Crc32c(uint32_t crc, const void* data, size_t size);

// The two implementations behind Crc32c, exposed so that tests can check both.
namespace crc32c_internal {
uint32_t Table(uint32_t crc, const void* data, size_t size);
// Only call when HardwareAvailable().
uint32_t Sse42(uint32_t crc, const void* data, size_t size);
bool HardwareAvailable();
}  // namespace crc32c_internal

}  // namespace reprise::pg
