// See proc_stats.h. Runs on the monitor thread (and in the CLI): allocation-free.
#include "proc_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>

#include "fmt/format.h"
#include "memtide/segment.h"

namespace memtide {
namespace {

// A v1 limit this large means "no limit" (the kernel's PAGE_COUNTER_MAX rounded to pages).
constexpr int64_t kUnlimitedV1 = int64_t{1} << 62;

template <typename... Args>
void FormatPath(char (&buffer)[512], fmt::format_string<Args...> format, Args&&... args) {
  auto result = fmt::format_to_n(buffer, sizeof(buffer) - 1, format, std::forward<Args>(args)...);
  *result.out = '\0';
}

// Value after "<key>" (e.g. "VmRSS:") in a /proc status-style text, in kB units converted to bytes.
bool FindKilobytes(const char* text, const char* key, int64_t* bytes) {
  const char* found = strstr(text, key);
  if (found == nullptr) return false;
  *bytes = strtoll(found + strlen(key), nullptr, 10) * 1024;
  return true;
}

bool ReadInteger(const char* path, int64_t* value, bool* is_max) {
  char text[64];
  if (ReadSmallFile(path, text, sizeof(text)) <= 0) return false;
  if (is_max != nullptr) *is_max = strncmp(text, "max", 3) == 0;
  if (is_max != nullptr && *is_max) return true;
  char* end;
  *value = strtoll(text, &end, 10);
  return end != text;
}

// Finds this process's cgroup path for a v1 controller ("memory", "cpu") or, with controller null, the v2
// unified hierarchy.
bool FindCgroupPath(const char* cgroup_file_text, const char* controller, char* path, size_t size) {
  const bool v2 = controller == nullptr;
  for (const char* line = cgroup_file_text; *line != '\0';) {
    const char* end = strchr(line, '\n');
    size_t length = end != nullptr ? static_cast<size_t>(end - line) : strlen(line);
    // "<id>:<controllers>:<path>"
    const char* first = static_cast<const char*>(memchr(line, ':', length));
    const char* second = first != nullptr ? static_cast<const char*>(memchr(first + 1, ':', line + length - first - 1))
                                          : nullptr;
    if (second != nullptr) {
      bool matches = false;
      if (v2) {
        matches = second == first + 1 && strncmp(line, "0:", 2) == 0;
      } else {
        for (const char* c = first + 1; c < second;) {
          const char* comma = static_cast<const char*>(memchr(c, ',', second - c));
          const char* token_end = comma != nullptr ? comma : second;
          const size_t length_wanted = strlen(controller);
          if (static_cast<size_t>(token_end - c) == length_wanted && strncmp(c, controller, length_wanted) == 0) {
            matches = true;
          }
          c = token_end + 1;
        }
      }
      size_t path_length = static_cast<size_t>(line + length - second - 1);
      if (matches && path_length < size) {
        memcpy(path, second + 1, path_length);
        path[path_length] = '\0';
        return true;
      }
    }
    if (end == nullptr) break;
    line = end + 1;
  }
  return false;
}

// A "key value" line of <directory>/memory.stat; 0 when absent.
int64_t ReadStatValue(const char* directory, const char* key) {
  char file[512];
  FormatPath(file, "{}/memory.stat", directory);
  char stat[8192];
  if (ReadSmallFile(file, stat, sizeof(stat)) <= 0) return 0;
  for (const char* line = stat; line != nullptr && *line != '\0';) {
    if (strncmp(line, key, strlen(key)) == 0) return strtoll(line + strlen(key), nullptr, 10);
    line = strchr(line, '\n');
    if (line != nullptr) ++line;
  }
  return 0;
}

bool FileExists(const char* path) { return access(path, F_OK) == 0; }

// A v1 controller's directory for this process's cgroup path, /sys/fs/cgroup/<controller><path>, or the
// controller's root when that has no `probe` file: in a container with its own cgroup namespace the host path
// is not mounted, the root is ours.
void FindV1Directory(const char* controller, const char* cgroup_path, const char* probe, char (&directory)[512]) {
  FormatPath(directory, "/sys/fs/cgroup/{}{}", controller, cgroup_path);
  char file[512];
  FormatPath(file, "{}/{}", directory, probe);
  if (!FileExists(file)) FormatPath(directory, "/sys/fs/cgroup/{}", controller);
}

bool ReadCgroupV1(const char* cgroup_path, CgroupMemory* out) {
  char directory[512];
  FindV1Directory("memory", cgroup_path, "memory.usage_in_bytes", directory);
  char file[512];
  FormatPath(file, "{}/memory.usage_in_bytes", directory);
  int64_t usage = 0, limit = 0;
  if (!ReadInteger(file, &usage, nullptr)) return false;
  FormatPath(file, "{}/memory.limit_in_bytes", directory);
  if (!ReadInteger(file, &limit, nullptr)) limit = 0;
  if (limit >= kUnlimitedV1) {
    // A parent may still limit us: memory.stat has the effective hierarchical limit.
    char stat[4096];
    FormatPath(file, "{}/memory.stat", directory);
    limit = 0;
    if (ReadSmallFile(file, stat, sizeof(stat)) > 0) {
      const char* found = strstr(stat, "hierarchical_memory_limit ");
      if (found != nullptr) limit = strtoll(found + strlen("hierarchical_memory_limit "), nullptr, 10);
    }
    if (limit >= kUnlimitedV1) limit = 0;
  }
  *out = CgroupMemory{kCgroupV1, usage, limit, ReadStatValue(directory, "total_inactive_file ")};
  return true;
}

bool ReadCgroupV2(const char* cgroup_path, CgroupMemory* out) {
  char directory[512];
  FormatPath(directory, "/sys/fs/cgroup{}", strcmp(cgroup_path, "/") == 0 ? "" : cgroup_path);
  char file[512];
  FormatPath(file, "{}/memory.current", directory);
  int64_t usage = 0;
  if (!ReadInteger(file, &usage, nullptr)) {
    FormatPath(directory, "/sys/fs/cgroup");
    FormatPath(file, "{}/memory.current", directory);
    if (!ReadInteger(file, &usage, nullptr)) return false;
  }
  // The effective limit is the smallest memory.max on the way up.
  int64_t limit = 0;
  size_t length = strlen(directory);
  while (length >= strlen("/sys/fs/cgroup")) {
    directory[length] = '\0';
    FormatPath(file, "{}/memory.max", directory);
    int64_t value = 0;
    bool is_max = false;
    if (ReadInteger(file, &value, &is_max) && !is_max && (limit == 0 || value < limit)) limit = value;
    char* slash = strrchr(directory, '/');
    if (slash == nullptr || static_cast<size_t>(slash - directory) < strlen("/sys/fs/cgroup")) break;
    length = static_cast<size_t>(slash - directory);
  }
  *out = CgroupMemory{kCgroupV2, usage, limit, ReadStatValue(directory, "inactive_file ")};
  return true;
}

}  // namespace

namespace {

std::atomic<bool (*)(void (*)(void*), void*)> g_file_work_runner{nullptr};

ssize_t ReadSmallFileHere(const char* path, char* buffer, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t total = 0;
  while (total + 1 < size) {
    ssize_t got = read(fd, buffer + total, size - 1 - total);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    total += static_cast<size_t>(got);
  }
  close(fd);
  buffer[total] = '\0';
  return static_cast<ssize_t>(total);
}

struct SmallFileRead {
  const char* path;
  char* buffer;
  size_t size;
  ssize_t result;
};

void ReadSmallFileWork(void* argument) {
  SmallFileRead* read = static_cast<SmallFileRead*>(argument);
  read->result = ReadSmallFileHere(read->path, read->buffer, read->size);
}

}  // namespace

void SetFileWorkRunner(bool (*run)(void (*work)(void*), void* argument)) {
  g_file_work_runner.store(run, std::memory_order_release);
}

ssize_t ReadSmallFile(const char* path, char* buffer, size_t size) {
  int saved_errno = errno;
  SmallFileRead read{path, buffer, size, -1};
  bool (*run)(void (*)(void*), void*) = g_file_work_runner.load(std::memory_order_acquire);
  if (run == nullptr || !run(ReadSmallFileWork, &read)) ReadSmallFileWork(&read);
  errno = saved_errno;
  return read.result;
}

bool ReadProcessMemory(pid_t pid, ProcessMemory* out) {
  char path[512];
  if (pid == 0) {
    // The calling thread's view: once the main thread has called pthread_exit, the thread-group leader is a
    // zombie whose /proc/self/status has no memory lines, but every live thread's has them.
    FormatPath(path, "/proc/thread-self/status");
  } else {
    FormatPath(path, "/proc/{}/status", pid);
  }
  char text[4096];
  if (ReadSmallFile(path, text, sizeof(text)) <= 0) return false;
  ProcessMemory memory{};
  bool ok = FindKilobytes(text, "VmRSS:", &memory.rss_bytes);
  ok = FindKilobytes(text, "VmHWM:", &memory.rss_peak_bytes) && ok;
  const char* threads = strstr(text, "Threads:");
  memory.threads = threads != nullptr ? strtoll(threads + strlen("Threads:"), nullptr, 10) : 0;
  if (ok) *out = memory;
  return ok;
}

bool ReadCgroupMemory(pid_t pid, CgroupMemory* out) {
  char path[512];
  if (pid == 0) {
    FormatPath(path, "/proc/self/cgroup");
  } else {
    FormatPath(path, "/proc/{}/cgroup", pid);
  }
  char text[2048];
  if (ReadSmallFile(path, text, sizeof(text)) <= 0) return false;
  char cgroup_path[400];
  if (FindCgroupPath(text, "memory", cgroup_path, sizeof(cgroup_path)) && ReadCgroupV1(cgroup_path, out)) {
    return true;
  }
  if (FindCgroupPath(text, nullptr, cgroup_path, sizeof(cgroup_path)) && ReadCgroupV2(cgroup_path, out)) return true;
  *out = CgroupMemory{};
  return false;
}

int CpusFromQuota(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>((quota + period - 1) / period);
}

int ReadCgroupCpuLimit() {
  char text[2048];
  if (ReadSmallFile("/proc/self/cgroup", text, sizeof(text)) <= 0) return 0;
  char cgroup_path[400];
  char directory[512];
  char file[512];
  if (FindCgroupPath(text, "cpu", cgroup_path, sizeof(cgroup_path))) {
    FindV1Directory("cpu", cgroup_path, "cpu.cfs_quota_us", directory);
    int64_t quota = 0, period = 0;
    FormatPath(file, "{}/cpu.cfs_quota_us", directory);
    if (ReadInteger(file, &quota, nullptr)) {
      FormatPath(file, "{}/cpu.cfs_period_us", directory);
      return ReadInteger(file, &period, nullptr) ? CpusFromQuota(quota, period) : 0;
    }
  }
  if (FindCgroupPath(text, nullptr, cgroup_path, sizeof(cgroup_path))) {
    FormatPath(file, "/sys/fs/cgroup{}/cpu.max", strcmp(cgroup_path, "/") == 0 ? "" : cgroup_path);
    if (!FileExists(file)) FormatPath(file, "/sys/fs/cgroup/cpu.max");
    char limit[128];
    if (ReadSmallFile(file, limit, sizeof(limit)) <= 0 || strncmp(limit, "max", 3) == 0) return 0;
    char* end;
    const int64_t quota = strtoll(limit, &end, 10);
    return CpusFromQuota(quota, strtoll(end, nullptr, 10));
  }
  return 0;
}

uint64_t ReadStartTimeTicks(pid_t pid) {
  char path[512];
  if (pid == 0) {
    FormatPath(path, "/proc/self/stat");
  } else {
    FormatPath(path, "/proc/{}/stat", pid);
  }
  char text[1024];
  if (ReadSmallFile(path, text, sizeof(text)) <= 0) return 0;
  // The command name (field 2) may contain spaces and parentheses: fields restart after the last ')'.
  const char* p = strrchr(text, ')');
  if (p == nullptr) return 0;
  ++p;
  for (int field = 2; field < 22 && *p != '\0'; ++p) {
    if (*p == ' ') ++field;
  }
  return strtoull(p, nullptr, 10);
}

bool ReadSystemMemory(SystemMemory* out) {
  char text[4096];
  if (ReadSmallFile("/proc/meminfo", text, sizeof(text)) <= 0) return false;
  SystemMemory memory;
  bool ok = FindKilobytes(text, "MemTotal:", &memory.total_bytes);
  ok = FindKilobytes(text, "MemAvailable:", &memory.available_bytes) && ok;
  if (ok) *out = memory;
  return ok;
}

int64_t ReadResidentBytes() {
  char text[128];
  if (ReadSmallFile("/proc/self/statm", text, sizeof(text)) <= 0) return -1;
  char* rest;
  strtoll(text, &rest, 10);  // size
  return strtoll(rest, nullptr, 10) * sysconf(_SC_PAGESIZE);
}

MemoryPressure ComputeMemoryPressure(const CgroupMemory& cgroup, const SystemMemory& system) {
  MemoryPressure pressure;
  if (cgroup.version != kCgroupNone && cgroup.limit_bytes > 0 &&
      (system.total_bytes == 0 || cgroup.limit_bytes < system.total_bytes)) {
    pressure.from_cgroup = true;
    pressure.limit_bytes = cgroup.limit_bytes;
    pressure.used_bytes = cgroup.usage_bytes - cgroup.inactive_file_bytes;
    if (pressure.used_bytes < 0) pressure.used_bytes = 0;
  } else if (system.total_bytes > 0) {
    pressure.limit_bytes = system.total_bytes;
    pressure.used_bytes = system.total_bytes - system.available_bytes;
  }
  pressure.available_bytes = pressure.limit_bytes - pressure.used_bytes;
  return pressure;
}

}  // namespace memtide
