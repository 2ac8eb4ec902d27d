// `memtide show PID [--json]`: one process's segment, alive, exited-and-kept or killed.
#ifndef MEMTIDE_VIEWER_SHOW_COMMAND_H_
#define MEMTIDE_VIEWER_SHOW_COMMAND_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace memtide {

absl::Status ShowCommand(pid_t pid, const std::string& directory, bool json);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SHOW_COMMAND_H_
