// Which traced blocks the C runtime's own exit-time cleanup would free: glibc's __libc_freeres and libstdc++'s
// __gnu_cxx::__freeres, which valgrind runs at exit and counts as freed (locale data, NSS modules, getpwuid's
// buffer, setenv's strings, stdio buffers, the C++ emergency exception pool). The program must never run them
// itself (a thread still running, or a destructor after the leak check, would use what they free), so the
// probe runs them in a throwaway child: a copy of the process made with clone(2), which has every descriptor
// closed (so flushing stdio writes nothing twice), frees through the preload's hooks with the guard lifted,
// reads the sites' live figures again and hands each site's decrease back through a shared mapping.
//
// The child is a throwaway one (throwaway_child.h). Only the calling thread exists in it: a lock another thread
// held at the clone stays held there, so the parent waits at most `timeout_ms`, then kills the child and gives
// up (the caller falls back on telling runtime blocks apart by their stacks, leak_suppressions.h).
#ifndef MEMTIDE_TRACER_EXIT_CLEANUP_PROBE_H_
#define MEMTIDE_TRACER_EXIT_CLEANUP_PROBE_H_

#include <functional>
#include <string>
#include <vector>

#include "site_stats.h"

namespace memtide::internal {

struct ExitCleanupProbeHooks {
  // Around the clone, in the parent: take the locks the child's frees and reads will need (the child gets
  // them held and calls after_clone_child), then release them.
  std::function<void()> before_clone;
  std::function<void()> after_clone_parent;
  std::function<void()> after_clone_child;  // in the child: make those locks free again
  // The preload's config.run_traced (tracer_module.h): runs the cleanup with the guard lifted.
  void (*run_traced)(void (*function)(void)) = nullptr;
  // In the child, after the cleanup: every site's live figures now.
  std::function<std::vector<SiteCounters>()> sites_now;
};

// Sets freed_at_exit_bytes and freed_at_exit_blocks of each site of `sites` (sorted by site; their live
// figures are the ones before the cleanup) and returns true; or returns false with a one-line reason in *why
// and leaves `sites` alone.
bool ProbeExitCleanup(const ExitCleanupProbeHooks& hooks, int timeout_ms, std::vector<SiteCounters>* sites,
                      std::string* why);

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_EXIT_CLEANUP_PROBE_H_
