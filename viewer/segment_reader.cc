// See segment_reader.h. Runs in the CLI.
#include "segment_reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "proc_stats.h"
#include "process_identity.h"

namespace memtide {
namespace {

constexpr int kStableReadAttempts = 200;

absl::Status Invalid(const std::string& path, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

bool ReadExactly(int fd, void* buffer, size_t size, off_t offset) {
  return pread(fd, buffer, size, offset) == static_cast<ssize_t>(size);
}

// Alive, and the same process (a reused pid has another start time), here or in a container's pid namespace
// below this one (process_identity.h).
ProcessLocation LocateWriter(const Segment& segment) { return LocateProcess(segment.pid, segment.start_time_ticks); }

// Parses "memtide.<pid>.<start>" into its numbers.
bool ParseSegmentName(const std::string& name, pid_t* pid, uint64_t* start) {
  if (!absl::StartsWith(name, MEMTIDE_SEGMENT_PREFIX)) return false;
  std::vector<std::string> parts = absl::StrSplit(name.substr(strlen(MEMTIDE_SEGMENT_PREFIX)), '.');
  int32_t parsed_pid;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &parsed_pid) || !absl::SimpleAtoi(parts[1], start)) {
    return false;
  }
  *pid = parsed_pid;
  return true;
}

}  // namespace

std::string ProcessStateName(ProcessState state) {
  switch (state) {
    case ProcessState::kRunning: return "running";
    case ProcessState::kExited: return "exited";
    case ProcessState::kKilled: return "killed";
  }
  return "unknown";
}

absl::StatusOr<SegmentSnapshot> ReadSegmentFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) return Invalid(path, "is a symbolic link; refusing to read it");
    int open_errno = errno;
    struct stat link;
    if (open_errno == EACCES && lstat(path.c_str(), &link) == 0 && link.st_uid != geteuid()) {
      return Invalid(path, absl::StrCat("is owned by uid ", link.st_uid, ", not you; only root reads others' segments"));
    }
    return Invalid(path, absl::StrCat("cannot open: ", strerror(open_errno)));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat status;
  if (fstat(fd, &status) != 0) return Invalid(path, absl::StrCat("cannot stat: ", strerror(errno)));
  if (!S_ISREG(status.st_mode)) return Invalid(path, "is not a regular file");
  if (geteuid() != 0 && status.st_uid != geteuid()) {
    return Invalid(path, absl::StrCat("is owned by uid ", status.st_uid, ", not you; only root reads others' segments"));
  }
  if (static_cast<size_t>(status.st_size) != sizeof(Segment)) {
    char magic[16] = {};
    if (status.st_size >= 20 && ReadExactly(fd, magic, sizeof(magic), 0) &&
        memcmp(magic, MEMTIDE_SEGMENT_MAGIC, sizeof(magic)) == 0) {
      uint32_t version = 0;
      ReadExactly(fd, &version, sizeof(version), 16);
      if (version != MEMTIDE_SEGMENT_VERSION) {
        return Invalid(path, absl::StrCat("segment version ", version, " is not the version this memtide reads (",
                                          MEMTIDE_SEGMENT_VERSION, ")"));
      }
      // Right magic and version, wrong size: cut short, or written by a build whose layout differs.
      return Invalid(path, absl::StrCat("has ", status.st_size, " bytes, a version ", version, " segment has ",
                                        sizeof(Segment), " (truncated, or written by another memtide build)"));
    }
    return Invalid(path, absl::StrCat("has ", status.st_size, " bytes, a segment has ", sizeof(Segment),
                                      " (truncated or not a memtide segment)"));
  }

  SegmentSnapshot snapshot;
  snapshot.path = path;
  Segment& segment = snapshot.segment;
  bool stable = false;
  for (int attempt = 0; attempt < kStableReadAttempts && !stable; ++attempt) {
    uint64_t before = 0, after = 0;
    if (!ReadExactly(fd, &before, sizeof(before), offsetof(Segment, sequence)) ||
        !ReadExactly(fd, &segment, sizeof(segment), 0) ||
        !ReadExactly(fd, &after, sizeof(after), offsetof(Segment, sequence))) {
      return Invalid(path, "changed size while being read");
    }
    stable = before == after && before % 2 == 0 && segment.sequence == before;
    if (!stable) usleep(200);
  }
  if (memcmp(segment.magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment.magic)) != 0) {
    return Invalid(path, "has no memtide magic; not a segment");
  }
  if (segment.version != MEMTIDE_SEGMENT_VERSION) {
    return Invalid(path, absl::StrCat("segment version ", segment.version, " is not the version this memtide reads (",
                                      MEMTIDE_SEGMENT_VERSION, ")"));
  }
  if (segment.total_bytes != sizeof(Segment) || segment.header_bytes != offsetof(Segment, sequence)) {
    return Invalid(path, "header sizes do not match the segment layout");
  }
  if (segment.command_bytes > sizeof(segment.command)) segment.command_bytes = sizeof(segment.command);
  for (SegmentMark& mark : segment.marks) mark.label[sizeof(mark.label) - 1] = '\0';

  ProcessLocation location = LocateWriter(segment);
  bool alive = location.alive;
  snapshot.local_pid = alive ? location.local_pid : segment.pid;
  if (!stable) {
    if (alive) return Invalid(path, "kept changing while being read (the process publishes too often?)");
    snapshot.torn = true;
  }
  if (segment.state == kSegmentStateExited) {
    snapshot.state = ProcessState::kExited;
  } else {
    snapshot.state = alive ? ProcessState::kRunning : ProcessState::kKilled;
  }
  return snapshot;
}

