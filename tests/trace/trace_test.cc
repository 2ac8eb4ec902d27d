// End-to-end tests of tracing: the programs in tests/trace/programs/ run under LD_PRELOAD=libmemtide.so with
// MEMTIDE_TRACE=full (or through `memtide run --leaks`), and their trace files are read back through the CLI
// (`memtide report --format json`, `diff --json`, `snapshot`), so each test covers capture, the file format
// and symbolization together. One test per robustness case of the issue: every way a process ends, frames
// without unwind info, signal frames, fork, threads started before tracing, memtide's own allocations.
//
// Paths come from tests/trace/CMakeLists.txt: MEMTIDE_TRACE_PRELOAD, MEMTIDE_TRACE_CLI, MEMTIDE_TRACE_<PROGRAM>.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "run_process.h"
#include "test_scratch.h"

namespace memtide::e2e {
namespace {

using nlohmann::json;

// The program under LD_PRELOAD with full tracing, its trace written to dir/trace.<pid>.json.
Run RunTraced(const TempDir& dir, std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
  env.emplace("LD_PRELOAD", MEMTIDE_TRACE_PRELOAD);
  env.emplace("MEMTIDE_DIR", dir.path());
  env.emplace("MEMTIDE_TRACE", "full");
  env.emplace("MEMTIDE_TRACE_FILE", dir.File("trace.%p.json"));
  env.emplace("MEMTIDE_LEAK_TOP", "0");
  ProcessOptions options;
  options.argv = std::move(argv);
  options.env = std::move(env);
  return Execute(std::move(options));
}

// A program that cannot make its check on this machine (no seccomp filters in a container, say) prints
// "ok skipped: why" and exits 0: reported, not failed.
bool SkippedHere(const Run& run) {
  if (run.result.out.rfind("ok skipped:", 0) != 0) return false;
  MESSAGE(run.result.out);
  return true;
}

Run RunCli(std::vector<std::string> arguments, std::map<std::string, std::string> env = {}) {
  ProcessOptions options;
  options.argv = {MEMTIDE_TRACE_CLI};
  options.argv.insert(options.argv.end(), arguments.begin(), arguments.end());
  options.env = std::move(env);
  return Execute(std::move(options));
}

std::vector<std::string> TraceFiles(const TempDir& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    std::string name = entry.path().filename().string();
    if (name.rfind("trace.", 0) == 0 && name.size() > 5 && name.substr(name.size() - 5) == ".json") {
      files.push_back(entry.path().string());
    }
  }
  return files;
}

// `memtide report FILE --format json`, parsed.
json Rendered(const std::string& file) {
  Run run = RunCli({"report", file, "--format", "json"});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  return json::parse(run.result.out);
}

bool StackHas(const json& stack, const std::string& function) {
  for (const json& frame : stack) {
    if (frame.value("function", "").find(function) != std::string::npos) return true;
  }
  return false;
}

// Leaked bytes and blocks, over every leak entry (runtime's own excluded) whose sizes include `size`.
struct Leaked {
  int64_t bytes = 0;
  int64_t blocks = 0;
  json stack;  // of the last matching entry
};

Leaked LeakOfSize(const json& report, int64_t size, const char* list = "leaks") {
  Leaked found;
  for (const json& leak : report.value(list, json::array())) {
    for (const json& each : leak.value("sizes", json::array())) {
      if (each.get<int64_t>() != size) continue;
      found.bytes += leak["bytes"].get<int64_t>();
      found.blocks += leak["count"].get<int64_t>();
      found.stack = leak["stack"];
    }
  }
  return found;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE("every way out of main leaves a trace naming the leaking function") {
  for (const char* how : {"return", "exit", "_exit"}) {
    TempDir dir;
    Run run = RunTraced(dir, {MEMTIDE_TRACE_LEAK_PATHS, how});
    INFO(how << "\n" << run.Describe());
    REQUIRE(run.result.exit_code == 0);
    std::vector<std::string> files = TraceFiles(dir);
    REQUIRE(files.size() == 1);
    json report = Rendered(files[0]);
    Leaked leaked = LeakOfSize(report, 21001);
    CHECK(leaked.bytes == 21001);
    CHECK(leaked.blocks == 1);
    REQUIRE(!leaked.stack.empty());
    CHECK(leaked.stack[0]["function"].get<std::string>().find("LeakForPath") != std::string::npos);
    CHECK(StackHas(leaked.stack, "main"));
    CHECK(LeakOfSize(report, 5000).blocks == 0);  // freed
  }
}

TEST_CASE("a relative MEMTIDE_TRACE_FILE is in the directory the program started in, wherever it ends") {
  TempDir dir;
  Run run = RunTraced(dir, {"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" chdir", dir.path(), MEMTIDE_TRACE_LEAK_PATHS},
                      {{"MEMTIDE_TRACE_FILE", "relative.%p.json"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("cannot write the trace file") == std::string::npos);
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().filename().string().rfind("relative.", 0) == 0) files.push_back(entry.path().string());
  }
  REQUIRE(files.size() == 1);
  CHECK(LeakOfSize(Rendered(files[0]), 21001).bytes == 21001);
}

TEST_CASE("SIGKILL: memtide run says the leak check could not run") {
  TempDir dir;
  Run run = RunCli({"run", "--leaks", "--dir", dir.path(), "--report", dir.File("report.json"), "--",
                    MEMTIDE_TRACE_LEAK_PATHS, "kill"});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 128 + 9);
  CHECK(run.result.err.find("no leak check") != std::string::npos);
  json report = json::parse(ReadFile(dir.File("report.json")));
  CHECK(report.contains("trace_status"));
  CHECK(report["trace_status"].get<std::string>() != "ok");
}

TEST_CASE("a program that ends by the exit_group system call: memtide run says why there is no leak check") {
  TempDir dir;
  Run run = RunCli({"run", "--leaks", "--dir", dir.path(), "--", MEMTIDE_TRACE_LEAK_PATHS, "exit_group"});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.err.find("no leak check: the program exited with 0 without writing its trace: it ended without "
                            "running its exit handlers") != std::string::npos);
}

TEST_CASE("memtide run --leaks reports the leak with its symbolized stack") {
  TempDir dir;
  Run run = RunCli({"run", "--leaks", "--dir", dir.path(), "--report", dir.File("report.json"), "--",
                    MEMTIDE_TRACE_LEAK_PATHS, "exit"});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("LeakForPath") != std::string::npos);
  json report = json::parse(ReadFile(dir.File("report.json")));
  Leaked leaked = LeakOfSize(report, 21001);
  CHECK(leaked.bytes == 21001);
  CHECK(report["leaked_bytes"].get<int64_t>() >= 21001);
}

