// Is the process that wrote a segment still running, and under which pid does this viewer see it? A segment
// names its writer by (pid, start time in clock ticks since boot). The pid is the writer's own: inside a
// container (its own pid namespace) that is not the pid the host sees. The start time is the same in every
// namespace, so a host-side viewer that misses the pid finds the writer among its processes by start time and
// NSpid. Runs in the CLI; reads /proc, caches the scan for a second.
#ifndef MEMTIDE_VIEWER_PROCESS_IDENTITY_H_
#define MEMTIDE_VIEWER_PROCESS_IDENTITY_H_

#include <stdint.h>
#include <sys/types.h>

#include <string>

namespace memtide {

struct ProcessLocation {
  bool alive = false;
  pid_t local_pid = 0;  // the writer's pid in this viewer's namespace (== the segment's pid when shared)
};

// Finds the process whose own pid is `pid` and whose start time is `start_ticks`: in this pid namespace, or
// in one nested below it (a container seen from the host). An unreadable start time counts as alive.
ProcessLocation LocateProcess(pid_t pid, uint64_t start_ticks, const std::string& proc_root = "/proc");

// The pid that process `local_pid` has in its own (innermost) namespace and its start time; false when it
// cannot be read. For `memtide show|trim HOSTPID` on a container's process.
bool InnermostPid(pid_t local_pid, pid_t* own_pid, uint64_t* start_ticks, const std::string& proc_root = "/proc");

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_PROCESS_IDENTITY_H_
