// Facts about this host and its processes, for lock files and point metadata.
#pragma once

#include <cstdint>
#include <string>

namespace reprise {

std::string HostName();
std::string UserName();
// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or -1
// when the process does not exist. Together with the pid it names a process uniquely.
int64_t ProcessStartTicks(int pid);

}  // namespace reprise
