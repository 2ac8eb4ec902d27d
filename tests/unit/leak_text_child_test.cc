// Unit tests for tracer/leak_text_child.cc (and the throwaway child under it): what the child's leak text
// module prints comes back to this process in order; a module that crashes, or cannot be loaded, costs a
// reason and never this process; a child stuck on a lock is killed once it has used no CPU time for the stall
// limit, and the caller is told to do the work itself; no SIGCHLD reaches the program.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "leak_text_child.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "throwaway_child.h"

namespace memtide::internal {
namespace {

std::vector<std::string> g_printed;  // what the parent's callbacks received, "log: " or "text: " first
void ParentLogLine(const char* line) { g_printed.push_back(std::string("log: ") + line); }
void ParentWriteText(const char* text, size_t length) { g_printed.push_back("text: " + std::string(text, length)); }

std::atomic<int> g_sigchld{0};
void CountSigchld(int) { g_sigchld.fetch_add(1); }

// Leak text modules, as the child loads them.
void Prints(const char* trace, size_t length, const char* trace_path, const char*, int32_t top,
            void (*log_line)(const char*), void (*write_text)(const char*, size_t)) {
  const std::string text = "Leak from " + std::string(trace, length) + " top " + std::to_string(top) + "\n";
  if (write_text != nullptr) write_text(text.data(), text.size());
  log_line((std::string("the whole trace is in ") + trace_path).c_str());
}
void Crashes(const char*, size_t, const char*, const char*, int32_t, void (*)(const char*),
             void (*)(const char*, size_t)) {
  raise(SIGSEGV);
}
void Waits(const char*, size_t, const char*, const char*, int32_t, void (*)(const char*),
           void (*)(const char*, size_t)) {
  for (;;) pause();  // as a child waiting for a lock no thread will release
}
MemtideLeakTextFunction LoadPrints(std::string*) { return Prints; }
MemtideLeakTextFunction LoadCrashes(std::string*) { return Crashes; }
MemtideLeakTextFunction LoadWaits(std::string*) { return Waits; }
MemtideLeakTextFunction LoadNothing(std::string* reason) {
  *reason = "cannot load libmemtide_leak_text.so";
  return nullptr;
}

LeakTextCall Call(MemtideLeakTextFunction (*load)(std::string*)) {
  static const std::string trace = "{the trace}";
  LeakTextCall call;
  call.load = load;
  call.trace = &trace;
  call.trace_path = "/tmp/trace.json";
  call.top_stacks = 5;
  call.log_line = ParentLogLine;
  call.write_text = ParentWriteText;
  return call;
}

struct SigchldCounter {
  SigchldCounter() {
    struct sigaction action {};
    action.sa_handler = CountSigchld;
    sigaction(SIGCHLD, &action, &previous);
  }
  ~SigchldCounter() { sigaction(SIGCHLD, &previous, nullptr); }
  struct sigaction previous {};
};

TEST_CASE("what the child's module prints is printed here, in order, and no SIGCHLD reaches the program") {
  SigchldCounter counter;
  g_printed.clear();
  std::string why;
  CHECK(PrintLeakTextFromChild(Call(LoadPrints), 2000, &why) == LeakTextOutcome::kPrinted);
  CHECK(why.empty());
  REQUIRE(g_printed.size() == 2);
  CHECK(g_printed[0] == "text: Leak from {the trace} top 5\n");
  CHECK(g_printed[1] == "log: the whole trace is in /tmp/trace.json");
  CHECK(g_sigchld.load() == 0);
  // Without a text writer the module is offered none either (it then prints its one-line summary).
  g_printed.clear();
  LeakTextCall no_text = Call(LoadPrints);
  no_text.write_text = nullptr;
  CHECK(PrintLeakTextFromChild(no_text, 2000, &why) == LeakTextOutcome::kPrinted);
  REQUIRE(g_printed.size() == 1);
  CHECK(g_printed[0] == "log: the whole trace is in /tmp/trace.json");
}

TEST_CASE("a module that crashes ends the child, not this process, and says so") {
  g_printed.clear();
  std::string why;
  CHECK(PrintLeakTextFromChild(Call(LoadCrashes), 2000, &why) == LeakTextOutcome::kFailed);
  CHECK(why == "the child that symbolizes it was ended by signal 11");
  CHECK(g_printed.empty());
}

TEST_CASE("a module that cannot be loaded gives its reason") {
  g_printed.clear();
  std::string why;
  CHECK(PrintLeakTextFromChild(Call(LoadNothing), 2000, &why) == LeakTextOutcome::kFailed);
  CHECK(why == "cannot load libmemtide_leak_text.so");
  CHECK(g_printed.empty());
}

TEST_CASE("a child that uses no CPU time for the stall limit is killed, and the caller does the work") {
  g_printed.clear();
  std::string why;
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  CHECK(PrintLeakTextFromChild(Call(LoadWaits), 300, &why) == LeakTextOutcome::kNotTried);
  timespec end{};
  clock_gettime(CLOCK_MONOTONIC, &end);
  const double seconds = static_cast<double>(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
  CHECK(why == "it used no CPU time for 300 ms (waiting for a lock another thread held)");
  CHECK(seconds >= 0.3);
  CHECK(seconds < 5);  // the limit counts from the last CPU tick, not from some later point
  CHECK(g_printed.empty());
}

TEST_CASE("a child that keeps computing is waited for past the stall limit") {
  const pid_t child = StartThrowawayChild();
  if (child == 0) {
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {  // busy for 0.8 s, four stall limits
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= 800) break;
    }
    ExitThrowawayChild(0);
  }
  REQUIRE(child > 0);
  bool stalled = true;
  int exit_status = -1;
  CHECK(WaitForComputingChild(child, nullptr, 200, &stalled, &exit_status).empty());
  CHECK_FALSE(stalled);
  CHECK(exit_status == 0);
}

}  // namespace
}  // namespace memtide::internal
