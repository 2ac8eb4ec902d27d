// See cgroup_report.h. Runs in the CLI.
#include "cgroup_report.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace memtide {
namespace {

// A v1 limit at or above this is "no limit" (PAGE_COUNTER_MAX in bytes, rounded to pages).
constexpr int64_t kUnlimitedV1 = int64_t{1} << 62;

bool ReadText(const std::string& path, std::string* text) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *text = buffer.str();
  return true;
}

// A single number, or "max" (-> `max_value`); -1 when absent or unparsable.
int64_t ReadNumber(const std::string& path, int64_t max_value = -1) {
  std::string text;
  if (!ReadText(path, &text)) return -1;
  absl::string_view value = absl::StripAsciiWhitespace(text);
  if (value == "max") return max_value;
  int64_t number = 0;
  if (!absl::SimpleAtoi(value, &number)) return -1;
  return number;
}

// "key value" lines (memory.stat, memory.events, memory.oom_control); -1 when absent.
int64_t ReadKey(const std::string& path, absl::string_view key) {
  std::string text;
  if (!ReadText(path, &text)) return -1;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    int64_t number = 0;
    if (parts.first == key && absl::SimpleAtoi(absl::StripAsciiWhitespace(parts.second), &number)) return number;
  }
  return -1;
}

// Mountinfo escapes spaces and a few other bytes as \ooo.
std::string Unescape(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    auto octal = [&](size_t k) { return text[k] >= '0' && text[k] <= '7'; };
    if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] <= '3' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The cgroup's path under /proc/<pid>/cgroup for the v1 memory controller or the v2 tree ("0::").
bool FindCgroupPath(absl::string_view proc_cgroup, bool v2, std::string* path) {
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    bool matches = v2 ? parts[0] == "0" && parts[1].empty() : false;
    if (!v2) {
      for (absl::string_view controller : absl::StrSplit(parts[1], ',')) matches = matches || controller == "memory";
    }
    if (matches) {
      *path = std::string(parts[2]);
      return true;
    }
  }
  return false;
}

// Where the cgroup's files are: the mount point plus the path below the mount's root. In a container with
// its own cgroup namespace the path is "/" and the mount is the container's cgroup itself; a path outside
// the mount's root (not visible here) falls back to the mount point.
std::string CgroupDirectory(const CgroupMount& mount, const std::string& cgroup_path) {
  absl::string_view relative = cgroup_path;
  if (mount.root != "/" && !absl::ConsumePrefix(&relative, mount.root)) return mount.mount_point;
  std::string directory = mount.mount_point;
  if (!relative.empty() && relative != "/")
    directory += std::string(relative.front() == '/' ? "" : "/") + std::string(relative);
  return directory;
}

int64_t Limit(int64_t value) { return value < 0 || value >= kUnlimitedV1 ? 0 : value; }

int64_t Smaller(int64_t a, int64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return a < b ? a : b;
}

CgroupDetail ReadV1(const CgroupMount& mount, const std::string& cgroup_path) {
  CgroupDetail detail;
  detail.version = 1;
  detail.cgroup_path = cgroup_path;
  detail.directory = CgroupDirectory(mount, cgroup_path);
  if (ReadNumber(detail.directory + "/memory.usage_in_bytes") < 0) detail.directory = mount.mount_point;
  const std::string& d = detail.directory;
  detail.usage_bytes = ReadNumber(d + "/memory.usage_in_bytes");
  detail.has_memory = detail.usage_bytes >= 0;
  detail.limit_bytes = Smaller(Limit(ReadNumber(d + "/memory.limit_in_bytes")),
                               Limit(ReadKey(d + "/memory.stat", "hierarchical_memory_limit")));
  detail.peak_bytes = ReadNumber(d + "/memory.max_usage_in_bytes");
  detail.inactive_file_bytes = ReadKey(d + "/memory.stat", "total_inactive_file");
  detail.limit_hits = ReadNumber(d + "/memory.failcnt");
  int64_t memsw_limit = ReadNumber(d + "/memory.memsw.limit_in_bytes");
  if (memsw_limit >= 0) {
    detail.swap_limit_bytes =
        Smaller(Limit(memsw_limit), Limit(ReadKey(d + "/memory.stat", "hierarchical_memsw_limit")));
    detail.swap_usage_bytes = ReadNumber(d + "/memory.memsw.usage_in_bytes");
  }
  detail.oom_kills = ReadKey(d + "/memory.oom_control", "oom_kill");
  detail.under_oom = ReadKey(d + "/memory.oom_control", "under_oom") == 1;
  return detail;
}

