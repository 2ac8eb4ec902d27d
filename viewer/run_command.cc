// See run_command.h. Runs in the CLI.
#include "run_command.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "byte_format.h"
#include "check_command.h"
#include "fmt/format.h"
#include "leak_suppressions.h"
#include "memtide/segment.h"
#include "options.h"
#include "preload_reach.h"
#include "proc_stats.h"
#include "report_command.h"
#include "segment_reader.h"
#include "segment_view.h"
#include "symbolizer.h"
#include "trace_report.h"

namespace memtide {
namespace {

pid_t g_child = 0;

void ForwardSignal(int signal_number) {
  if (g_child > 0) kill(g_child, signal_number);
}

std::string EffectiveDirectory(const RunOptions& options) {
  if (!options.directory.empty()) return options.directory;
  Options defaults;
  LoadOptions(&defaults, nullptr, nullptr);  // the child reports bad values itself
  return defaults.dir.text;
}

// A private folder for the trace files (MEMTIDE_TRACE_FILE=<folder>/trace.%p.json): every traced process of
// the run writes its own at exit; the program's is read, the folder removed with whatever else is in it.
class TraceFolder {
 public:
  ~TraceFolder() { Remove(); }
  absl::Status Create() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp") + "/memtide-run.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot create a folder for the trace (", pattern, "): ", strerror(errno)));
    }
    path_ = pattern;
    return absl::OkStatus();
  }
  void Remove() {
    if (path_.empty()) return;
    if (DIR* dir = opendir(path_.c_str()); dir != nullptr) {
      while (dirent* entry = readdir(dir)) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
          unlinkat(dirfd(dir), entry->d_name, 0);
        }
      }
      closedir(dir);
    }
    rmdir(path_.c_str());
    path_.clear();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What came of the trace: "off" (not asked for), "ok", "killed" (no file: the program died by a signal),
// "missing" (no file otherwise), "invalid" (a file that failed validation); `error` says it in one line.
struct TraceOutcome {
  std::string status = "off";
  std::string error;
  std::optional<TraceReport> report;
};

std::string SignalName(int signal_number) {
  const char* abbreviation = sigabbrev_np(signal_number);
  return abbreviation != nullptr ? absl::StrCat("SIG", abbreviation) : strsignal(signal_number);
}

TraceOutcome ReadRunTrace(const std::string& folder, pid_t child, int exit_code, int signal_number,
                          const LeakSuppressions& suppressions, int top) {
  TraceOutcome outcome;
  std::string path = fmt::format("{}/trace.{}.json", folder, child);
  if (access(path.c_str(), F_OK) != 0) {
    if (signal_number != 0) {
      outcome.status = "killed";
      outcome.error = fmt::format("the program was killed by signal {} ({}) before it could write its trace",
                                  signal_number, SignalName(signal_number));
    } else {
      outcome.status = "missing";
      outcome.error = fmt::format(
          "the program exited with {} without writing its trace: it ended without running its exit handlers (the "
          "exit_group system call made directly, quick_exit), or tracing did not start (see memtide's lines above, "
          "or MEMTIDE_VERBOSE=1)",
          exit_code);
    }
    return outcome;
  }
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(path);
  absl::StatusOr<TraceReport> report = absl::UnknownError("");
  const RawTraceOptions named = ListsOnly(top <= 0 ? 0 : std::max(top, kRunReportMaxStacks));
  if (json.ok()) {
    Symbolizer symbolizer;
    // The report keeps kRunReportMaxStacks entries per list and the text shows `top` of them.
    report = ParseRawTrace(*json, "the program's trace", &symbolizer, named);
  } else {
    report = json.status();
  }
  if (report.ok() && report->trace.kind != TraceKind::kExit) {
    report = absl::InvalidArgumentError("the program's trace is a snapshot, not the one written at exit");
  }
  if (!report.ok()) {
    outcome.status = "invalid";
    outcome.error = std::string(report.status().message());
    return outcome;
  }
  ClassifyLeaks(suppressions, &*report, named.named_entries);
  outcome.status = "ok";
  outcome.report = std::move(*report);
  return outcome;
}

