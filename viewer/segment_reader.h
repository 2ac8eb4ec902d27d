// Reads stats segments written by traced processes (include/memtide/segment.h). The files sit in a shared
// directory that anyone could have written to, so nothing in them is trusted: owner, type, size, magic and
// version are checked; every length and index is bounded; a seqlock'd copy that never stabilises is an error,
// not a spin. Reads with pread (never mmap: a truncated file would SIGBUS the viewer).
#ifndef MEMTIDE_VIEWER_SEGMENT_READER_H_
#define MEMTIDE_VIEWER_SEGMENT_READER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "memtide/segment.h"

namespace memtide {

enum class ProcessState { kRunning, kExited, kKilled };

struct SegmentSnapshot {
  std::string path;
  Segment segment;
  ProcessState state;
  // The writer died in the middle of a publish: fields may mix two publishes.
  bool torn = false;
  // The writer's pid as this viewer sees it: the segment's own, or the host's pid of a container's process.
  pid_t local_pid = 0;
};

// Reads and validates one segment file.
absl::StatusOr<SegmentSnapshot> ReadSegmentFile(const std::string& path);
// The segment of `pid` in `directory` (the newest if the pid was reused).
absl::StatusOr<std::string> FindSegmentOfPid(const std::string& directory, pid_t pid);
// Every file in `directory` that looks like a segment by name.
std::vector<std::string> ListSegmentFiles(const std::string& directory);
// The command line, split at NULs, bounded by command_bytes.
std::vector<std::string> CommandArguments(const Segment& segment);
std::string ProcessStateName(ProcessState state);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SEGMENT_READER_H_