CgroupDetail ReadV2(const CgroupMount& mount, const std::string& cgroup_path) {
  CgroupDetail detail;
  detail.version = 2;
  detail.cgroup_path = cgroup_path;
  detail.directory = CgroupDirectory(mount, cgroup_path);
  if (ReadNumber(detail.directory + "/memory.current") < 0 && detail.directory != mount.mount_point) {
    // Not visible here (or the path moved): the mount's own files, if it has any (a container's root).
    if (ReadNumber(mount.mount_point + "/memory.current") >= 0) detail.directory = mount.mount_point;
  }
  const std::string& d = detail.directory;
  detail.usage_bytes = ReadNumber(d + "/memory.current");
  detail.has_memory = detail.usage_bytes >= 0;
  if (!detail.has_memory) return detail;
  detail.peak_bytes = ReadNumber(d + "/memory.peak");
  detail.inactive_file_bytes = ReadKey(d + "/memory.stat", "inactive_file");
  detail.high_bytes = Limit(ReadNumber(d + "/memory.high", 0));
  detail.swap_usage_bytes = ReadNumber(d + "/memory.swap.current");
  detail.swap_limit_bytes = ReadNumber(d + "/memory.swap.max", 0);
  detail.limit_hits = ReadKey(d + "/memory.events", "max");
  detail.oom_events = ReadKey(d + "/memory.events", "oom");
  detail.oom_kills = ReadKey(d + "/memory.events", "oom_kill");
  // The effective limit is the smallest memory.max from here up to the mount point.
  std::string directory = d;
  for (;;) {
    detail.limit_bytes = Smaller(detail.limit_bytes, Limit(ReadNumber(directory + "/memory.max", 0)));
    if (directory.size() <= mount.mount_point.size()) break;
    size_t slash = directory.rfind('/');
    if (slash == std::string::npos || slash < mount.mount_point.size()) break;
    directory.resize(slash);
  }
  return detail;
}

}  // namespace

CgroupMounts ParseCgroupMounts(absl::string_view mountinfo) {
  CgroupMounts mounts;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    size_t separator = 0;
    for (size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        separator = i;
        break;
      }
    }
    if (separator == 0 || separator + 3 >= fields.size()) continue;
    absl::string_view type = fields[separator + 1];
    CgroupMount mount{Unescape(fields[3]), Unescape(fields[4])};
    if (type == "cgroup2" && mounts.v2.mount_point.empty()) {
      mounts.v2 = mount;
    } else if (type == "cgroup" && mounts.v1_memory.mount_point.empty()) {
      for (absl::string_view option : absl::StrSplit(fields[separator + 3], ',')) {
        if (option == "memory") mounts.v1_memory = mount;
      }
    }
  }
  return mounts;
}

std::vector<CgroupDetail> ReadCgroupDetails(const CgroupMounts& mounts, absl::string_view proc_cgroup) {
  std::vector<CgroupDetail> details;
  std::string path;
  if (!mounts.v1_memory.mount_point.empty() && FindCgroupPath(proc_cgroup, false, &path)) {
    details.push_back(ReadV1(mounts.v1_memory, path));
  }
  if (!mounts.v2.mount_point.empty() && FindCgroupPath(proc_cgroup, true, &path)) {
    details.push_back(ReadV2(mounts.v2, path));
  }
  for (CgroupDetail& detail : details) {
    if (detail.usage_bytes >= 0) {
      detail.working_set_bytes = detail.usage_bytes - (detail.inactive_file_bytes > 0 ? detail.inactive_file_bytes : 0);
      if (detail.working_set_bytes < 0) detail.working_set_bytes = 0;
    }
  }
  return details;
}

nlohmann::json CgroupDetailJson(const CgroupDetail& d) {
  auto optional = [](int64_t value) -> nlohmann::json {
    return value < 0 ? nlohmann::json(nullptr) : nlohmann::json(value);
  };
  nlohmann::json json = {
      {"version", d.version}, {"path", d.cgroup_path}, {"directory", d.directory}, {"memory_controller", d.has_memory}};
  if (!d.has_memory) return json;
  json.update({{"usage_bytes", optional(d.usage_bytes)},
               {"working_set_bytes", optional(d.working_set_bytes)},
               {"limit_bytes", d.limit_bytes},
               {"peak_bytes", optional(d.peak_bytes)},
               {"inactive_file_bytes", optional(d.inactive_file_bytes)},
               {"swap_limit_bytes", optional(d.swap_limit_bytes)},
               {"swap_usage_bytes", optional(d.swap_usage_bytes)},
               {"limit_hits", optional(d.limit_hits)},
               {"oom_kills", optional(d.oom_kills)}});
  if (d.version == 1) {
    json["under_oom"] = d.under_oom;
  } else {
    json["high_bytes"] = d.high_bytes;
    json["oom_events"] = optional(d.oom_events);
  }
  return json;
}

}  // namespace memtide
