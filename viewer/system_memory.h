// The machine's memory as `memtide doctor` shows it: /proc/meminfo (what `free` prints) and the processes
// with the most resident memory (what `ps aux --sort=-rss` lists). Roots are parameters for tests. Runs in
// the CLI.
#ifndef MEMTIDE_VIEWER_SYSTEM_MEMORY_H_
#define MEMTIDE_VIEWER_SYSTEM_MEMORY_H_

#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace memtide {

// Bytes; -1 where /proc/meminfo has no such line.
struct Meminfo {
  int64_t total_bytes = -1;
  int64_t free_bytes = -1;
  int64_t available_bytes = -1;
  int64_t buffers_bytes = -1;
  int64_t cached_bytes = -1;
  int64_t shmem_bytes = -1;
  int64_t swap_total_bytes = -1;
  int64_t swap_free_bytes = -1;
};

Meminfo ParseMeminfo(absl::string_view text);

struct ProcessResident {
  pid_t pid = 0;
  int64_t rss_bytes = 0;
  std::string command;  // printable command line, or [name] for a process without one
};

// The `count` processes with the largest VmRSS under `proc_root` (kernel threads have none and are left out).
std::vector<ProcessResident> TopProcessesByRss(size_t count, const std::string& proc_root = "/proc");

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SYSTEM_MEMORY_H_
