// See gc_command.h. Runs in the CLI.
#include "gc_command.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fmt/format.h"
#include "memtide/segment.h"
#include "process_identity.h"
#include "segment_reader.h"

namespace memtide {
namespace {

struct SegmentName {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  bool temporary = false;  // ".memtide.<pid>.<start>.tmp": a creation that never finished
};

bool ParseName(const std::string& name, SegmentName* out) {
  absl::string_view rest = name;
  if (absl::ConsumePrefix(&rest, "." MEMTIDE_SEGMENT_PREFIX)) {
    if (!absl::ConsumeSuffix(&rest, ".tmp")) return false;
    out->temporary = true;
  } else if (!absl::ConsumePrefix(&rest, MEMTIDE_SEGMENT_PREFIX)) {
    return false;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '.');
  int32_t pid = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid) || pid <= 0 ||
      !absl::SimpleAtoi(parts[1], &out->start_ticks)) {
    return false;
  }
  out->pid = pid;
  return true;
}

// The process that wrote the file still runs: same pid and start time (a pid reused by another process has
// another start time), here or inside a container below this pid namespace. An unreadable start time counts
// as alive: never remove a file on a guess.
bool WriterAlive(const SegmentName& name) { return LocateProcess(name.pid, name.start_ticks).alive; }

int64_t NowUnixNs() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

}  // namespace

absl::Status GcCommand(const GcOptions& options) {
  int removed = 0, running = 0, others = 0, recent = 0, failed = 0;
  for (const std::string& directory : options.directories) {
    DIR* dir = opendir(directory.c_str());
    if (dir == nullptr) {
      return absl::NotFoundError(absl::StrCat("cannot open ", directory, ": ", strerror(errno)));
    }
    std::vector<std::string> names;
    while (dirent* entry = readdir(dir)) names.emplace_back(entry->d_name);
    closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      SegmentName parsed;
      if (!ParseName(name, &parsed)) continue;
      std::string path = directory + "/" + name;
      struct stat status;
      if (lstat(path.c_str(), &status) != 0) continue;  // removed meanwhile
      if (status.st_uid != geteuid()) {
        ++others;
        continue;
      }
      if (!S_ISREG(status.st_mode)) {
        fmt::print(stderr, "memtide: left {} alone: not a regular file\n", path);
        continue;
      }
      if (WriterAlive(parsed)) {
        ++running;
        continue;
      }
      std::string why = parsed.temporary ? "unfinished creation" : "unreadable";
      if (!parsed.temporary) {
        absl::StatusOr<SegmentSnapshot> snapshot = ReadSegmentFile(path);
        if (snapshot.ok()) {
          const Segment& segment = snapshot->segment;
          int64_t quiet_ns = NowUnixNs() - segment.counters.updated_unix_ns;
          if (snapshot->state == ProcessState::kRunning ||
              (snapshot->state == ProcessState::kKilled && quiet_ns < options.grace_ms * 1000000)) {
            // Published moments ago by a pid that is not alive here: another pid namespace, or just killed.
            ++recent;
            fmt::print(stderr,
                       "memtide: left {} alone: published {:.1f} s ago (a process in another pid "
                       "namespace, or one killed moments ago); see --grace\n",
                       path, static_cast<double>(quiet_ns) / 1e9);
            continue;
          }
          why = ProcessStateName(snapshot->state);
          if (snapshot->state == ProcessState::kExited && segment.exit_code >= 0) {
            why += fmt::format(" with {}", segment.exit_code);
          }
        } else {
          why = std::string(snapshot.status().message());
          why = "unreadable: " + why.substr(std::min(why.size(), path.size() + 2));
        }
      }
      if (!options.dry_run && unlink(path.c_str()) != 0) {
        ++failed;
        fmt::print(stderr, "memtide: cannot remove {}: {}\n", path, strerror(errno));
        continue;
      }
      ++removed;
      fmt::print("{} {} (pid {}, {})\n", options.dry_run ? "would remove" : "removed", path, parsed.pid, why);
    }
  }
  std::string summary =
      fmt::format("memtide: {} {} stale segment{}; kept {} of running processes",
                  options.dry_run ? "would remove" : "removed", removed, removed == 1 ? "" : "s", running);
  if (recent > 0) summary += fmt::format(", {} published recently", recent);
  if (others > 0) summary += fmt::format(", {} of other users (never touched)", others);
  fmt::print(stderr, "{}\n", summary);
  if (failed > 0) return absl::PermissionDeniedError(fmt::format("{} stale segments could not be removed", failed));
  return absl::OkStatus();
}

}  // namespace memtide
