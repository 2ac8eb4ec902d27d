// See prometheus_format.h. Runs in the CLI.
#include "prometheus_format.h"

#include <algorithm>
#include <functional>
#include <map>

#include "fmt/format.h"
#include "memtide/segment.h"
#include "printable.h"

namespace memtide {
namespace {

struct Family {
  const char* name;
  const char* type;
  const char* help;
  // Appends this family's samples for one process; `labels` is `pid="…",command="…"`.
  std::function<void(const SegmentSnapshot&, const std::string& labels, std::string*)> samples;
};

void Sample(std::string* out, const char* name, const std::string& labels, int64_t value) {
  *out += fmt::format("{}{{{}}} {}\n", name, labels, value);
}

// A family with one sample per process from one field.
Family Simple(const char* name, const char* type, const char* help, std::function<int64_t(const Segment&)> value) {
  return {name, type, help,
          [name, value](const SegmentSnapshot& snapshot, const std::string& labels, std::string* out) {
            Sample(out, name, labels, value(snapshot.segment));
          }};
}

// A family with one sample per GPU device the process uses.
Family PerDevice(const char* name, const char* help, std::function<int64_t(const SegmentGpuDevice&)> value) {
  return {name, "gauge", help,
          [name, value](const SegmentSnapshot& snapshot, const std::string& labels, std::string* out) {
            const Segment& segment = snapshot.segment;
            uint32_t count = std::min<uint32_t>(segment.gpu_device_count, MEMTIDE_SEGMENT_GPU_DEVICES);
            for (uint32_t i = 0; i < count; ++i) {
              const SegmentGpuDevice& gpu = segment.gpu[i];
              if (gpu.ordinal < 0) continue;
              Sample(out, name, fmt::format("{},device=\"{}\"", labels, gpu.ordinal), value(gpu));
            }
          }};
}

const std::vector<Family>& Families() {
  static const std::vector<Family> families = {
      {"memtide_process_running", "gauge", "1 while the process runs; 0 once it exited or was killed (last state kept)",
       [](const SegmentSnapshot& snapshot, const std::string& labels, std::string* out) {
         Sample(out, "memtide_process_running", labels, snapshot.state == ProcessState::kRunning ? 1 : 0);
       }},
      Simple("memtide_heap_current_bytes", "gauge", "Live heap, in the allocator's usable bytes",
             [](const Segment& s) { return s.counters.heap_current_bytes; }),
      Simple("memtide_heap_peak_bytes", "gauge", "Heap high-water mark since start or the last reset-peak",
             [](const Segment& s) { return s.counters.heap_peak_bytes; }),
      Simple("memtide_heap_allocations_total", "counter", "Heap allocations",
             [](const Segment& s) { return s.counters.heap_allocations; }),
      Simple("memtide_heap_frees_total", "counter", "Heap frees",
             [](const Segment& s) { return s.counters.heap_frees; }),
      Simple("memtide_heap_allocated_bytes_total", "counter", "Usable heap bytes ever allocated",
             [](const Segment& s) { return s.counters.heap_allocated_bytes_total; }),
      Simple("memtide_mmap_current_bytes", "gauge", "Anonymous mappings the program made itself",
             [](const Segment& s) { return s.counters.mmap_current_bytes; }),
      Simple("memtide_mmap_peak_bytes", "gauge", "High-water mark of the program's anonymous mappings",
             [](const Segment& s) { return s.counters.mmap_peak_bytes; }),
      Simple("memtide_rss_bytes", "gauge", "Resident set size (VmRSS) at the last publish",
             [](const Segment& s) { return s.counters.rss_bytes; }),
      Simple("memtide_rss_peak_bytes", "gauge", "Peak resident set size (VmHWM)",
             [](const Segment& s) { return s.counters.rss_peak_bytes; }),
      Simple("memtide_cgroup_usage_bytes", "gauge", "Memory cgroup usage of the process's cgroup",
             [](const Segment& s) { return s.counters.cgroup_usage_bytes; }),
      Simple("memtide_cgroup_limit_bytes", "gauge", "Memory cgroup limit (0: none)",
             [](const Segment& s) { return s.counters.cgroup_limit_bytes; }),
      Simple("memtide_alert_level", "gauge", "0 normal, 1 warning, 2 severe, 3 danger",
             [](const Segment& s) { return static_cast<int64_t>(s.policy.alert_level); }),
      Simple("memtide_trims_total", "counter", "Trims done (policy, API and requests)",
             [](const Segment& s) { return static_cast<int64_t>(s.policy.trims); }),
      Simple("memtide_trim_released_bytes_total", "counter", "RSS given back by trims",
             [](const Segment& s) { return s.policy.trim_released_bytes; }),
      Simple("memtide_marks_total", "counter", "Labelled marks made",
             [](const Segment& s) { return static_cast<int64_t>(s.counters.marks_total); }),
      Simple("memtide_last_publish_timestamp_seconds", "gauge", "Wall-clock time of the last publish",
             [](const Segment& s) { return s.counters.updated_unix_ns / 1000000000; }),
      PerDevice("memtide_gpu_current_bytes", "GPU memory the process allocated through the driver and holds",
                [](const SegmentGpuDevice& g) { return g.device_current_bytes; }),
      PerDevice("memtide_gpu_peak_bytes", "High-water mark of memtide_gpu_current_bytes",
                [](const SegmentGpuDevice& g) { return g.device_peak_bytes; }),
      PerDevice("memtide_gpu_managed_current_bytes", "Managed (unified) memory the process holds",
                [](const SegmentGpuDevice& g) { return g.managed_current_bytes; }),
      PerDevice("memtide_gpu_pinned_host_current_bytes", "Pinned host memory the process holds",
                [](const SegmentGpuDevice& g) { return g.pinned_host_current_bytes; }),
  };
  return families;
}

std::string BaseName(const Segment& segment) {
  std::vector<std::string> arguments = CommandArguments(segment);
  if (arguments.empty()) return "";
  const std::string& first = arguments[0];
  size_t slash = first.rfind('/');
  return slash == std::string::npos ? first : first.substr(slash + 1);
}

}  // namespace

std::string PrometheusLabelValue(absl::string_view text) {
  std::string escaped;
  for (char c : Printable(text)) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string PrometheusText(const std::vector<SegmentSnapshot>& snapshots, size_t refused_files) {
  // The newest segment of each pid (by start time), in pid order.
  std::map<int32_t, const SegmentSnapshot*> by_pid;
  for (const SegmentSnapshot& snapshot : snapshots) {
    const SegmentSnapshot*& kept = by_pid[snapshot.segment.pid];
    if (kept == nullptr || snapshot.segment.start_time_ticks > kept->segment.start_time_ticks) kept = &snapshot;
  }
  std::vector<std::pair<const SegmentSnapshot*, std::string>> processes;
  for (const auto& [pid, snapshot] : by_pid) {
    processes.emplace_back(
        snapshot, fmt::format("pid=\"{}\",command=\"{}\"", pid, PrometheusLabelValue(BaseName(snapshot->segment))));
  }
  std::string text;
  for (const Family& family : Families()) {
    std::string samples;
    for (const auto& [snapshot, labels] : processes) family.samples(*snapshot, labels, &samples);
    if (samples.empty()) continue;
    text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, family.help, family.name, family.type);
    text += samples;
  }
  text += "# HELP memtide_exporter_segments Segments exported\n# TYPE memtide_exporter_segments gauge\n";
  text += fmt::format("memtide_exporter_segments {}\n", processes.size());
  text += "# HELP memtide_exporter_refused_files Files in the segment directories that were refused\n";
  text += "# TYPE memtide_exporter_refused_files gauge\n";
  text += fmt::format("memtide_exporter_refused_files {}\n", refused_files);
  return text;
}

}  // namespace memtide