TEST_CASE("a leak's example sizes are the leaked blocks', not the first sizes its stack allocated") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_REALLOC_LEAK});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  json report = Rendered(files[0]);
  REQUIRE(report["leaks"].size() == 1);
  const json& leak = report["leaks"][0];
  CHECK(leak["bytes"].get<int64_t>() == 21071);
  CHECK(leak["sizes"] == json::array({21071}));
  CHECK(StackHas(leak["stack"], "GrowAndLose"));
}

TEST_CASE("frames without unwind info (JIT code, no unwind tables) neither crash nor lose blocks") {
  // Both stack walks: the cached-rule one (handing such stacks to libunwind) and libunwind alone.
  std::string fast_unwind;
  SUBCASE("cached-rule walk") { fast_unwind = "1"; }
  SUBCASE("libunwind alone") { fast_unwind = "0"; }
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_UNWIND_HOSTILE}, {{"MEMTIDE_TRACE_FAST_UNWIND", fast_unwind}});
  INFO("MEMTIDE_TRACE_FAST_UNWIND=" << fast_unwind);
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  json report = Rendered(files[0]);
  CHECK(LeakOfSize(report, 21011).bytes + LeakOfSize(report, 21011, "runtime_leaks").bytes == 21011);
  if (run.result.out.find("jit 3") != std::string::npos) {
    CHECK(LeakOfSize(report, 21012).bytes + LeakOfSize(report, 21012, "runtime_leaks").bytes == 3 * 21012);
  }
}

