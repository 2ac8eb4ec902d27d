// Unit tests for tracer/exit_cleanup_probe.cc: the per-site decreases come back from the child; a child that
// hangs or crashes costs the caller its deadline and a reason, never more; the child writes nothing to the
// program's descriptors (stdio is flushed there) and raises no SIGCHLD.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "exit_cleanup_probe.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

namespace memtide::internal {
namespace {

SiteCounters Live(uint32_t site, double bytes, double blocks) {
  SiteCounters counters;
  counters.site = site;
  counters.live_bytes = bytes;
  counters.live_blocks = blocks;
  return counters;
}

void RunDirectly(void (*function)(void)) { function(); }

ExitCleanupProbeHooks Hooks(std::function<std::vector<SiteCounters>()> sites_now) {
  ExitCleanupProbeHooks hooks;
  hooks.before_clone = [] {};
  hooks.after_clone_parent = [] {};
  hooks.after_clone_child = [] {};
  hooks.run_traced = RunDirectly;
  hooks.sites_now = std::move(sites_now);
  return hooks;
}

TEST_CASE("each site's decrease in the child comes back; the parent's hooks run once around the clone") {
  std::vector<SiteCounters> sites = {Live(1, 100, 2), Live(2, 50, 1), Live(3, 0, 0), Live(7, 30, 3)};
  int before = 0, after = 0;
  ExitCleanupProbeHooks hooks = Hooks([] {
    // Site 7 is gone altogether; site 2 kept its block.
    return std::vector<SiteCounters>{Live(2, 50, 1), Live(1, 60, 1), Live(3, 0, 0)};
  });
  hooks.before_clone = [&] { ++before; };
  hooks.after_clone_parent = [&] { ++after; };
  std::string why;
  REQUIRE(ProbeExitCleanup(hooks, 5000, &sites, &why));
  CHECK(why.empty());
  CHECK(before == 1);
  CHECK(after == 1);
  CHECK(sites[0].freed_at_exit_bytes == 40);
  CHECK(sites[0].freed_at_exit_blocks == 1);
  CHECK(sites[1].freed_at_exit_bytes == 0);
  CHECK(sites[2].freed_at_exit_bytes == 0);
  CHECK(sites[3].freed_at_exit_bytes == 30);
  CHECK(sites[3].freed_at_exit_blocks == 3);
}

TEST_CASE("a child that never finishes is killed at the deadline") {
  std::vector<SiteCounters> sites = {Live(1, 100, 2)};
  std::string why;
  CHECK_FALSE(ProbeExitCleanup(Hooks([]() -> std::vector<SiteCounters> {
                                 for (;;) pause();
                               }),
                               200, &sites, &why));
  CHECK(why == "it did not finish within 200 ms (a lock held by another thread)");
  CHECK(sites[0].freed_at_exit_bytes == 0);
}

TEST_CASE("a child that crashes says by which signal, and the program's handler does not run in it") {
  static std::atomic<int> handled{0};
  struct sigaction action {}, previous{};
  action.sa_handler = [](int) { handled.fetch_add(1); };
  sigaction(SIGSEGV, &action, &previous);
  std::vector<SiteCounters> sites = {Live(1, 100, 2)};
  std::string why;
  CHECK_FALSE(ProbeExitCleanup(Hooks([]() -> std::vector<SiteCounters> {
                                 raise(SIGSEGV);
                                 return {};
                               }),
                               5000, &sites, &why));
  sigaction(SIGSEGV, &previous, nullptr);
  CHECK(why == "it was ended by signal 11");
  CHECK(handled.load() == 0);
}

TEST_CASE("stdio flushed by the cleanup in the child writes nothing; no SIGCHLD reaches the program") {
  static std::atomic<int> sigchld{0};
  struct sigaction action {}, previous{};
  action.sa_handler = [](int) { sigchld.fetch_add(1); };
  sigaction(SIGCHLD, &action, &previous);
  int pipe_ends[2];
  REQUIRE(pipe(pipe_ends) == 0);
  FILE* out = fdopen(pipe_ends[1], "w");
  REQUIRE(out != nullptr);
  REQUIRE(setvbuf(out, nullptr, _IOFBF, 4096) == 0);
  fputs("written once", out);  // still in the buffer: the child's __libc_freeres flushes every stream
  std::vector<SiteCounters> sites = {Live(1, 100, 2)};
  std::string why;
  CHECK(ProbeExitCleanup(Hooks([] { return std::vector<SiteCounters>{Live(1, 100, 2)}; }), 5000, &sites, &why));
  fclose(out);
  std::string text;
  char buffer[64];
  for (ssize_t got; (got = read(pipe_ends[0], buffer, sizeof(buffer))) > 0;) text.append(buffer, got);
  close(pipe_ends[0]);
  sigaction(SIGCHLD, &previous, nullptr);
  CHECK(text == "written once");
  CHECK(sigchld.load() == 0);
  CHECK(sites[0].freed_at_exit_bytes == 0);
}

}  // namespace
}  // namespace memtide::internal
