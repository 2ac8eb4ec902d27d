// See top_command.h. Runs in the CLI.
#include "top_command.h"

#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "process_table.h"
#include "segment_scan.h"
#include "stop_signal.h"

namespace memtide {
namespace {

constexpr size_t kProblemsOnScreen = 5;

size_t TerminalWidth() {
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 0;
}

double NowUnixSeconds() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

std::string LocalTimeText() {
  time_t now = time(nullptr);
  tm local{};
  localtime_r(&now, &local);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

nlohmann::json ScanJson(const TopOptions& options, const SegmentScan& scan, const std::vector<ProcessRow>& rows) {
  return {{"time_unix_s", NowUnixSeconds()},
          {"directories", options.directories},
          {"sort", SortKeyName(options.sort)},
          {"processes", ProcessRowsJson(rows)},
          {"skipped", scan.problems}};
}

std::string Dump(const nlohmann::json& json, int indent) {
  return json.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

absl::Status TopCommand(const TopOptions& options) {
  CatchStopSignals();
  bool live_terminal = !options.once && !options.json && isatty(STDOUT_FILENO);
  for (int64_t refresh = 0;; ++refresh) {
    SegmentScan scan = ScanSegments(options.directories);
    std::vector<ProcessRow> rows = MakeProcessRows(scan.segments);
    SortProcessRows(options.sort, &rows);
    if (options.once) {
      if (options.json) {
        fmt::print("{}\n", Dump(ScanJson(options, scan, rows), 2));
      } else {
        fmt::print("{}", ProcessTableText(rows, TerminalWidth()));
      }
      for (const std::string& problem : scan.problems) fmt::print(stderr, "memtide: skipped {}\n", problem);
      if (rows.empty() && !options.json) {
        fmt::print(stderr, "memtide: no memtide segments in {}\n", absl::StrJoin(options.directories, ", "));
      }
      return absl::OkStatus();
    }
    if (options.json) {
      fmt::print("{}\n", Dump(ScanJson(options, scan, rows), -1));
    } else {
      std::string screen;
      if (live_terminal) screen += "\x1b[H\x1b[2J";  // home, clear
      screen += fmt::format("memtide top  {}  {} process{} in {}  (sort {}, every {:.1f} s{})\n", LocalTimeText(),
                            rows.size(), rows.size() == 1 ? "" : "es", absl::StrJoin(options.directories, ", "),
                            SortKeyName(options.sort), static_cast<double>(options.interval_ms) / 1000.0,
                            live_terminal ? ", ^C to quit" : "");
      screen += ProcessTableText(rows, TerminalWidth());
      for (size_t i = 0; i < scan.problems.size() && i < kProblemsOnScreen; ++i) {
        screen += fmt::format("skipped {}\n", scan.problems[i]);
      }
      if (scan.problems.size() > kProblemsOnScreen) {
        screen += fmt::format("skipped {} more files\n", scan.problems.size() - kProblemsOnScreen);
      }
      if (!live_terminal) screen += "\n";
      fmt::print("{}", screen);
    }
    fflush(stdout);
    if (options.count > 0 && refresh + 1 >= options.count) break;
    if (SleepUnlessStopped(options.interval_ms)) break;
  }
  return absl::OkStatus();
}

}  // namespace memtide