TEST_CASE("stacks reach through signal frames, and a busy profiling timer changes nothing") {
  std::string fast_unwind;
  SUBCASE("cached-rule walk") { fast_unwind = "1"; }
  SUBCASE("libunwind alone") { fast_unwind = "0"; }
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_SIGNAL_ALLOC}, {{"MEMTIDE_TRACE_FAST_UNWIND", fast_unwind}});
  INFO("MEMTIDE_TRACE_FAST_UNWIND=" << fast_unwind);
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.out == "ticks 1\n");
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  json report = Rendered(files[0]);
  Leaked leaked = LeakOfSize(report, 21021);
  CHECK(leaked.bytes == 21021);
  CHECK(StackHas(leaked.stack, "AllocateInHandler"));
  CHECK(StackHas(leaked.stack, "RaiseFromMain"));
  CHECK(StackHas(leaked.stack, "main"));
}

TEST_CASE("a fork child traces into its own file, with what it inherited") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_FORK_LEAKS});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  int child = 0, parent = 0;
  std::istringstream lines(run.result.out);
  std::string word;
  int pid;
  while (lines >> word >> pid) (word == "child" ? child : parent) = pid;
  REQUIRE(child > 0);
  REQUIRE(parent > 0);
  json child_report = Rendered(dir.File("trace." + std::to_string(child) + ".json"));
  json parent_report = Rendered(dir.File("trace." + std::to_string(parent) + ".json"));
  CHECK(LeakOfSize(child_report, 21031).bytes == 21031);
  CHECK(LeakOfSize(child_report, 21032).bytes == 21032);
  CHECK(LeakOfSize(child_report, 21033).bytes == 0);
  CHECK(LeakOfSize(parent_report, 21031).bytes == 21031);
  CHECK(LeakOfSize(parent_report, 21032).bytes == 0);
  CHECK(LeakOfSize(parent_report, 21033).bytes == 21033);
  CHECK(StackHas(LeakOfSize(child_report, 21032).stack, "LeakInChild"));
}

// The peak site whose innermost frame is `function`: {bytes, blocks}.
std::pair<int64_t, int64_t> PeakSiteOf(const json& report, const std::string& function) {
  for (const json& site : report.value("peak_sites", json::array())) {
    if (!site["stack"].empty() && site["stack"][0].value("function", "") == function) {
      return {site["bytes"].get<int64_t>(), site["count"].get<int64_t>()};
    }
  }
  return {0, 0};
}

bool TwoCpusHere() {
  cpu_set_t cpus;
  return sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) >= 2;
}

TEST_CASE("full mode's tables pass from the bookkeeping thread to the program's threads without losing a block") {
  for (const char* bookkeeping : {"1", "0"}) {
    TempDir dir;
    Run run = RunTraced(dir, {MEMTIDE_TRACE_THREAD_HANDOVER},
                        {{"MEMTIDE_TRACE_BOOKKEEPING_THREAD", bookkeeping}, {"MEMTIDE_VERBOSE", "1"}});
    INFO("MEMTIDE_TRACE_BOOKKEEPING_THREAD=" << bookkeeping << "\n" << run.Describe());
    REQUIRE(run.result.exit_code == 0);
    const bool queued = run.result.err.find("tables kept by the bookkeeping thread") != std::string::npos;
    CHECK(queued == (bookkeeping[0] == '1' && TwoCpusHere()));
    std::vector<std::string> files = TraceFiles(dir);
    REQUIRE(files.size() == 1);
    json report = Rendered(files[0]);
    // The peak, reached while main allocated alone: exact, and attributed exactly.
    CHECK(report["trace"]["peak_bytes"].get<int64_t>() == 4000000 + 10 * 21051);
    CHECK(PeakSiteOf(report, "HoldPeak") == std::make_pair<int64_t, int64_t>(4000000, 1));
    CHECK(PeakSiteOf(report, "AllocateKept") == std::make_pair<int64_t, int64_t>(10 * 21051, 10));
    // Main's blocks freed by the other thread are gone; each thread's leaks are there.
    const Leaked kept = LeakOfSize(report, 21051);
    CHECK(kept.bytes == 5 * 21051);
    CHECK(kept.blocks == 5);
    const Leaked threads = LeakOfSize(report, 21052);
    CHECK(threads.bytes == 7 * 21052);
    CHECK(StackHas(threads.stack, "ThreadLeaks"));
    const Leaked after = LeakOfSize(report, 21053);
    CHECK(after.bytes == 2 * 21053);
    CHECK(StackHas(after.stack, "AfterThread"));
    CHECK(report["trace"]["allocations"].get<int64_t>() - report["trace"]["frees"].get<int64_t>() ==
          report["trace"]["live_blocks"].get<int64_t>());
  }
}

