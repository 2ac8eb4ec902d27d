// See exit_cleanup_probe.h.
#include "exit_cleanup_probe.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "child_sharing_memory.h"

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

[[noreturn]] void ExitChild(int status) {
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
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

// The child is a copy of the program: none of the program's signal handlers may run in it, a crash leaves no
// core file, and the kernel's OOM killer takes it before the program.
void IsolateChild() {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    if (signal_number != SIGKILL && signal_number != SIGSTOP) sigaction(signal_number, &default_action, nullptr);
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  const int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    const ssize_t written = write(fd, "1000", 4);
    (void)written;
    close(fd);
  }
}

[[noreturn]] void RunChild(const ExitCleanupProbeHooks& hooks, const std::vector<SiteCounters>& before,
                           void* mapping, size_t capacity) {
  hooks.after_clone_child();
  CloseEveryDescriptor();
  IsolateChild();
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
      if (count == capacity) ExitChild(2);  // cannot happen: one entry per site that had live blocks
      out[count++] = Decrease{site.site, std::max(bytes, 0.0), std::max(blocks, 0.0)};
    }
    auto* header = static_cast<ResultHeader*>(mapping);
    header->count = count;
    header->state.store(kReady, std::memory_order_release);
    ExitChild(0);
  } catch (...) {
    ExitChild(1);
  }
}

// The seccomp state of /proc/self/status: whether a filter is in place ("Seccomp: 2"; unreadable counts as
// yes) and how many ("Seccomp_filters", Linux 5.9 and later; -1 when not said). Filters are only ever added.
struct SeccompState {
  bool filtering = true;
  int64_t filters = -1;
};

SeccompState ReadSeccompState() {
  SeccompState state;
  const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return state;
  std::string text;
  char buffer[4096];
  for (ssize_t got; (got = read(fd, buffer, sizeof(buffer))) > 0;) text.append(buffer, static_cast<size_t>(got));
  close(fd);
  auto field = [&text](const char* name) -> int64_t {
    const size_t at = text.find(name);
    return at == std::string::npos ? -1 : strtoll(text.c_str() + at + strlen(name), nullptr, 10);
  };
  state.filtering = field("\nSeccomp:") > 0;  // 0: none; absent (-1): a kernel without seccomp
  state.filters = field("\nSeccomp_filters:");
  return state;
}

// A filter may kill the whole process for a clone that starts no thread (a sandbox that allows threads only):
// under one, that clone is tried first from a child sharing this memory (child_sharing_memory.h), which alone
// dies if so. The try copies the process as the probe does, so it is made at start, while the process is
// small, and made again at exit only if filters were added since.
alignas(64) char g_check_stack[16 * 1024];
SeccompState g_state_at_start;
bool g_checked_at_start = false;
bool g_clone_allowed_at_start = false;

int TryCloneChild(void*) {
  const long grandchild = syscall(SYS_clone, 0ul, nullptr, nullptr, nullptr, nullptr);
  if (grandchild == 0) ExitChild(0);
  if (grandchild < 0) return 1;
  int status = 0;
  return waitpid(static_cast<pid_t>(grandchild), &status, __WALL) == grandchild ? 0 : 1;
}

bool TryClone() { return AnsweredInChildSharingMemory(TryCloneChild, g_check_stack, sizeof(g_check_stack)); }

bool ProcessCloneAllowed() {
  const SeccompState now = ReadSeccompState();
  if (!now.filtering) return true;
  if (g_checked_at_start && now.filters >= 0 && now.filters == g_state_at_start.filters) {
    return g_clone_allowed_at_start;
  }
  return TryClone();
}

int64_t MonotonicMs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
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

void PrepareExitCleanupProbe() {
  g_state_at_start = ReadSeccompState();
  if (g_state_at_start.filtering && g_state_at_start.filters >= 0) g_clone_allowed_at_start = TryClone();
  g_checked_at_start = true;
}

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
  if (!ProcessCloneAllowed()) {
    *why = "a seccomp filter does not let this process start a child process";
    return false;
  }
  void* mapping = mmap(nullptr, MappingBytes(capacity), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    *why = std::string("cannot map its result: ") + strerror(errno);
    return false;
  }
  hooks.before_clone();
  // A process of its own (no CLONE_VM) that sends no signal when it ends (exit signal 0).
  const long child = syscall(SYS_clone, 0ul, nullptr, nullptr, nullptr, nullptr);
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
