// End-to-end tests of the core: tiny programs with sentinel sizes (tests/e2e/programs/) run under
// LD_PRELOAD=libmemtide.so or `memtide run`, one test per lifecycle or API edge case. The programs check
// their own numbers in process through the C API and print the ones the driver compares with the report
// or with `memtide show`. Each test uses its own MEMTIDE_DIR, so ctest may run them in parallel.
//
// Paths come from CMake (tests/e2e/CMakeLists.txt): MEMTIDE_E2E_PRELOAD, MEMTIDE_E2E_CLI and one
// MEMTIDE_E2E_<PROGRAM> per program.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
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

// CI runs this whole suite once more per allocator, stacked under memtide: MEMTIDE_E2E_ALLOCATOR names it
// (mimalloc, jemalloc, tcmalloc) and MEMTIDE_E2E_ALLOCATOR_LIBRARY is its shared library.
std::string AllocatorName() {
  const char* name = getenv("MEMTIDE_E2E_ALLOCATOR");
  return name != nullptr ? name : "";
}

std::string PreloadList() {
  const char* library = getenv("MEMTIDE_E2E_ALLOCATOR_LIBRARY");
  std::string list = MEMTIDE_E2E_PRELOAD;
  if (library != nullptr && library[0] != '\0') list += std::string(" ") + library;
  return list;
}

// The program under plain LD_PRELOAD, with segments in `dir`.
Run RunPreloaded(const TempDir& dir, std::vector<std::string> argv,
                 std::map<std::string, std::string> env = {}) {
  env.emplace("LD_PRELOAD", PreloadList());
  if (!AllocatorName().empty()) env.emplace("E2E_ALLOCATOR", AllocatorName());  // for the programs' own checks
  env.emplace("MEMTIDE_DIR", dir.path());
  return Execute({std::move(argv), std::move(env)});
}

// `memtide run --report <dir>/report.json --dir <dir> -- argv...`.
Run RunUnderMemtide(const TempDir& dir, const std::vector<std::string>& argv) {
  std::vector<std::string> command = {MEMTIDE_E2E_CLI, "run", "--report", dir.File("report.json"), "--dir", dir.path()};
  if (!AllocatorName().empty()) {
    command.push_back("--allocator");
    command.push_back(AllocatorName());
  }
  command.push_back("--");
  command.insert(command.end(), argv.begin(), argv.end());
  return Execute({std::move(command), {{"MEMTIDE_DIR", dir.path()}}});
}

// `memtide show PID --json --dir <dir>`, parsed; a failed run or bad JSON fails the test.
json ShowJson(const TempDir& dir, uint64_t pid) {
  Run show = Execute({{MEMTIDE_E2E_CLI, "show", std::to_string(pid), "--json", "--dir", dir.path()}, {}});
  INFO(show.Describe());
  REQUIRE(show.result.exit_code == 0);
  json parsed = json::parse(show.result.out, nullptr, /*allow_exceptions=*/false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), "memtide show printed invalid JSON");
  return parsed;
}

json ReadJson(const std::string& path) {
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "cannot read " << path);
  json parsed = json::parse(file, nullptr, /*allow_exceptions=*/false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), path << " is not valid JSON");
  return parsed;
}

