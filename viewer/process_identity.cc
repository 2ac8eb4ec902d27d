// See process_identity.h. Runs in the CLI.
#include "process_identity.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <time.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace memtide {
namespace {

constexpr int64_t kScanTtlNs = 1'000'000'000;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// /proc/<pid>/stat field 22; 0 when unreadable.
uint64_t StartTicks(const std::string& proc_root, pid_t pid) {
  std::string text = ReadText(proc_root + "/" + std::to_string(pid) + "/stat");
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<absl::string_view> fields = absl::StrSplit(absl::string_view(text).substr(close + 2), ' ');
  uint64_t ticks = 0;
  // After the command: field 3 (state) is index 0, so field 22 is index 19.
  if (fields.size() <= 19 || !absl::SimpleAtoi(fields[19], &ticks)) return 0;
  return ticks;
}

// The pids of /proc/<pid>/status "NSpid:", outermost first.
std::vector<pid_t> NamespacePids(const std::string& proc_root, pid_t pid) {
  std::vector<pid_t> pids;
  std::string status = ReadText(proc_root + "/" + std::to_string(pid) + "/status");
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "NSpid:")) continue;
    for (absl::string_view field : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      int32_t value = 0;
      if (absl::SimpleAtoi(field, &value)) pids.push_back(value);
    }
  }
  return pids;
}

int64_t MonotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

// Start time -> local pids of every process under `proc_root`, rebuilt at most once a second: a `top` refresh
// of many segments of gone processes scans /proc once, not once per segment.
class StartTimeIndex {
 public:
  std::vector<pid_t> PidsStartedAt(const std::string& proc_root, uint64_t start_ticks) {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t now = MonotonicNs();
    if (proc_root != root_ || now - built_ns_ > kScanTtlNs) {
      Build(proc_root);
      built_ns_ = now;
    }
    auto found = index_.find(start_ticks);
    return found == index_.end() ? std::vector<pid_t>() : found->second;
  }

 private:
  void Build(const std::string& proc_root) {
    root_ = proc_root;
    index_.clear();
    DIR* dir = opendir(proc_root.c_str());
    if (dir == nullptr) return;
    while (dirent* entry = readdir(dir)) {
      int32_t pid = 0;
      if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 0) continue;
      uint64_t ticks = StartTicks(proc_root, pid);
      if (ticks != 0) index_[ticks].push_back(pid);
    }
    closedir(dir);
  }

  std::mutex mutex_;
  std::string root_;
  int64_t built_ns_ = 0;
  std::map<uint64_t, std::vector<pid_t>> index_;
};

}  // namespace

ProcessLocation LocateProcess(pid_t pid, uint64_t start_ticks, const std::string& proc_root) {
  if (pid <= 0) return {};
  if (proc_root == "/proc" && (kill(pid, 0) == 0 || errno == EPERM)) {
    uint64_t start = StartTicks(proc_root, pid);
    if (start == 0 || start == start_ticks) return {true, pid};
  } else if (proc_root != "/proc") {
    uint64_t start = StartTicks(proc_root, pid);
    if (start != 0 && start == start_ticks) return {true, pid};
  }
  // Not here under that pid: a process in a nested pid namespace started at that very tick, whose innermost
  // pid is the segment's?
  static StartTimeIndex index;
  for (pid_t candidate : index.PidsStartedAt(proc_root, start_ticks)) {
    std::vector<pid_t> pids = NamespacePids(proc_root, candidate);
    if (pids.size() > 1 && pids.back() == pid) return {true, candidate};
  }
  return {};
}

bool InnermostPid(pid_t local_pid, pid_t* own_pid, uint64_t* start_ticks, const std::string& proc_root) {
  std::vector<pid_t> pids = NamespacePids(proc_root, local_pid);
  uint64_t ticks = StartTicks(proc_root, local_pid);
  if (pids.empty() || ticks == 0) return false;
  *own_pid = pids.back();
  *start_ticks = ticks;
  return true;
}

}  // namespace memtide