std::vector<std::string> ListSegmentFiles(const std::string& directory) {
  std::vector<std::string> files;
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return files;
  while (dirent* entry = readdir(dir)) {
    pid_t pid;
    uint64_t start;
    if (ParseSegmentName(entry->d_name, &pid, &start)) files.push_back(directory + "/" + entry->d_name);
  }
  closedir(dir);
  std::sort(files.begin(), files.end());
  return files;
}

absl::StatusOr<std::string> FindSegmentOfPid(const std::string& directory, pid_t pid) {
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", directory, ": ", strerror(errno)));
  std::string best;
  uint64_t best_start = 0;
  while (dirent* entry = readdir(dir)) {
    pid_t entry_pid;
    uint64_t start;
    if (ParseSegmentName(entry->d_name, &entry_pid, &start) && entry_pid == pid &&
        (best.empty() || start > best_start)) {
      best = directory + "/" + entry->d_name;
      best_start = start;
    }
  }
  closedir(dir);
  pid_t own_pid = 0;
  uint64_t own_start = 0;
  if (best.empty() && InnermostPid(pid, &own_pid, &own_start) && own_pid != pid) {
    // A container's process seen from the host: its segment carries the pid it has inside.
    std::string candidate = absl::StrCat(directory, "/" MEMTIDE_SEGMENT_PREFIX, own_pid, ".", own_start);
    if (access(candidate.c_str(), F_OK) == 0) best = candidate;
  }
  if (best.empty()) {
    return absl::NotFoundError(absl::StrCat("no memtide segment for pid ", pid, " in ", directory,
                                            " (not running under memtide, younger than MEMTIDE_SEGMENT_DELAY, "
                                            "or another MEMTIDE_DIR)"));
  }
  return best;
}

std::vector<std::string> CommandArguments(const Segment& segment) {
  std::vector<std::string> arguments;
  size_t length = std::min<size_t>(segment.command_bytes, sizeof(segment.command));
  size_t start = 0;
  for (size_t i = 0; i <= length; ++i) {
    if (i == length || segment.command[i] == '\0') {
      if (i > start || (i < length)) arguments.emplace_back(segment.command + start, i - start);
      start = i + 1;
    }
  }
  while (!arguments.empty() && arguments.back().empty()) arguments.pop_back();
  return arguments;
}

}  // namespace memtide