// The number after "key=" in a program's output ("current=123 leaked=45").
uint64_t Field(const std::string& text, const std::string& key) {
  std::string needle = key + "=";
  size_t at = 0;
  while ((at = text.find(needle, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == ' ' || text[at - 1] == '\n') break;
    at += needle.size();
  }
  REQUIRE_MESSAGE(at != std::string::npos, "no '" << needle << "' in output: " << text);
  return std::stoull(text.substr(at + needle.size()));
}

uint64_t U64(const json& value) {
  REQUIRE_MESSAGE(value.is_number_unsigned(), "not an unsigned number: " << value.dump());
  return value.get<uint64_t>();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> MarkLabels(const json& document) {
  std::vector<std::string> labels;
  REQUIRE(document.contains("marks"));
  for (const json& mark : document["marks"]) labels.push_back(mark.value("label", ""));
  return labels;
}

bool Contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// The program ran to a clean exit and printed `expected` somewhere on stdout.
void CheckSucceeded(const Run& run, const std::string& expected) {
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out.find(expected) != std::string::npos);
}

// ---- How a process ends: the report holds exactly the state the program printed last. ----

void CheckEnding(const char* how, int exit_code, int signal, const char* status) {
  TempDir dir;
  Run run = RunUnderMemtide(dir, {MEMTIDE_E2E_LIFECYCLE_END, how});
  INFO(run.Describe());
  REQUIRE(!run.result.timed_out);
  CHECK(run.result.exit_code == exit_code);
  uint64_t printed = Field(run.result.out, "current");
  uint64_t pid = Field(run.result.out, "pid");

  json report = ReadJson(dir.File("report.json"));
  INFO("report: " << report.dump());
  CHECK(report["memtide_report_version"] == 2);
  CHECK(report["status"] == status);
  CHECK(U64(report["pid"]) == pid);
  if (signal == 0) {
    CHECK(report["exit_code"] == exit_code);
    CHECK(report["signal"].is_null());
  } else {
    CHECK(report["signal"] == signal);
  }
  CHECK(U64(report["heap"]["current_bytes"]) == printed);
  CHECK(U64(report["marks_total"]) >= 1);
  bool found = false;
  for (const json& mark : report["marks"]) {
    if (mark.value("label", "") != "before_end") continue;
    found = true;
    CHECK(U64(mark["current_bytes"]) == printed);
  }
  CHECK_MESSAGE(found, "no mark labelled before_end in the report");
}

TEST_CASE("end.return_from_main") { CheckEnding("return", 0, 0, "exited"); }
TEST_CASE("end.exit") { CheckEnding("exit", 42, 0, "exited"); }
TEST_CASE("end._exit") { CheckEnding("_exit", 43, 0, "exited"); }
TEST_CASE("end.abort") { CheckEnding("abort", 128 + SIGABRT, SIGABRT, "killed"); }
TEST_CASE("end.sigkill") { CheckEnding("sigkill", 128 + SIGKILL, SIGKILL, "killed"); }

// ---- Processes: fork, exec, posix_spawn, vfork. ----

TEST_CASE("fork.child_has_own_segment") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_FORK_CHILD}, {{"MEMTIDE_KEEP_SEGMENT", "1"}});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  uint64_t parent_pid = Field(run.result.out, "parent_pid");
  uint64_t child_pid = Field(run.result.out, "child_pid");
  REQUIRE(parent_pid != child_pid);

  json parent = ShowJson(dir, parent_pid);
  json child = ShowJson(dir, child_pid);
  INFO("parent: " << parent.dump());
  INFO("child: " << child.dump());
  CHECK(U64(parent["pid"]) == parent_pid);
  CHECK(U64(child["pid"]) == child_pid);
  CHECK(parent["segment"] != child["segment"]);
  CHECK(parent["state"] == "exited");
  CHECK(child["state"] == "exited");
  // A process that ends through exit() or main's return cannot see its own status (only _exit's is
  // known to the preload), so the segment may hold null here.
  CHECK((parent["exit_code"].is_null() || parent["exit_code"] == 0));
  CHECK((child["exit_code"].is_null() || child["exit_code"] == 0));
  CHECK(U64(parent["heap"]["current_bytes"]) == Field(run.result.out, "parent_current"));
  CHECK(U64(child["heap"]["current_bytes"]) == Field(run.result.out, "child_current"));
  // The child's mark went to the child's segment only (a child writing into the inherited shared
  // mapping would put it in the parent's).
  std::vector<std::string> parent_marks = MarkLabels(parent);
  std::vector<std::string> child_marks = MarkLabels(child);
  CHECK(Contains(parent_marks, "parent_before_fork"));
  CHECK(Contains(parent_marks, "parent_after_child"));
  CHECK(!Contains(parent_marks, "in_child"));
  CHECK(Contains(child_marks, "in_child"));
  CHECK(!Contains(child_marks, "parent_after_child"));
}

TEST_CASE("exec.children_of_a_shell_inherit") {
  TempDir dir;
  std::string program = std::string("'") + MEMTIDE_E2E_EXACT_BASIC + "'";
  Run run = RunUnderMemtide(dir, {"/bin/sh", "-c", program + " && " + program + " linger && echo sh_done"});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(Lines(run.result.out) == std::vector<std::string>{"exact_basic ok", "exact_basic ok", "sh_done"});
  json report = ReadJson(dir.File("report.json"));
  INFO("report: " << report.dump());
  CHECK(report["status"] == "exited");
  CHECK(report["exit_code"] == 0);
}

TEST_CASE("exec.exit_code_passes_through_a_shell") {
  TempDir dir;
  Run run = RunUnderMemtide(dir, {"/bin/sh", "-c", std::string("'") + MEMTIDE_E2E_EXACT_BASIC + "'; exit 7"});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 7);
  CHECK(run.result.out == "exact_basic ok\n");
  CHECK(ReadJson(dir.File("report.json"))["exit_code"] == 7);
}

TEST_CASE("spawn.posix_spawn_child_inherits") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_SPAWN_SELF, "posix_spawn"});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out == "child ok\nparent ok\n");
}