// Rendered text as summary lines: blank lines dropped, every line indented by two spaces.
std::string Indented(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out += "  " + text.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

[[noreturn]] void ExecChild(const RunOptions& options, const std::string& preload, const std::string& allocator,
                            const std::string& trace_folder, const std::string& suppressions) {
  const char* existing = getenv("LD_PRELOAD");
  std::string value = allocator.empty() ? preload : preload + ":" + allocator;
  if (existing != nullptr && existing[0] != '\0') value += std::string(":") + existing;
  setenv("LD_PRELOAD", value.c_str(), 1);
  setenv("MEMTIDE_RUN_PID", std::to_string(getpid()).c_str(), 1);
  if (options.allocator == "mimalloc") {
    // mimalloc keeps freed pages per thread and mi_collect() only collects the calling thread's heap, so
    // memtide's monitor thread cannot trim for the program's threads: let mimalloc decommit emptied pages
    // itself, at once (mimalloc 2.0 option names; the user's own settings win).
    setenv("MIMALLOC_PAGE_RESET", "1", 0);
    setenv("MIMALLOC_RESET_DECOMMITS", "1", 0);
    setenv("MIMALLOC_RESET_DELAY", "0", 0);
  }
  // Absolute: every process of the program's tree finds the same folder, whatever directory it starts in.
  if (!options.directory.empty()) {
    std::error_code no_directory;
    const std::filesystem::path absolute = std::filesystem::absolute(options.directory, no_directory);
    setenv("MEMTIDE_DIR", no_directory ? options.directory.c_str() : absolute.c_str(), 1);
  }
  if (options.keep_segment) setenv("MEMTIDE_KEEP_SEGMENT", "1", 1);
  if (!options.trace_mode.empty()) {
    setenv("MEMTIDE_TRACE", options.trace_mode.c_str(), 1);
    setenv("MEMTIDE_TRACE_FILE", (trace_folder + "/trace.%p.json").c_str(), 1);
    setenv("MEMTIDE_LEAK_TOP", "0", 1);  // memtide run prints the leaks itself, once, after the summary
    if (!suppressions.empty()) setenv("MEMTIDE_SUPPRESSIONS", suppressions.c_str(), 1);
  }
  std::vector<char*> argv;
  for (const std::string& argument : options.command) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  int error = errno;
  fmt::print(stderr, "memtide: error: cannot run '{}': {}\n", options.command[0], strerror(error));
  _exit(error == ENOENT ? 127 : 126);
}

std::string DescribeEnd(int exit_code, int signal_number) {
  if (signal_number != 0) return fmt::format("was killed by signal {} ({})", signal_number, strsignal(signal_number));
  return fmt::format("exited with {}", exit_code);
}

}  // namespace

