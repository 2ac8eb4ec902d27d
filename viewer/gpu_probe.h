// GPU memory for `memtide doctor`, whole devices (all processes): NVML through libnvidia-ml.so.1 when it can
// be loaded (dlopen, never linked: the CLI runs on machines without a driver), else `nvidia-smi` (with a
// timeout: a wedged driver makes it hang), else "no GPU". Runs in the CLI.
#ifndef MEMTIDE_VIEWER_GPU_PROBE_H_
#define MEMTIDE_VIEWER_GPU_PROBE_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace memtide {

struct GpuDevice {
  int index = 0;
  std::string name;
  int64_t used_bytes = 0;
  int64_t total_bytes = 0;
};

struct GpuReport {
  std::string source;  // "nvml", "nvidia-smi" or "none"
  std::string driver_version;
  std::vector<GpuDevice> devices;
  std::string note;  // why a source was not used, for the reader
};

GpuReport ProbeGpus();

// `nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader,nounits` (MiB). Lines
// that do not parse are skipped.
std::vector<GpuDevice> ParseNvidiaSmiCsv(absl::string_view text);

nlohmann::json GpuReportJson(const GpuReport& report);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_GPU_PROBE_H_
