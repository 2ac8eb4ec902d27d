// See show_command.h. Runs in the CLI.
#include "show_command.h"

#include "fmt/format.h"
#include "segment_reader.h"
#include "segment_view.h"

namespace memtide {

absl::Status ShowCommand(pid_t pid, const std::string& directory, bool json) {
  absl::StatusOr<std::string> path = FindSegmentOfPid(directory, pid);
  if (!path.ok()) return path.status();
  absl::StatusOr<SegmentSnapshot> snapshot = ReadSegmentFile(*path);
  if (!snapshot.ok()) return snapshot.status();
  if (json) {
    // The segment's strings are whatever its writer put there: invalid UTF-8 is replaced, never thrown on.
    fmt::print("{}\n", SegmentJson(*snapshot).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}", SegmentText(*snapshot));
  }
  return absl::OkStatus();
}

}  // namespace memtide
