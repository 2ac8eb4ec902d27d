// See exit_cleanup_probe.h.
#include "exit_cleanup_probe.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "throwaway_child.h"

namespace memtide::internal {
namespace {

using CleanupFunction = void (*)();

// Looked up in the parent: dlsym takes the loader's lock, which another thread may hold at the clone.
CleanupFunction g_libc_freeres = nullptr;
CleanupFunction g_cxx_freeres = nullptr;

void RunCRuntimeCleanup() {
  if (g_libc_freeres != nullptr) g_libc_freeres();
  if (g_cxx_freeres != nullptr) g_cxx_freeres();
}

// The shared mapping: a header, then one Decrease per site whose live figures went down.
struct Decrease {
  uint32_t site;
  double bytes;
  double blocks;
};
struct ResultHeader {
  std::atomic<uint32_t> state;  // kRunning until the child has written every Decrease
  uint32_t count;
};
constexpr uint32_t kRunning = 0;
constexpr uint32_t kReady = 1;

size_t MappingBytes(size_t capacity) { return sizeof(ResultHeader) + capacity * sizeof(Decrease); }
Decrease* Decreases(void* mapping) {
  return reinterpret_cast<Decrease*>(static_cast<char*>(mapping) + sizeof(ResultHeader));
}

// Flushing stdio must write nothing: the program flushes the same buffers itself after the leak check.
void CloseEveryDescriptor() {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 0u, ~0u, 0u) == 0) return;
#endif
  rlimit limit{};
  rlim_t end = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    end = std::min<rlim_t>(limit.rlim_cur, 1 << 20);
  }
  for (rlim_t fd = 0; fd < end; ++fd) close(static_cast<int>(fd));
}

[[noreturn]] void RunChild(const ExitCleanupProbeHooks& hooks, const std::vector<SiteCounters>& before,
                           void* mapping, size_t capacity) {
  hooks.after_clone_child();
  CloseEveryDescriptor();
  try {
    hooks.run_traced(RunCRuntimeCleanup);
    std::vector<SiteCounters> after = hooks.sites_now();
    std::sort(after.begin(), after.end(), [](const SiteCounters& a, const SiteCounters& b) { return a.site < b.site; });
    Decrease* out = Decreases(mapping);
    uint32_t count = 0;
    auto next = after.begin();
    for (const SiteCounters& site : before) {
      if (site.live_blocks <= 0 && site.live_bytes <= 0) continue;
      while (next != after.end() && next->site < site.site) ++next;
      const bool found = next != after.end() && next->site == site.site;
      const double bytes = site.live_bytes - (found ? next->live_bytes : 0);
      const double blocks = site.live_blocks - (found ? next->live_blocks : 0);
      if (bytes <= 0 && blocks <= 0) continue;
      if (count == capacity) ExitThrowawayChild(2);  // cannot happen: one entry per site that had live blocks
      out[count++] = Decrease{site.site, std::max(bytes, 0.0), std::max(blocks, 0.0)};
    }
    auto* header = static_cast<ResultHeader*>(mapping);
    header->count = count;
    header->state.store(kReady, std::memory_order_release);
    ExitThrowawayChild(0);
  } catch (...) {
    ExitThrowawayChild(1);
  }
}

// Waits until the child has written its result, or has ended, or the deadline passed (then kills it). Returns
// a reason when it ended without a result. A child with its result written is not waited for further: taking
// down its copy of the address space costs about as much as making it (tens of ms per GiB of heap), and it
// does that while the program goes on ending; it is reaped here if already gone, else by whoever inherits it
// when this process ends (the kernel gives it SIGCHLD then), so nothing waits on it.
std::string WaitForChild(pid_t child, const ResultHeader* header, int timeout_ms) {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  for (;;) {
    int status = 0;
    if (header->state.load(std::memory_order_acquire) == kReady) {
      waitpid(child, &status, WNOHANG | __WALL);
      return "";
    }
    const pid_t reaped = waitpid(child, &status, WNOHANG | __WALL);
    if (reaped == child) {
      if (WIFSIGNALED(status)) return "it was ended by signal " + std::to_string(WTERMSIG(status));
      return "";
    }
    if (reaped < 0 && errno != EINTR) return "";  // reaped by someone else: its result says whether it finished
    if (MonotonicMs() >= deadline) {
      kill(child, SIGKILL);
      while (waitpid(child, &status, __WALL) < 0 && errno == EINTR) {
      }
      return "it did not finish within " + std::to_string(timeout_ms) + " ms (a lock held by another thread)";
    }
    const timespec pause{0, 200000};
    nanosleep(&pause, nullptr);
  }
}

}  // namespace

bool ProbeExitCleanup(const ExitCleanupProbeHooks& hooks, int timeout_ms, std::vector<SiteCounters>* sites,
                      std::string* why) {
  g_libc_freeres = reinterpret_cast<CleanupFunction>(dlsym(RTLD_DEFAULT, "__libc_freeres"));
  g_cxx_freeres = reinterpret_cast<CleanupFunction>(dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv"));
  if (g_libc_freeres == nullptr && g_cxx_freeres == nullptr) {
    *why = "this C library has no __libc_freeres";
    return false;
  }
  size_t capacity = 0;
  for (const SiteCounters& site : *sites) capacity += site.live_blocks > 0 || site.live_bytes > 0 ? 1 : 0;
  if (capacity == 0) return true;
  if (!ThrowawayChildAllowed()) {
    *why = "a seccomp filter does not let this process start a child process";
    return false;
  }
  void* mapping = mmap(nullptr, MappingBytes(capacity), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    *why = std::string("cannot map its result: ") + strerror(errno);
    return false;
  }
  hooks.before_clone();
  const pid_t child = StartThrowawayChild();
  if (child == 0) RunChild(hooks, *sites, mapping, capacity);
  const int clone_error = errno;
  hooks.after_clone_parent();
  if (child < 0) {
    munmap(mapping, MappingBytes(capacity));
    *why = std::string("cannot start a child: ") + strerror(clone_error);
    return false;
  }
  const auto* header = static_cast<const ResultHeader*>(mapping);
  const std::string ended = WaitForChild(static_cast<pid_t>(child), header, timeout_ms);
  const bool ready = header->state.load(std::memory_order_acquire) == kReady;
  if (ready) {
    const Decrease* decreases = Decreases(mapping);
    for (uint32_t i = 0; i < header->count && i < capacity; ++i) {
      auto found = std::lower_bound(sites->begin(), sites->end(), decreases[i].site,
                                    [](const SiteCounters& site, uint32_t id) { return site.site < id; });
      if (found == sites->end() || found->site != decreases[i].site) continue;
      found->freed_at_exit_bytes = std::min(decreases[i].bytes, found->live_bytes);
      found->freed_at_exit_blocks = std::min(decreases[i].blocks, found->live_blocks);
    }
  } else {
    *why = ended.empty() ? "it ended without a result" : ended;
  }
  munmap(mapping, MappingBytes(capacity));
  return ready;
}

}  // namespace memtide::internal
