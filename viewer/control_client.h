// The requester side of a segment's control mailbox (include/memtide/segment.h, SegmentControl): asks a
// traced process's monitor thread to trim or reset its peak and waits for the answer. Runs in the CLI.
//
// Only the owner of a segment (or root) may send requests: the file is 0600, and the client also refuses a
// file owned by someone else even when its mode would let it write. The protocol: take `request_lock`
// (CAS 0 -> our pid; a lock whose holder is dead is broken, a live holder is waited for until the timeout),
// write kind and argument, bump `request_sequence` (release), bump `wake` and FUTEX_WAKE it (shared, not
// private: the mapping is a file's), then poll every 2 ms until `response_sequence` reaches our request,
// the process dies, or the timeout passes; finally release the lock.
#ifndef MEMTIDE_VIEWER_CONTROL_CLIENT_H_
#define MEMTIDE_VIEWER_CONTROL_CLIENT_H_

#include <stdint.h>
#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memtide {

struct ControlResponse {
  int32_t status = 0;                  // 0 ok, else an errno value from the process
  int64_t values[4] = {};              // trim: rss before, rss after, released bytes, duration ns;
                                       // reset-peak: heap current, heap peak after the reset
  std::string message;                 // printable (see printable.h)
  pid_t pid = 0;                       // as this viewer sees it (SegmentSnapshot::local_pid)
  std::string command;                 // printable, for messages
  double waited_s = 0;                 // from the request to the answer
  int64_t heap_peak_before_bytes = 0;  // as last published before the request
};

// Sends one request to the process whose segment is at `path` and waits up to `timeout_ms`. Errors name
// the pid and say why: not the owner, not running, mailbox held by another requester, no answer in time
// (the process is stopped, or its libmemtide does not answer requests).
absl::StatusOr<ControlResponse> SendControlRequest(const std::string& path, uint32_t kind, absl::string_view argument,
                                                   int64_t timeout_ms);

// "trim", "reset-peak", "snapshot"
const char* ControlKindName(uint32_t kind);

// Checks an argument before it is sent: at most MEMTIDE_SEGMENT_CONTROL_ARGUMENT_BYTES - 1 bytes, no NUL,
// printable. (The process parses it again; this only gives the user a clear message first.)
absl::Status ValidateControlArgument(absl::string_view argument);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_CONTROL_CLIENT_H_
