// Process and container memory as the kernel sees it: VmRSS/VmHWM from /proc/<pid>/status and the memory
// cgroup's usage and limit (v1 and v2). Raw open/read/close into stack buffers: allocation-free, no stdio,
// so the monitor thread can call it at any time. Also used by the CLI for other processes.
#ifndef MEMTIDE_PRELOAD_PROC_STATS_H_
#define MEMTIDE_PRELOAD_PROC_STATS_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

namespace memtide {

struct ProcessMemory {
  int64_t rss_bytes;
  int64_t rss_peak_bytes;
  int64_t threads;  // threads in the process ("Threads:")
};

struct CgroupMemory {
  uint32_t version = 0;         // kCgroupNone / kCgroupV1 / kCgroupV2 (segment.h)
  int64_t usage_bytes = 0;
  int64_t limit_bytes = 0;      // 0: no limit on the way up to the root
  int64_t inactive_file_bytes = 0;  // page cache the kernel drops before it OOM-kills (memory.stat)
};

// /proc/meminfo: the host's memory (or the container's view of it through lxcfs).
struct SystemMemory {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};

// What alerts and the trim policy compare: the container's working set (usage less inactive page cache, as
// docker stats and the kubelet count it) against its limit, or the host's used memory against its total.
struct MemoryPressure {
  int64_t used_bytes = 0;
  int64_t limit_bytes = 0;      // 0: unknown
  int64_t available_bytes = 0;  // limit - used
  bool from_cgroup = false;
};
MemoryPressure ComputeMemoryPressure(const CgroupMemory& cgroup, const SystemMemory& system);

// pid 0 = the calling process. Return false when the files cannot be read.
bool ReadProcessMemory(pid_t pid, ProcessMemory* out);
bool ReadCgroupMemory(pid_t pid, CgroupMemory* out);
// CPUs' worth of time the calling process's CPU cgroup allows per period (v1 cpu.cfs_quota_us over
// cpu.cfs_period_us, v2 cpu.max; `docker run --cpus=1.5` gives 2), rounded up; 0 when there is no quota.
int ReadCgroupCpuLimit();
// quota / period rounded up; 0 for no quota (-1, "max") or a bad period.
int CpusFromQuota(int64_t quota, int64_t period);
// /proc/<pid>/stat field 22 (start time in clock ticks since boot); 0 when unreadable.
uint64_t ReadStartTimeTicks(pid_t pid);
bool ReadSystemMemory(SystemMemory* out);
// Resident bytes of the calling process from /proc/self/statm (cheaper than status).
int64_t ReadResidentBytes();

// Reads a whole small file into `buffer` (NUL-terminated). Returns the length or -1. Through the runner
// below when one is set.
ssize_t ReadSmallFile(const char* path, char* buffer, size_t size);

// The preload has its file reads done on a thread with a descriptor table of its own
// (preload/private_descriptors.h): `run` runs work(argument) there and returns true, or returns false and
// the read happens on the calling thread. The CLI sets none.
void SetFileWorkRunner(bool (*run)(void (*work)(void*), void* argument));

}  // namespace memtide

#endif  // MEMTIDE_PRELOAD_PROC_STATS_H_