// A cgroup v1 CPU controller group limited to one CPU's time, as `docker run --cpus=1` makes; removed when
// done. Empty path where this machine cannot make one (not root, no v1 cpu controller).
class OneCpuCgroup {
 public:
  OneCpuCgroup() {
    const std::string path = "/sys/fs/cgroup/cpu/memtide-trace-" + std::to_string(getpid());
    if (mkdir(path.c_str(), 0755) != 0) return;
    path_ = path;
    if (!Write("cpu.cfs_period_us", "100000") || !Write("cpu.cfs_quota_us", "100000")) path_.clear();
  }
  ~OneCpuCgroup() {
    if (!path_.empty()) rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  bool Write(const char* file, const char* value) {
    std::ofstream out(path_ + "/" + file);
    out << value;
    out.flush();
    return out.good();
  }
  std::string path_;
};

TEST_CASE("with one CPU's time (a CPU cgroup quota), full mode keeps its tables on the program's thread") {
  OneCpuCgroup cgroup;
  if (cgroup.path().empty()) {
    MESSAGE("skipped: cannot make a cgroup v1 CPU group here (needs root and /sys/fs/cgroup/cpu)");
    return;
  }
  TempDir dir;
  const std::string enter = "echo $$ > " + cgroup.path() + "/cgroup.procs && exec \"$0\"";
  Run run = RunTraced(dir, {"/bin/sh", "-c", enter, MEMTIDE_TRACE_THREAD_HANDOVER}, {{"MEMTIDE_VERBOSE", "1"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  // The shell started outside the group and says so first; the program's line is the last.
  std::string program_line;
  std::istringstream lines(run.result.err);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("tracing on (full)") != std::string::npos) program_line = line;
  }
  CHECK(!program_line.empty());
  CHECK(program_line.find("tables kept by the bookkeeping thread") == std::string::npos);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  json report = Rendered(files[0]);
  CHECK(LeakOfSize(report, 21052).bytes == 7 * 21052);
  CHECK(report["trace"]["peak_bytes"].get<int64_t>() == 4000000 + 10 * 21051);
}

TEST_CASE("a process that ends when its last thread does (main called pthread_exit) gets its full leak report") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_MAIN_THREAD_EXITS}, {{"MEMTIDE_LEAK_TOP", "10"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("Leak of 21,061 bytes in 1 block") != std::string::npos);
  CHECK(run.result.err.find("LeakFromWorker") != std::string::npos);
  CHECK(run.result.err.find("ended by signal") == std::string::npos);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  CHECK(LeakOfSize(Rendered(files[0]), 21061).bytes == 21061);
}

TEST_CASE("a thread started by a library constructor before main is traced") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_EARLY_THREAD});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  Leaked leaked = LeakOfSize(Rendered(files[0]), 21041);
  CHECK(leaked.bytes == 21041);
  CHECK(StackHas(leaked.stack, "EarlyThreadLeak"));
}

TEST_CASE("a program that frees everything has no leaks: memtide's own memory is never traced") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_NO_LEAKS});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  json report = Rendered(files[0]);
  INFO(report.dump(1));
  CHECK(report["leaks"].empty());
  CHECK(report["leaked_bytes"].get<int64_t>() == 0);
}

TEST_CASE("memtide_snapshot() twice, then memtide diff shows the growth at its stack") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_SNAPSHOT_GROWTH, dir.File("a.json"), dir.File("b.json")});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.out == "snapshots 0 0\n");
  Run diff = RunCli({"diff", dir.File("a.json"), dir.File("b.json"), "--json"});
  INFO(diff.Describe());
  REQUIRE(diff.result.exit_code == 0);
  json growth = json::parse(diff.result.out);
  const json& entries = growth.is_array() ? growth : growth.value("diffs", growth.value("stacks", json::array()));
  REQUIRE(!entries.empty());
  const json& top = entries[0];
  CHECK(top["size_diff"].get<int64_t>() == 10 * 21051);
  CHECK(top["count_diff"].get<int64_t>() == 10);
  CHECK(StackHas(top["stack"], "GrowOnce"));
}

