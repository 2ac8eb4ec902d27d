// See doctor_command.h. Runs in the CLI.
#include "doctor_command.h"

#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "alert_level.h"
#include "byte_format.h"
#include "cgroup_report.h"
#include "fmt/format.h"
#include "gpu_probe.h"
#include "memtide/segment.h"
#include "nlohmann/json.hpp"
#include "options.h"
#include "printable.h"
#include "proc_stats.h"
#include "process_table.h"
#include "segment_scan.h"
#include "system_memory.h"

namespace memtide {
namespace {

constexpr int kDoctorJsonVersion = 1;
constexpr size_t kTopProcesses = 5;
constexpr size_t kTableWidth = 160;  // the segments table, indented; long command lines are cut

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

double Percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

std::string Bytes(int64_t bytes) { return bytes < 0 ? "?" : HumanBytes(bytes); }

struct Diagnosis {
  time_t now = 0;
  std::string hostname;
  Meminfo meminfo;
  std::vector<CgroupDetail> cgroups;
  MemoryPressure pressure;
  AlertThresholds thresholds;
  uint32_t alert_level = kAlertNormal;
  std::vector<ProcessResident> top_processes;
  SegmentScan scan;
  std::vector<ProcessRow> rows;
  GpuReport gpu;
};

Diagnosis Diagnose(const DoctorOptions& options) {
  Diagnosis d;
  d.now = time(nullptr);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  d.hostname = Printable(host);
  d.meminfo = ParseMeminfo(ReadText("/proc/meminfo"));
  d.cgroups = ReadCgroupDetails(ParseCgroupMounts(ReadText("/proc/self/mountinfo")), ReadText("/proc/self/cgroup"));

  // The same pressure and level the traced processes compute (preload/proc_stats.h, tracer/alert_level.h),
  // from the first cgroup with memory files: v1 when its controller is mounted, else v2.
  CgroupMemory cgroup;
  for (const CgroupDetail& detail : d.cgroups) {
    if (!detail.has_memory) continue;
    cgroup.version = static_cast<uint32_t>(detail.version);
    cgroup.usage_bytes = detail.usage_bytes;
    cgroup.limit_bytes = detail.limit_bytes;
    cgroup.inactive_file_bytes = detail.inactive_file_bytes > 0 ? detail.inactive_file_bytes : 0;
    break;
  }
  SystemMemory system;
  system.total_bytes = d.meminfo.total_bytes > 0 ? d.meminfo.total_bytes : 0;
  system.available_bytes = d.meminfo.available_bytes > 0 ? d.meminfo.available_bytes : 0;
  d.pressure = ComputeMemoryPressure(cgroup, system);
  Options environment;
  LoadOptions(&environment, nullptr, nullptr);
  d.thresholds.warning_permille = environment.alert_warning_permille;
  d.thresholds.severe_permille = environment.alert_severe_permille;
  d.thresholds.danger_available_bytes = environment.alert_danger_bytes;
  d.alert_level = ComputeAlertLevel(d.thresholds, d.pressure.used_bytes, d.pressure.limit_bytes);

  d.top_processes = TopProcessesByRss(kTopProcesses);
  d.scan = ScanSegments(options.directories);
  d.rows = MakeProcessRows(d.scan.segments);
  SortProcessRows(SortKey::kRss, &d.rows);
  d.gpu = ProbeGpus();
  return d;
}

std::string TimeText(time_t now, bool utc) {
  tm parts{};
  if (utc) {
    gmtime_r(&now, &parts);
  } else {
    localtime_r(&now, &parts);
  }
  char text[64];
  strftime(text, sizeof(text), utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S %Z", &parts);
  return text;
}

std::string ThresholdsText(const AlertThresholds& t) {
  return fmt::format("warning > {:g}%, severe > {:g}%, danger < {} available",
                     static_cast<double>(t.warning_permille) / 10.0, static_cast<double>(t.severe_permille) / 10.0,
                     t.danger_available_bytes % 1000000 == 0 ? fmt::format("{} MB", t.danger_available_bytes / 1000000)
                                                             : HumanBytes(t.danger_available_bytes));
}

std::string AlertText(const Diagnosis& d) {
  std::string level = AlertLevelName(d.alert_level);
  for (char& c : level) c = static_cast<char>(toupper(c));
  if (d.pressure.limit_bytes <= 0) return fmt::format("{}: no memory limit or total known", level);
  std::string what = d.pressure.from_cgroup ? "the container's working set" : "the machine's used memory";
  std::string advice;
  switch (d.alert_level) {
    case kAlertWarning:
      advice = "\n            watch it: `memtide monitor --interval 60`; trim: `memtide trim PID`";
      break;
    case kAlertSevere:
      advice =
          "\n            usage that stays above the severe level needs a higher limit or less memory: find the "
          "growth with `memtide show PID` (marks), give back freed memory with `memtide trim PID`";
      break;
    case kAlertDanger:
      advice =
          "\n            the next allocations may be OOM-killed: trim now (`memtide trim PID`), raise the limit "
          "or stop a process";
      break;
  }
  return fmt::format("{}: {} is {:.1f}% of {} ({} available)\n            ({}){}", level, what,
                     Percent(d.pressure.used_bytes, d.pressure.limit_bytes), HumanBytes(d.pressure.limit_bytes),
                     HumanBytes(d.pressure.available_bytes), ThresholdsText(d.thresholds), advice);
}

std::string CgroupText(const CgroupDetail& c) {
  std::string text = fmt::format("cgroup v{}   {}", c.version, Printable(c.cgroup_path));
  if (!c.has_memory) return text + fmt::format("  (no memory controller in {})\n", Printable(c.directory));
  text += fmt::format("  ({})\n", Printable(c.directory));
  text += fmt::format("            usage {}, working set {}", Bytes(c.usage_bytes), Bytes(c.working_set_bytes));
  if (c.limit_bytes > 0) {
    text +=
        fmt::format(" of limit {} ({:.1f}%)", HumanBytes(c.limit_bytes), Percent(c.working_set_bytes, c.limit_bytes));
  } else {
    text += ", no limit";
  }
  if (c.peak_bytes >= 0) text += fmt::format(", peak {}", HumanBytes(c.peak_bytes));
  text += "\n            ";
  std::vector<std::string> facts;
  if (c.version == 1 && c.swap_limit_bytes >= 0) {
    facts.push_back(fmt::format("memory+swap {} of {}", Bytes(c.swap_usage_bytes),
                                c.swap_limit_bytes > 0 ? HumanBytes(c.swap_limit_bytes) : "no limit"));
  } else if (c.version == 2 && c.swap_usage_bytes >= 0) {
    facts.push_back(fmt::format("swap {} of {}", HumanBytes(c.swap_usage_bytes),
                                c.swap_limit_bytes > 0 ? HumanBytes(c.swap_limit_bytes) : "no limit"));
  }
  if (c.version == 2 && c.high_bytes > 0) facts.push_back(fmt::format("high {}", HumanBytes(c.high_bytes)));
  if (c.limit_hits >= 0) facts.push_back(fmt::format("limit hit {} times", c.limit_hits));
  if (c.oom_kills >= 0) facts.push_back(fmt::format("OOM kills {}", c.oom_kills));
  if (c.under_oom) facts.push_back("UNDER OOM NOW");
  return text + absl::StrJoin(facts, ", ") + "\n";
}

std::string DiagnosisText(const DoctorOptions& options, const Diagnosis& d) {
  std::string text = fmt::format("memtide doctor  {}  host {}\n", TimeText(d.now, false), d.hostname);
  const Meminfo& m = d.meminfo;
  int64_t cache = (m.cached_bytes > 0 ? m.cached_bytes : 0) + (m.buffers_bytes > 0 ? m.buffers_bytes : 0);
  text += fmt::format("memory      total {}, available {} ({:.1f}% used), free {}, buffers+cache {}, ",
                      Bytes(m.total_bytes), Bytes(m.available_bytes),
                      Percent(m.total_bytes - m.available_bytes, m.total_bytes), Bytes(m.free_bytes), Bytes(cache));
  text += m.swap_total_bytes > 0
              ? fmt::format("swap {} of {} used\n", HumanBytes(m.swap_total_bytes - m.swap_free_bytes),
                            HumanBytes(m.swap_total_bytes))
              : "no swap\n";
  if (d.cgroups.empty()) text += "cgroup      no memory cgroup mounted\n";
  for (const CgroupDetail& cgroup : d.cgroups) text += CgroupText(cgroup);
  text += fmt::format("alert       {}\n", AlertText(d));
  text += fmt::format("processes   the {} with the most RSS\n", d.top_processes.size());
  text += fmt::format("            {:>7} {:>10}  COMMAND\n", "PID", "RSS");
  for (const ProcessResident& process : d.top_processes) {
    text += fmt::format("            {:>7} {:>10}  {}\n", process.pid, HumanBytes(process.rss_bytes),
                        Truncate(process.command, 100));
  }
  text += fmt::format("segments    {} in {}{}\n", d.rows.size(), absl::StrJoin(options.directories, ", "),
                      d.scan.problems.empty() ? "" : fmt::format(" ({} refused)", d.scan.problems.size()));
  if (!d.rows.empty()) {
    std::string table = ProcessTableText(d.rows, kTableWidth);
    for (absl::string_view line : absl::StrSplit(table, '\n', absl::SkipEmpty())) {
      text += fmt::format("            {}\n", std::string(line));
    }
  }
  for (const std::string& problem : d.scan.problems) text += fmt::format("            refused {}\n", problem);
  if (d.gpu.source == "none") {
    text += fmt::format("gpu         no GPU ({})\n", d.gpu.note);
  } else {
    text +=
        fmt::format("gpu         {} device{} (from {}{})\n", d.gpu.devices.size(), d.gpu.devices.size() == 1 ? "" : "s",
                    d.gpu.source, d.gpu.driver_version.empty() ? "" : ", driver " + d.gpu.driver_version);
    for (const GpuDevice& device : d.gpu.devices) {
      text += fmt::format("            {}: {}  {} of {} used ({:.1f}%)\n", device.index, device.name,
                          HumanBytes(device.used_bytes), HumanBytes(device.total_bytes),
                          Percent(device.used_bytes, device.total_bytes));
    }
  }
  return text;
}

nlohmann::json DiagnosisJson(const DoctorOptions& options, const Diagnosis& d) {
  auto optional = [](int64_t value) -> nlohmann::json {
    return value < 0 ? nlohmann::json(nullptr) : nlohmann::json(value);
  };
  const Meminfo& m = d.meminfo;
  nlohmann::json cgroups = nlohmann::json::array();
  for (const CgroupDetail& cgroup : d.cgroups) cgroups.push_back(CgroupDetailJson(cgroup));
  nlohmann::json processes = nlohmann::json::array();
  for (const ProcessResident& process : d.top_processes) {
    processes.push_back({{"pid", process.pid}, {"rss_bytes", process.rss_bytes}, {"command", process.command}});
  }
  return {
      {"memtide_doctor_version", kDoctorJsonVersion},
      {"time", TimeText(d.now, true)},
      {"time_unix_s", static_cast<int64_t>(d.now)},
      {"hostname", d.hostname},
      {"system",
       {{"total_bytes", optional(m.total_bytes)},
        {"available_bytes", optional(m.available_bytes)},
        {"free_bytes", optional(m.free_bytes)},
        {"buffers_bytes", optional(m.buffers_bytes)},
        {"cached_bytes", optional(m.cached_bytes)},
        {"shmem_bytes", optional(m.shmem_bytes)},
        {"swap_total_bytes", optional(m.swap_total_bytes)},
        {"swap_free_bytes", optional(m.swap_free_bytes)}}},
      {"cgroups", cgroups},
      {"pressure",
       {{"source", d.pressure.from_cgroup ? "cgroup" : "system"},
        {"used_bytes", d.pressure.used_bytes},
        {"limit_bytes", d.pressure.limit_bytes},
        {"available_bytes", d.pressure.available_bytes},
        {"percent", Percent(d.pressure.used_bytes, d.pressure.limit_bytes)}}},
      {"alert",
       {{"level", AlertLevelName(d.alert_level)},
        {"warning_permille", d.thresholds.warning_permille},
        {"severe_permille", d.thresholds.severe_permille},
        {"danger_available_bytes", d.thresholds.danger_available_bytes}}},
      {"top_processes", processes},
      {"segment_directories", options.directories},
      {"segments", ProcessRowsJson(d.rows)},
      {"refused_segments", d.scan.problems},
      {"gpu", GpuReportJson(d.gpu)},
  };
}

}  // namespace

absl::Status DoctorCommand(const DoctorOptions& options) {
  Diagnosis diagnosis = Diagnose(options);
  if (options.json) {
    fmt::print("{}\n", DiagnosisJson(options, diagnosis).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}", DiagnosisText(options, diagnosis));
  }
  return absl::OkStatus();
}

}  // namespace memtide
