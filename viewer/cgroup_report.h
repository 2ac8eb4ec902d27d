// The memory cgroup of a process in detail, for `memtide doctor`: cgroup v1 (memory.limit_in_bytes,
// usage, max_usage, failcnt, memsw.*, oom_control) and v2 (memory.max, current, peak, high, swap.*,
// memory.events), each where it is mounted (from /proc/self/mountinfo, so a container's own mounts and
// hybrid hosts with v1 memory plus a v2 tree both work). File roots are parameters so tests use fake trees.
// Runs in the CLI.
#ifndef MEMTIDE_VIEWER_CGROUP_REPORT_H_
#define MEMTIDE_VIEWER_CGROUP_REPORT_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace memtide {

struct CgroupMount {
  std::string root;         // the cgroup path mounted there (mountinfo field 4), "/" in most containers
  std::string mount_point;  // e.g. /sys/fs/cgroup/memory
};

struct CgroupMounts {
  CgroupMount v1_memory;  // empty mount_point: not mounted
  CgroupMount v2;
};

// From the text of /proc/self/mountinfo.
CgroupMounts ParseCgroupMounts(absl::string_view mountinfo);

// -1: the file is absent (an older kernel, another version); limits 0: no limit.
struct CgroupDetail {
  int version = 0;
  std::string cgroup_path;  // as /proc/<pid>/cgroup names it
  std::string directory;    // where its files were read
  bool has_memory = false;  // memory files were found (v2 without the memory controller has none)
  int64_t usage_bytes = -1;
  int64_t limit_bytes = 0;  // the effective limit: the smallest on the way up
  int64_t peak_bytes = -1;
  int64_t inactive_file_bytes = -1;
  int64_t working_set_bytes = -1;  // usage less inactive page cache (docker stats, the kubelet)
  int64_t high_bytes = 0;          // v2 memory.high
  int64_t swap_limit_bytes = -1;   // v1: memory+swap (memsw) limit, 0 none; v2: swap.max, 0 none
  int64_t swap_usage_bytes = -1;   // v1: memory+swap usage; v2: swap.current
  int64_t limit_hits = -1;         // v1 failcnt; v2 memory.events "max"
  int64_t oom_events = -1;         // v2 memory.events "oom"
  int64_t oom_kills = -1;          // v1 memory.oom_control / v2 memory.events "oom_kill"
  bool under_oom = false;          // v1 memory.oom_control
};

// The v1 detail (if the memory controller is mounted), then the v2 detail (if a v2 tree is), for the process
// whose /proc/<pid>/cgroup text is given.
std::vector<CgroupDetail> ReadCgroupDetails(const CgroupMounts& mounts, absl::string_view proc_cgroup);

nlohmann::json CgroupDetailJson(const CgroupDetail& detail);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_CGROUP_REPORT_H_