// Starts live_server under the preload (with `env` added), waits until it is ready, runs
// `memtide snapshot PID -o out`, then lets it end. The run's exit code is the snapshot command's.
Run SnapshotLiveServer(const TempDir& dir, const std::string& out, std::map<std::string, std::string> env) {
  std::string script =
      "\"$1\" \"$2\" \"$3\" & pid=$!; for i in $(seq 500); do [ -e \"$2\" ] && break; sleep 0.01; done; "
      "sleep 0.2; \"$4\" snapshot $pid -o \"$5\" --dir \"$6\"; status=$?; touch \"$3\"; wait $pid; exit $status";
  env.emplace("LD_PRELOAD", MEMTIDE_TRACE_PRELOAD);
  env.emplace("MEMTIDE_DIR", dir.path());
  ProcessOptions options;
  options.argv = {"/bin/sh", "-c", script, "sh", MEMTIDE_TRACE_LIVE_SERVER, dir.File("ready"), dir.File("done"),
                  MEMTIDE_TRACE_CLI, out, dir.path()};
  options.env = std::move(env);
  return Execute(std::move(options));
}

TEST_CASE("memtide snapshot PID reads a running process's live blocks through the mailbox") {
  TempDir dir;
  std::string out = dir.File("snap.json");
  Run run = SnapshotLiveServer(dir, out, {{"MEMTIDE_TRACE", "full"}, {"MEMTIDE_LEAK_TOP", "0"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  json report = Rendered(out);
  int64_t held = 0;
  for (const json& site : report.value("sites", json::array())) {
    if (StackHas(site["stack"], "HoldBlocks")) held += site["bytes"].get<int64_t>();
  }
  CHECK(held == 3 * 21061);
}

TEST_CASE("a snapshot file is written outside the program's descriptor table, and holds what is live") {
  TempDir dir;
  // MEMTIDE_SEGMENT_DELAY=0: the thread with memtide's own descriptor table starts at once.
  Run run = RunTraced(dir, {MEMTIDE_TRACE_SNAPSHOT_DESCRIPTORS, dir.File("snap.json")},
                      {{"MEMTIDE_SEGMENT_DELAY", "0"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  if (SkippedHere(run)) return;
  CHECK(run.result.out.rfind("ok scans=", 0) == 0);
  CHECK(run.result.out.find(" snapshots=40 failed=0") != std::string::npos);
  json report = Rendered(dir.File("snap.json"));
  int64_t bytes = 0, blocks = 0, sites = 0;
  for (const json& site : report.value("sites", json::array())) {
    if (!StackHas(site["stack"], "Nest")) continue;
    bytes += site["bytes"].get<int64_t>();
    blocks += site["count"].get<int64_t>();
    ++sites;
  }
  CHECK(sites == 50);
  CHECK(blocks == 300);
  CHECK(bytes == 6 * (50 * 1000 + 49 * 50 / 2));  // 6 blocks of 1000 + depth bytes at each depth 0..49
}

TEST_CASE("a traced daemon sees no descriptor of libunwind's, and the files it opens stay its own") {
  TempDir dir;
  // libunwind for every stack, so its memory checks run all along.
  Run run = RunTraced(dir, {MEMTIDE_TRACE_DAEMON_FILES, dir.File("first.txt"), dir.File("second.txt")},
                      {{"MEMTIDE_TRACE_FAST_UNWIND", "0"}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out.rfind("ok fds ", 0) == 0);
  for (const char* name : {"first.txt", "second.txt"}) {
    std::stringstream text;
    text << std::ifstream(dir.File(name)).rdbuf();
    CHECK(text.str() == "program data\n");
  }
}

TEST_CASE("under a seccomp filter that kills process_vm_readv, libunwind checks memory through a pipe above 999") {
  TempDir dir;
  Run run = RunTraced(dir,
                      {MEMTIDE_TRACE_SECCOMP_SANDBOX, "no-process-vm-readv", MEMTIDE_TRACE_DAEMON_FILES,
                       dir.File("first.txt"), dir.File("second.txt"), "pipe-above-999"},
                      {{"MEMTIDE_TRACE_FAST_UNWIND", "0"}, {"MEMTIDE_VERBOSE", "1"}});
  INFO(run.Describe());
  if (SkippedHere(run)) return;
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out.rfind("ok fds ", 0) == 0);
  CHECK(run.result.err.find("libunwind checks memory through a pipe at descriptor 1000 or above") !=
        std::string::npos);
}

TEST_CASE("the exit-cleanup probe: the trace lists what the C runtime's cleanup freed, the output is written once") {
  TempDir dir;
  // Standard output is a pipe: printf's "done" is still in its buffer at the leak check, and the probe's
  // child, which runs the cleanup that flushes it, must not write it a second time.
  Run run = RunTraced(dir, {MEMTIDE_TRACE_NO_LEAKS}, {{"MEMTIDE_LEAK_TOP", "5"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.out.find("done\n") == run.result.out.rfind("done\n"));
  CHECK(run.result.err.find("exit cleanup") == std::string::npos);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  const json trace = json::parse(ReadFile(files[0]));
  REQUIRE(trace.contains("freed_at_exit"));
  CHECK_FALSE(trace["freed_at_exit"].empty());
  json report = Rendered(files[0]);
  CHECK(report["leaks"].empty());
  CHECK_FALSE(report["runtime_leaks"].empty());

  // Turned off: no list, no line; the stacks tell the runtime's blocks apart.
  TempDir off_dir;
  Run off =
      RunTraced(off_dir, {MEMTIDE_TRACE_NO_LEAKS}, {{"MEMTIDE_LEAK_TOP", "5"}, {"MEMTIDE_EXIT_CLEANUP_PROBE", "0"}});
  INFO(off.Describe());
  REQUIRE(off.result.exit_code == 0);
  CHECK(off.result.err.find("exit cleanup") == std::string::npos);
  std::vector<std::string> off_files = TraceFiles(off_dir);
  REQUIRE(off_files.size() == 1);
  CHECK_FALSE(json::parse(ReadFile(off_files[0])).contains("freed_at_exit"));
  CHECK(Rendered(off_files[0])["leaks"].empty());
}

TEST_CASE("in a sandbox that kills a process for a fork-like clone, the exit-cleanup probe stays out of the way") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_SECCOMP_SANDBOX, "threads-only", MEMTIDE_TRACE_LEAK_PATHS, "return"},
                      {{"MEMTIDE_LEAK_TOP", "5"}});
  INFO(run.Describe());
  if (SkippedHere(run)) return;
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.err.find("a seccomp filter does not let this process start a child process") != std::string::npos);
  CHECK(run.result.err.find("21,001") != std::string::npos);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  CHECK_FALSE(json::parse(ReadFile(files[0])).contains("freed_at_exit"));
  CHECK(LeakOfSize(Rendered(files[0]), 21001).blocks == 1);
}

TEST_CASE("a program that exits while another thread holds standard output's lock exits under tracing too") {
  // With the trace file only (memtide run's way): nothing of memtide's waits for the lock.
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_STDOUT_HELD});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  CHECK(LeakOfSize(Rendered(files[0]), 4321).blocks == 1);
  // With the leak text (plain LD_PRELOAD's default): made in a throwaway child, where its libraries never run
  // their exit-time flush, so it is printed in full.
  TempDir text_dir;
  Run text = RunTraced(text_dir, {MEMTIDE_TRACE_STDOUT_HELD}, {{"MEMTIDE_LEAK_TOP", "5"}});
  INFO(text.Describe());
  CHECK(text.result.exit_code == 0);
  CHECK(text.result.err.find("Leak of 4,321 bytes in 1 block") != std::string::npos);
  CHECK(text.result.err.find("LeakWhileHeld") != std::string::npos);
  // Where no child may be started (a threads-only sandbox), the text would be made in the program, whose
  // exit would then wait for the lock: it is left out, in one line.
  TempDir sandbox_dir;
  Run sandboxed = RunTraced(sandbox_dir, {MEMTIDE_TRACE_SECCOMP_SANDBOX, "threads-only", MEMTIDE_TRACE_STDOUT_HELD},
                            {{"MEMTIDE_LEAK_TOP", "5"}});
  INFO(sandboxed.Describe());
  if (SkippedHere(sandboxed)) return;
  CHECK(sandboxed.result.exit_code == 0);
  CHECK(sandboxed.result.err.find("no leak report: another thread holds the lock of standard output") !=
        std::string::npos);
}

TEST_CASE("memtide snapshot of a process that does not trace says so in one line") {
  TempDir dir;
  Run run = SnapshotLiveServer(dir, dir.File("snap.json"), {});
  INFO(run.Describe());
  CHECK(run.result.exit_code != 0);
  CHECK(run.result.err.find("tracing is off") != std::string::npos);
  CHECK(std::count(run.result.err.begin(), run.result.err.end(), '\n') == 1);
}

TEST_CASE("under plain LD_PRELOAD the leak report goes to standard error at exit") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_LEAK_PATHS, "return"}, {{"MEMTIDE_LEAK_TOP", "5"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("21,001") != std::string::npos);
  CHECK(run.result.err.find("LeakForPath") != std::string::npos);
}

TEST_CASE("under plain LD_PRELOAD a program that leaves only the C runtime's blocks prints no leak text") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_NO_LEAKS}, {{"MEMTIDE_LEAK_TOP", "5"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("SUMMARY") == std::string::npos);
  CHECK(run.result.err.find("not freed at exit") == std::string::npos);
  // It did leave blocks: printf's stdout buffer (known by _IO_file_doallocate, under main) and libstdc++'s.
  std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  json report = Rendered(files[0]);
  INFO(report.dump(1));
  CHECK(report["leaks"].empty());
  bool stdout_buffer = false;
  for (const json& leak : report["runtime_leaks"]) {
    const json& stack = leak["stack"];
    stdout_buffer = stdout_buffer || (StackHas(stack, "_IO_file_doallocate") && StackHas(stack, "main"));
  }
  CHECK(stdout_buffer);
}