absl::StatusOr<std::string> LocatePreload() {
  char executable[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", executable, sizeof(executable) - 1);
  if (length <= 0) return absl::NotFoundError("cannot read /proc/self/exe to find libmemtide.so");
  executable[length] = '\0';
  std::string directory(executable, strrchr(executable, '/') - executable);
  for (const std::string& candidate :
       {directory + "/../lib/libmemtide.so", directory + "/../lib/memtide/libmemtide.so", directory + "/libmemtide.so"}) {
    char resolved[PATH_MAX];
    if (realpath(candidate.c_str(), resolved) != nullptr && access(resolved, R_OK) == 0) return std::string(resolved);
  }
  return absl::NotFoundError(absl::StrCat("libmemtide.so is not in ", directory, "/../lib (is memtide installed?)"));
}

absl::StatusOr<std::string> LocateAllocator(const std::string& name) {
  struct Known {
    const char* name;
    const char* library;
    const char* package;
  };
  static constexpr Known kKnown[] = {
      {"mimalloc", "libmimalloc.so.2", "libmimalloc2.0"},
      {"jemalloc", "libjemalloc.so.2", "libjemalloc2"},
      {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
  };
  if (name == "glibc") return std::string();
  for (const Known& known : kKnown) {
    if (name != known.name) continue;
    // The multiarch folder is where libc itself lives (e.g. /lib/x86_64-linux-gnu).
    std::vector<std::string> folders;
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&::free), &info) != 0 && info.dli_fname != nullptr) {
      std::string libc = info.dli_fname;
      std::string folder = libc.substr(0, libc.rfind('/'));
      folders.push_back(folder);
      if (folder.rfind("/lib/", 0) == 0) folders.push_back("/usr" + folder);
    }
    for (const char* folder : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"}) {
      folders.push_back(folder);
    }
    for (const std::string& folder : folders) {
      std::string path = folder + "/" + known.library;
      if (access(path.c_str(), R_OK) == 0) return path;
    }
    return absl::NotFoundError(absl::StrCat("--allocator ", name, ": ", known.library,
                                            " is not installed (apt-get install ", known.package, ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--allocator ", name, " is not one of glibc, mimalloc, jemalloc, tcmalloc"));
}

// Why the program left no segment: what stopped the preload when that can be told, else the reader's error.
std::string NoDataReason(const RunOptions& options, const absl::Status& read_error) {
  const std::string why = WhyPreloadCannotReach(options.command.front());
  return why.empty() ? std::string(read_error.message()) : why;
}

absl::StatusOr<int> RunCommand(const RunOptions& options) {
  const bool tracing = !options.trace_mode.empty();
  if (!options.suppressions_path.empty() && !tracing) {
    return absl::InvalidArgumentError("--suppressions needs a leak check: add --leaks (or --trace full)");
  }
  // Everything that can fail before the program runs fails now, not after a long run.
  absl::StatusOr<LeakSuppressions> suppressions = LoadSuppressions(options.suppressions_path);
  if (!suppressions.ok()) return suppressions.status();
  std::string suppressions_absolute;
  if (!options.suppressions_path.empty()) {
    // The program may change folders before its exit reads the file.
    char resolved[PATH_MAX];
    suppressions_absolute =
        realpath(options.suppressions_path.c_str(), resolved) != nullptr ? resolved : options.suppressions_path;
  }
  std::optional<TraceReport> baseline;
  if (!options.baseline_path.empty()) {
    absl::StatusOr<TraceReport> loaded = OpenTraceOrReport(options.baseline_path, *suppressions, ListsOnly(0));
    if (!loaded.ok()) return loaded.status();
    baseline = std::move(*loaded);
  }
  absl::StatusOr<std::string> preload = LocatePreload();
  if (!preload.ok()) return preload.status();
  absl::StatusOr<std::string> allocator = LocateAllocator(options.allocator);
  if (!allocator.ok()) return allocator.status();
  std::string directory = EffectiveDirectory(options);
  TraceFolder trace_folder;
  if (tracing) {
    if (absl::Status created = trace_folder.Create(); !created.ok()) return created;
  }

  auto started = std::chrono::steady_clock::now();
  fflush(nullptr);
  pid_t child = fork();
  if (child < 0) return absl::InternalError(absl::StrCat("fork failed: ", strerror(errno)));
  if (child == 0) ExecChild(options, *preload, *allocator, trace_folder.path(), suppressions_absolute);
  g_child = child;
  uint64_t start_ticks = ReadStartTimeTicks(child);

  // Like a shell waiting for a foreground job: the terminal's ^C reaches the program; memtide stays to report.
  struct sigaction ignore {}, forward{}, old_int{}, old_quit{}, old_term{}, old_hup{};
  ignore.sa_handler = SIG_IGN;
  forward.sa_handler = ForwardSignal;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  sigaction(SIGTERM, &forward, &old_term);
  sigaction(SIGHUP, &forward, &old_hup);
  int status = 0;
  struct rusage usage {};
  while (wait4(child, &status, 0, &usage) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waiting for the program failed: ", strerror(errno)));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  int signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  int exit_code = signal_number != 0 ? 128 + signal_number : WEXITSTATUS(status);

  std::string segment_path = fmt::format("{}/" MEMTIDE_SEGMENT_PREFIX "{}.{}", directory, child, start_ticks);
  absl::StatusOr<SegmentSnapshot> snapshot = ReadSegmentFile(segment_path);
  if (snapshot.ok() && !options.keep_segment) unlink(segment_path.c_str());

  TraceOutcome trace;
  if (tracing) {
    trace = ReadRunTrace(trace_folder.path(), child, exit_code, signal_number, *suppressions, options.top);
    trace_folder.Remove();
  }

  nlohmann::json report = {
      {kRunReportVersionKey, kRunReportVersion},
      {"command", options.command},
      {"pid", child},
      {"exit_code", exit_code},
      {"signal", signal_number != 0 ? nlohmann::json(signal_number) : nlohmann::json(nullptr)},
      {"duration_s", duration},
      {"byte_unit", "usable"},
  };
  if (snapshot.ok()) {
    report["status"] = snapshot->segment.state == kSegmentStateExited ? "exited" : "killed";
    report.update(CountersJson(snapshot->segment));
  } else {
    report["status"] = "no_segment";
    report["error"] = NoDataReason(options, snapshot.status());
  }
  // wait4's maximum RSS is exact for the whole life of the process, exec'd images included.
  report["rss"]["peak_bytes"] = static_cast<int64_t>(usage.ru_maxrss) * 1024;
  report["rss"]["final_bytes"] = snapshot.ok() ? snapshot->segment.counters.rss_bytes : 0;
  report["rss"].erase("current_bytes");
  // The trace's figures are requested bytes ("trace"."byte_unit"); the counters above are usable bytes.
  report["trace_status"] = trace.status;
  if (trace.report.has_value()) {
    report.update(RenderJson(*trace.report, kRunReportMaxStacks));
  } else if (!trace.error.empty()) {
    report["trace_error"] = trace.error;
  }

  if (!options.report_path.empty()) {
    absl::Status written = WriteFileAtomically(
        options.report_path, report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "--report");
    if (!written.ok()) return written;
  }

  std::string command_text = absl::StrJoin(options.command, " ");
  if (!options.quiet) {
    std::string summary = fmt::format("memtide: {} {} after {:.2f} s\n", command_text,
                                      DescribeEnd(WEXITSTATUS(status), signal_number), duration);
    const bool heap_hooks_bypassed =
        snapshot.ok() && (snapshot->segment.counters.disabled_features & kFeatureHeapHooks) != 0;
    if (snapshot.ok()) {
      const SegmentCounters& c = snapshot->segment.counters;
      if (snapshot->segment.state != kSegmentStateExited) {
        summary += "  (no final state: these are the last values published before the process died)\n";
      }
      if (heap_hooks_bypassed) {
        summary += "  heap    not seen: the program's malloc is not memtide's (disabled_features: heap_hooks)\n";
      } else {
        summary += fmt::format("  heap    peak {:>10}   final {:>10}   allocations {}   frees {}\n",
                               HumanBytes(c.heap_peak_bytes), HumanBytes(c.heap_current_bytes),
                               GroupedCount(c.heap_allocations), GroupedCount(c.heap_frees));
      }
      summary += fmt::format("  mmap    peak {:>10}   final {:>10}\n", HumanBytes(c.mmap_peak_bytes),
                             HumanBytes(c.mmap_current_bytes));
      summary += fmt::format("  rss     peak {:>10}\n", HumanBytes(report["rss"]["peak_bytes"].get<int64_t>()));
      for (const nlohmann::json& gpu : report["gpu"]) {
        summary += fmt::format("  gpu {:<3} peak {:>10}   final {:>10}   {}\n", gpu["index"].get<int>(),
                               HumanBytes(gpu["peak_bytes"].get<int64_t>()),
                               HumanBytes(gpu["current_bytes"].get<int64_t>()), gpu["uuid"].get<std::string>());
      }
      for (const nlohmann::json& mark : report["marks"]) {
        summary += fmt::format("  mark    {:>8.3f} s  {:<24} current {:>10}   peak {:>10}\n",
                               mark["time_s"].get<double>(), mark["label"].get<std::string>(),
                               HumanBytes(mark["current_bytes"].get<int64_t>()),
                               HumanBytes(mark["peak_bytes"].get<int64_t>()));
      }
    } else {
      summary += fmt::format("  no memtide data: {}\n", NoDataReason(options, snapshot.status()));
    }
    if (!options.report_path.empty()) summary += fmt::format("  report  {}\n", options.report_path);
    if (trace.report.has_value() && heap_hooks_bypassed) {
      summary += "memtide: no leak check: the program's malloc is not memtide's (disabled_features: heap_hooks)\n";
    } else if (trace.report.has_value()) {
      const TraceReport& traced = *trace.report;
      summary += fmt::format("memtide: leak check ({} bytes, {}):\n", traced.trace.byte_unit,
                             traced.trace.mode == "sample" ? "sampled: estimates" : "full trace");
      summary += Indented(RenderLeakText(traced, options.top));
      std::string peak = RenderPeakText(traced, options.top);
      if (!peak.empty()) peak[0] = 'a';  // "At the peak (…)" becomes the heading "memtide: at the peak (…)"
      summary += "memtide: " + Indented(peak).substr(2);
    }
    fmt::print(stderr, "{}", summary);
  } else if (!snapshot.ok()) {
    fmt::print(stderr, "memtide: no memtide data: {}\n", NoDataReason(options, snapshot.status()));
  }
  if (!trace.error.empty()) fmt::print(stderr, "memtide: no leak check: {}\n", trace.error);

  // Budgets read the report as written (counters) and the trace's classified leaks.
  TraceReport checked;
  if (trace.report.has_value()) checked = std::move(*trace.report);
  checked.path = "this run";
  checked.run_report = std::move(report);
  const bool print_violations = exit_code == 0;  // the program's own failure wins; budgets are not its news
  absl::StatusOr<bool> within = ApplyBudgets(checked, baseline ? &*baseline : nullptr, options.budgets,
                                             options.summary_md_path, print_violations, options.top);
  if (!within.ok()) return within.status();
  if (exit_code != 0) return exit_code;
  return *within ? 0 : kBudgetExceededExitCode;
}

}  // namespace memtide