TEST_CASE("spawn.vfork_child_inherits") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_SPAWN_SELF, "vfork"});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out == "child ok\nparent ok\n");
}

// ---- Threads, loading, start-up. ----

TEST_CASE("threads.cross_thread_free_16") {
  TempDir dir;
  Run run = RunUnderMemtide(dir, {MEMTIDE_E2E_THREADS_CROSS_FREE});
  INFO(run.Describe());
  REQUIRE(run.result.exit_code == 0);
  // The program checked current (exact) and peak (within the bound) itself; the final state in the
  // report must be what it printed after join.
  json report = ReadJson(dir.File("report.json"));
  INFO("report: " << report.dump());
  CHECK(U64(report["heap"]["current_bytes"]) == Field(run.result.out, "current"));
  CHECK(U64(report["heap"]["peak_bytes"]) >= Field(run.result.out, "peak"));
}

TEST_CASE("dlopen.constructor_allocates") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_DLOPEN_CTOR, MEMTIDE_E2E_CTOR_ALLOC_LIB}), "ok");
}

TEST_CASE("startup.dlopen_deepbind_is_named_in_one_line_and_stripped_on_request") {
  {
    TempDir dir;
    Run run = RunPreloaded(dir, {MEMTIDE_E2E_DEEPBIND, "kept"});
    CheckSucceeded(run, "deepbind ok");
    CHECK(run.result.err.find("RTLD_DEEPBIND): the library's own malloc and free bypass memtide") !=
          std::string::npos);
    CHECK(std::count(run.result.err.begin(), run.result.err.end(), '\n') == 1);
  }
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_DEEPBIND, "stripped"}, {{"MEMTIDE_STRIP_DEEPBIND", "1"}});
  CheckSucceeded(run, "deepbind ok");
  CHECK(run.result.err.find("RTLD_DEEPBIND cleared (MEMTIDE_STRIP_DEEPBIND=1)") != std::string::npos);
}

TEST_CASE("startup.allocations_before_main") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_CTOR_BEFORE_MAIN}), "ok");
}

TEST_CASE("startup.an_executable_with_its_own_malloc_runs_and_is_named") {
  // Counting only, and with every allocation offered to the tracer (which then allocates through it too).
  for (const char* trace : {"off", "full"}) {
    TempDir dir;
    Run run = RunPreloaded(dir, {MEMTIDE_E2E_OWN_ALLOCATOR}, {{"MEMTIDE_TRACE", trace}, {"MEMTIDE_LEAK_TOP", "0"}});
    INFO("MEMTIDE_TRACE=" << trace);
    REQUIRE(!run.result.timed_out);
    CheckSucceeded(run, "ok blocks=");
    CHECK(run.result.err.find("memtide: malloc here is the executable's, not libmemtide.so's") != std::string::npos);
  }
  // memtide run: the report says the heap was not seen, its allocator's arena counts as mmap memory (mapped
  // before memtide's constructor), and a heap budget fails as unverifiable instead of passing on zero.
  TempDir dir;
  Run run = Execute({{MEMTIDE_E2E_CLI, "run", "--report", dir.File("report.json"), "--dir", dir.path(), "--leaks",
                      "--max-peak", "1G", "--", MEMTIDE_E2E_OWN_ALLOCATOR},
                     {{"MEMTIDE_DIR", dir.path()}}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 3);
  CHECK(run.result.err.find("  heap    not seen: the program's malloc is not memtide's") != std::string::npos);
  CHECK(run.result.err.find("memtide: no leak check: the program's malloc is not memtide's") != std::string::npos);
  CHECK(run.result.err.find("memtide: --max-peak cannot be checked: the program's malloc is not memtide's") !=
        std::string::npos);
  json report = ReadJson(dir.File("report.json"));
  CHECK(report["disabled_features"] == json::array({"heap_hooks"}));
  CHECK(U64(report["mmap"]["current_bytes"]) == 64u << 20);
}

TEST_CASE("startup.an_executable_that_takes_mallocs_address_is_counted_and_not_named") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_MALLOC_ADDRESS});
  CheckSucceeded(run, "malloc_address ok");
  CHECK(run.result.err.find("malloc here is") == std::string::npos);
}

// ---- The allocation API family. ----

TEST_CASE("alloc.calloc_overflow_fails_uncounted") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_ALLOC_FAILURES, "calloc"}), "ok");
}

TEST_CASE("alloc.malloc_huge_fails_uncounted") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_ALLOC_FAILURES, "malloc"}), "ok");
}

TEST_CASE("alloc.realloc_memalign_huge_fail_uncounted") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_ALLOC_FAILURES, "other"}), "ok");
}

