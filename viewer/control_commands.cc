// See control_commands.h. Runs in the CLI.
#include "control_commands.h"

#include <string.h>

#include "absl/strings/str_cat.h"
#include "byte_format.h"
#include "control_client.h"
#include "fmt/format.h"
#include "memtide/segment.h"
#include "nlohmann/json.hpp"
#include "segment_reader.h"

namespace memtide {
namespace {

absl::StatusOr<ControlResponse> Request(const ControlOptions& options, uint32_t kind) {
  absl::StatusOr<std::string> path = FindSegmentOfPid(options.directory, options.pid);
  if (!path.ok()) return path.status();
  absl::StatusOr<ControlResponse> response = SendControlRequest(*path, kind, "", options.timeout_ms);
  if (!response.ok()) return response.status();
  if (response->status != 0) {
    return absl::AbortedError(absl::StrCat("pid ", response->pid, " (", response->command, ") could not ",
                                           ControlKindName(kind), ": ",
                                           response->message.empty() ? strerror(response->status) : response->message));
  }
  return response;
}

void PrintJson(const nlohmann::json& json) {
  fmt::print("{}\n", json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

absl::Status TrimCommand(const ControlOptions& options) {
  absl::StatusOr<ControlResponse> response = Request(options, kControlTrim);
  if (!response.ok()) return response.status();
  const int64_t before = response->values[0], after = response->values[1];
  const int64_t released = response->values[2], duration_ns = response->values[3];
  if (options.json) {
    PrintJson({{"pid", response->pid},
               {"command", response->command},
               {"request", "trim"},
               {"rss_before_bytes", before},
               {"rss_after_bytes", after},
               {"released_bytes", released},
               {"duration_s", static_cast<double>(duration_ns) / 1e9},
               {"message", response->message}});
    return absl::OkStatus();
  }
  fmt::print("pid {} ({}): trimmed in {:.1f} ms: RSS {} -> {} ({} released)\n", response->pid, response->command,
             static_cast<double>(duration_ns) / 1e6, HumanBytes(before), HumanBytes(after), HumanBytes(released));
  return absl::OkStatus();
}

absl::Status ResetPeakCommand(const ControlOptions& options) {
  absl::StatusOr<ControlResponse> response = Request(options, kControlResetPeak);
  if (!response.ok()) return response.status();
  const int64_t current = response->values[0], peak = response->values[1];
  if (options.json) {
    PrintJson({{"pid", response->pid},
               {"command", response->command},
               {"request", "reset-peak"},
               {"peak_before_bytes", response->heap_peak_before_bytes},
               {"peak_bytes", peak},
               {"current_bytes", current},
               {"message", response->message}});
    return absl::OkStatus();
  }
  fmt::print("pid {} ({}): heap peak reset from {} to {} (current {})\n", response->pid, response->command,
             HumanBytes(response->heap_peak_before_bytes), HumanBytes(peak), HumanBytes(current));
  return absl::OkStatus();
}

}  // namespace memtide
