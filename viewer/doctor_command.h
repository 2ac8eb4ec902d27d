// `memtide doctor [--json]`: the seed's quick diagnosis, done right. The time; the machine's memory
// (/proc/meminfo); this container's memory cgroup, v1 and v2 (limit, usage, working set, peak, swap, limit
// hits, OOM kills); the five processes with the most RSS; every memtide segment; GPU memory (NVML, else
// nvidia-smi, else none); and the alert level by the seed's thresholds (MEMTIDE_ALERT_* when set). Runs in
// the CLI, usually inside the container (`docker exec … memtide doctor`).
#ifndef MEMTIDE_VIEWER_DOCTOR_COMMAND_H_
#define MEMTIDE_VIEWER_DOCTOR_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace memtide {

struct DoctorOptions {
  std::vector<std::string> directories;
  bool json = false;
};

absl::Status DoctorCommand(const DoctorOptions& options);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_DOCTOR_COMMAND_H_