TEST_CASE("alloc.realloc_grow_shrink_null_zero") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_REALLOC_FAMILY}), "ok");
}

TEST_CASE("alloc.aligned_family") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_ALIGN_FAMILY}), "ok");
}

TEST_CASE("alloc.errno_preserved") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_ERRNO_PRESERVED}, {{"MEMTIDE_INTERVAL", "10ms"}}), "ok");
}

TEST_CASE("fds.memtide_descriptors_stay_out_of_the_programs_table") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_FDS_UNTOUCHED}, {{"MEMTIDE_INTERVAL", "1ms"}}), "ok");
}

// MEMTIDE_LOG: memtide's lines go to the file, and the file is never one of the program's descriptors, not
// even after a daemon-style close of everything above 2 followed by an open of its own (which would then get
// the number a kept-open log descriptor had had, and memtide's next line).
TEST_CASE("fds.log_file_is_never_a_descriptor_of_the_programs") {
  TempDir dir;
  const std::string log = dir.File("memtide.log");
  const std::string data = dir.File("data.txt");
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_LOG_FILE, log, data},
                         {{"MEMTIDE_LOG", log}, {"MEMTIDE_VERBOSE", "1"}, {"MEMTIDE_INTERVAL", "1ms"}});
  CheckSucceeded(run, "ok fd=3");
  std::stringstream data_text, log_text;
  data_text << std::ifstream(data).rdbuf();
  log_text << std::ifstream(log).rdbuf();
  INFO("log file:\n" << log_text.str());
  CHECK(data_text.str() == "program data\n");
  CHECK(log_text.str().find("memtide: segment ") != std::string::npos);  // logged once the data file was open
  CHECK(run.result.err.find("memtide:") == std::string::npos);
}

TEST_CASE("alloc.cxx_new_delete") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_CXX_NEW_DELETE}), "ok");
}

TEST_CASE("alloc.libc_strdup_getline_asprintf") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_LIBC_ALLOCATORS}), "ok");
}

TEST_CASE("mmap.anonymous_counted_file_not") {
  TempDir dir;
  CheckSucceeded(RunPreloaded(dir, {MEMTIDE_E2E_MMAP_COUNTING}), "ok");
}

TEST_CASE("mmap.mprotect_from_a_signal_handler") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_MPROTECT_IN_SIGNAL});
  INFO(run.Describe());
  REQUIRE(!run.result.timed_out);
  CheckSucceeded(run, "ok signals=");
}

// ---- Configuration problems: one line, and the program runs on with exact counts. ----

TEST_CASE("config.dir_not_writable") {
  TempDir dir;
  std::string regular_file = dir.File("not_a_directory");
  std::ofstream(regular_file) << "x";
  std::string segment_dir = regular_file + "/segments";
  Run run = RunPreloaded(
      dir, {MEMTIDE_E2E_EXACT_BASIC, "linger"},
      {{"MEMTIDE_DIR", segment_dir}, {"MEMTIDE_INTERVAL", "10ms"}, {"MEMTIDE_KEEP_SEGMENT", "1"}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out == "exact_basic ok\n");
  std::vector<std::string> lines = Lines(run.result.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("memtide:", 0) == 0);
  CHECK(lines[0].find(segment_dir) != std::string::npos);
}

TEST_CASE("config.bad_option_value") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_EXACT_BASIC, "linger"}, {{"MEMTIDE_INTERVAL", "banana"}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out == "exact_basic ok\n");
  std::vector<std::string> lines = Lines(run.result.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("memtide: ", 0) == 0);
  CHECK(lines[0].find("MEMTIDE_INTERVAL") != std::string::npos);
  CHECK(lines[0].find("banana") != std::string::npos);
}

// Regression: `setpriv --reuid …` under the preload aborted in glibc's setxid broadcast (the monitor thread
// had not kept its capabilities). memtide's thread now steps aside for credential changes and comes back.
TEST_CASE("credentials.drop_privileges_like_setpriv") {
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);  // the new user creates the segment
  Run run = RunPreloaded(dir, {MEMTIDE_E2E_DROP_PRIVILEGES});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  if (run.result.out.rfind("drop_privileges skipped", 0) == 0) {
    MESSAGE(run.result.out);
    return;
  }
  CHECK(run.result.out == "drop_privileges ok\n");
  CHECK(run.result.err.empty());
}

TEST_CASE("api.without_preload_symbols_are_null") {
  Run run = Execute({{MEMTIDE_E2E_API_WITHOUT_PRELOAD}, {}});
  INFO(run.Describe());
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out == "unbound\n");
  CHECK(run.result.err.empty());
}

}  // namespace
}  // namespace memtide::e2e