TEST_CASE("the leak text at exit reads this machine's files only: no debuginfod, no libcurl in the program") {
  // elfutils starts libdebuginfod (libcurl, OpenSSL, GnuTLS) once local debug info is missing, server or not:
  // at exit that crashed `openssl genrsa`, whose own atexit handler had torn OpenSSL down. The loader's
  // LD_DEBUG=files names every library the process loads, the leak text module's included.
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_NO_DEBUG_INFO_LEAK},
                      {{"MEMTIDE_LEAK_TOP", "5"}, {"LD_DEBUG", "files"}, {"DEBUGINFOD_URLS", "http://127.0.0.1:9"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("7,003 bytes") != std::string::npos);
  CHECK(run.result.err.find("LeakWithoutDebugInfo (libno_debug_info.so") != std::string::npos);
  CHECK(run.result.err.find("libmemtide_leak_text.so") != std::string::npos);
  CHECK(run.result.err.find("libdebuginfod") == std::string::npos);
  CHECK(run.result.err.find("libcurl") == std::string::npos);
}

TEST_CASE("a leak text written into a pipe nobody reads does not end the program by SIGPIPE") {
  // `prog 2>&1 | head`: the reader may be gone by the time the program exits. Made certain here: the program's
  // standard error is a pipe whose read end is already closed (python3 runs it, untraced itself).
  TempDir dir;
  ProcessOptions options;
  options.argv = {"/usr/bin/python3", "-c",
                  "import os, subprocess, sys\n"
                  "r, w = os.pipe()\n"
                  "os.close(r)\n"
                  "env = dict(os.environ, LD_PRELOAD=os.environ.pop('CHILD_PRELOAD'))\n"
                  "print(subprocess.run(sys.argv[1:], stderr=w, env=env).returncode)\n",
                  MEMTIDE_TRACE_LEAK_PATHS, "return"};
  options.env = {{"CHILD_PRELOAD", MEMTIDE_TRACE_PRELOAD}, {"MEMTIDE_DIR", dir.path()}, {"MEMTIDE_TRACE", "full"},
                 {"MEMTIDE_LEAK_TOP", "5"}};
  Run run = Execute(std::move(options));
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.out == "0\n");  // not -13
}

