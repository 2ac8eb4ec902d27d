// memtide's one-line messages from inside the traced process (DESIGN.md decision 9): to MEMTIDE_LOG or
// standard error, prefixed "memtide: ", written with one write(2). Allocation-free (fmt into a stack
// buffer); safe to call from any thread outside the hot path; not async-signal-safe.
#ifndef MEMTIDE_PRELOAD_LOG_H_
#define MEMTIDE_PRELOAD_LOG_H_

#include <utility>

#include "fmt/format.h"

namespace memtide::internal {

// Checks that MEMTIDE_LOG (if set) can be opened for appending and remembers its absolute path; messages go to
// standard error until then and if it fails. Each line opens, appends and closes (log.cc says why). Also notes
// whether standard error was closed at start: then lines without MEMTIDE_LOG go nowhere, never into whatever
// file the program opened as number 2. Called once, first thing in the constructor.
void OpenLog(const char* path);
void WriteLogLine(const char* text, size_t length);
// How the log file's open/append/close runs: `run` executes work(argument) elsewhere and returns true, or
// returns false and the caller does it (lifecycle.cc passes RunWithPrivateDescriptors).
void SetLogFileWorkRunner(bool (*run)(void (*work)(void*), void* argument));
bool VerboseLogging();
void SetVerboseLogging(bool verbose);

template <typename... Args>
void Log(fmt::format_string<Args...> format, Args&&... args) {
  char line[1024];
  constexpr char kPrefix[] = "memtide: ";
  constexpr size_t kPrefixLength = sizeof(kPrefix) - 1;
  __builtin_memcpy(line, kPrefix, kPrefixLength);
  auto result = fmt::format_to_n(line + kPrefixLength, sizeof(line) - kPrefixLength - 1, format,
                                 std::forward<Args>(args)...);
  size_t length = static_cast<size_t>(result.out - line);
  line[length++] = '\n';
  WriteLogLine(line, length);
}

template <typename... Args>
void LogVerbose(fmt::format_string<Args...> format, Args&&... args) {
  if (VerboseLogging()) Log(format, std::forward<Args>(args)...);
}

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_LOG_H_
