// Parsers for the values of the outside commands' flags (top, monitor, export, trim): intervals, sort keys,
// listen addresses. Pure functions of a string, so main.cc validates every flag up front with them and the
// fuzzer (tests/fuzz/cli_flags_fuzzer.cc) can feed them anything. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_FLAG_VALUES_H_
#define MEMTIDE_VIEWER_FLAG_VALUES_H_

#include <stdint.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memtide {

// `--interval`: a bare number is seconds (`memtide monitor --interval 60`, like top -d and vmstat; unlike the
// MEMTIDE_* variables, whose bare numbers are milliseconds), else a duration such as 500ms, 2s, 1m.
// Between 10 ms and one day.
absl::StatusOr<int64_t> ParseIntervalMs(absl::string_view text);

// `--timeout`: as --interval, between 1 ms and one hour.
absl::StatusOr<int64_t> ParseTimeoutMs(absl::string_view text);

// `gc --grace`: as --interval, between 0 and one day.
absl::StatusOr<int64_t> ParseGraceMs(absl::string_view text);

enum class SortKey { kRss, kHeap, kPeak, kGpu, kPid };
// `top --sort`: rss, heap, peak, gpu or pid.
absl::StatusOr<SortKey> ParseSortKey(absl::string_view text);
const char* SortKeyName(SortKey key);

struct ListenAddress {
  std::string host;  // without brackets for IPv6
  int port = 0;      // 0: any free port (the exporter prints the one it got)
};
// `export --listen`: HOST:PORT or [IPV6]:PORT; HOST is a name or address, PORT 0..65535.
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view text);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_FLAG_VALUES_H_