TEST_CASE("started with standard error closed, the leak text never goes into the file the program opens as 2") {
  TempDir dir;
  const std::string data = dir.File("data.out");
  const std::string log = dir.File("memtide.log");
  for (bool with_log : {false, true}) {
    std::map<std::string, std::string> env = {{"MEMTIDE_LEAK_TOP", "5"}};
    if (with_log) env["MEMTIDE_LOG"] = log;
    Run run = RunTraced(dir, {"/bin/sh", "-c", "exec 2>&-; exec \"$0\" \"$1\"", MEMTIDE_TRACE_STDERR_CLOSED, data},
                        env);
    INFO("MEMTIDE_LOG " << with_log << "\n" << run.Describe());
    REQUIRE(run.result.exit_code == 0);
    CHECK(ReadFile(data) == "DATA\n");
  }
  CHECK(ReadFile(log).find("Leak of 4,242 bytes in 1 block") != std::string::npos);  // MEMTIDE_LOG still works
}

TEST_CASE("tracing leaves errno alone in malloc and free, sampled or full") {
  for (const char* mode : {"sample", "full"}) {
    TempDir dir;
    Run run = RunTraced(dir, {MEMTIDE_TRACE_ERRNO_PRESERVED}, {{"MEMTIDE_TRACE", mode}, {"MEMTIDE_TRACE_SAMPLE", "4KiB"}});
    INFO(mode << "\n" << run.Describe());
    CHECK(run.result.exit_code == 0);
    CHECK(run.result.out.rfind("ok iterations=", 0) == 0);
  }
}

TEST_CASE("a bad MEMTIDE_TRACE value is one line and the program runs untraced") {
  TempDir dir;
  Run run = RunTraced(dir, {MEMTIDE_TRACE_LEAK_PATHS, "return"}, {{"MEMTIDE_TRACE", "everything"}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.err.find("MEMTIDE_TRACE='everything' is not off, sample or full") != std::string::npos);
  CHECK(std::count(run.result.err.begin(), run.result.err.end(), '\n') == 1);
  CHECK(TraceFiles(dir).empty());
}

TEST_CASE("without the tracer module next to libmemtide.so, tracing turns itself off in one line") {
  TempDir dir;
  std::string lonely = dir.File("libmemtide.so");
  std::filesystem::copy_file(MEMTIDE_TRACE_PRELOAD, lonely);
  Run run = RunTraced(dir, {MEMTIDE_TRACE_LEAK_PATHS, "return"}, {{"LD_PRELOAD", lonely}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.err.find("cannot load the tracer module") != std::string::npos);
  CHECK(std::count(run.result.err.begin(), run.result.err.end(), '\n') == 1);
  CHECK(TraceFiles(dir).empty());
}

TEST_CASE("without the leak text module next to the tracer, the exit says in one line what leaked and why") {
  TempDir dir;
  const std::filesystem::path build_lib = std::filesystem::path(MEMTIDE_TRACE_PRELOAD).parent_path();
  std::string preload = dir.File("libmemtide.so");
  std::filesystem::copy_file(MEMTIDE_TRACE_PRELOAD, preload);
  std::filesystem::copy_file(build_lib / "libmemtide_tracer.so", dir.File("libmemtide_tracer.so"));
  Run run = RunTraced(dir, {MEMTIDE_TRACE_LEAK_PATHS, "return"}, {{"LD_PRELOAD", preload}, {"MEMTIDE_LEAK_TOP", "5"}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.err.find(" not freed at exit, from ") != std::string::npos);
  CHECK(run.result.err.find("; trace in " + dir.path()) != std::string::npos);
  CHECK(run.result.err.find("; no leak report: cannot load ") != std::string::npos);
  CHECK(run.result.err.find("libmemtide_leak_text.so") != std::string::npos);
  CHECK(std::count(run.result.err.begin(), run.result.err.end(), '\n') == 1);
  // The trace itself is whole: the text is only a view of it.
  const std::vector<std::string> files = TraceFiles(dir);
  REQUIRE(files.size() == 1);
  CHECK(LeakOfSize(Rendered(files[0]), 21001).bytes == 21001);
}

}  // namespace
}  // namespace memtide::e2e
