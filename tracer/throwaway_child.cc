// See throwaway_child.h.
#include "throwaway_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child_sharing_memory.h"
#include "proc_file.h"

namespace memtide::internal {
namespace {

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

// The seccomp state of /proc/self/status: whether a filter is in place ("Seccomp: 2"; unreadable counts as
// yes) and how many ("Seccomp_filters", Linux 5.9 and later; -1 when not said). Filters are only ever added.
struct SeccompState {
  bool filtering = true;
  int64_t filters = -1;
};

SeccompState ReadSeccompState() {
  SeccompState state;
  const std::string text = ReadProcFile("/proc/self/status");
  if (text.empty()) return state;
  auto field = [&text](const char* name) -> int64_t {
    const size_t at = text.find(name);
    return at == std::string::npos ? -1 : strtoll(text.c_str() + at + strlen(name), nullptr, 10);
  };
  state.filtering = field("\nSeccomp:") > 0;  // 0: none; absent (-1): a kernel without seccomp
  state.filters = field("\nSeccomp_filters:");
  return state;
}

alignas(64) char g_check_stack[16 * 1024];
SeccompState g_state_at_start;
bool g_checked_at_start = false;
bool g_clone_allowed_at_start = false;

int TryCloneChild(void*) {
  const long grandchild = syscall(SYS_clone, 0ul, nullptr, nullptr, nullptr, nullptr);
  if (grandchild == 0) ExitThrowawayChild(0);
  if (grandchild < 0) return 1;
  int status = 0;
  return waitpid(static_cast<pid_t>(grandchild), &status, __WALL) == grandchild ? 0 : 1;
}

bool TryClone() { return AnsweredInChildSharingMemory(TryCloneChild, g_check_stack, sizeof(g_check_stack)); }

// The child's user + system time in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after the
// command name's closing parenthesis, which may itself contain spaces), or -1.
int64_t ChildCpuTicks(pid_t child) {
  const std::string text = ReadProcFile(("/proc/" + std::to_string(child) + "/stat").c_str());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  const char* at = text.c_str() + close + 1;
  for (int field = 3; field < 14; ++field) {  // skip state (3) .. cmajflt (13)
    at = strchr(at + 1, ' ');
    if (at == nullptr) return -1;
  }
  char* end = nullptr;
  const long long user = strtoll(at, &end, 10);
  const long long system = strtoll(end, nullptr, 10);
  return user + system;
}

// How long a child whose CPU time cannot be read may run.
constexpr int kBlindStallMs = 60000;

}  // namespace

int64_t MonotonicMs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

void PrepareThrowawayChildren() {
  g_state_at_start = ReadSeccompState();
  if (g_state_at_start.filtering && g_state_at_start.filters >= 0) g_clone_allowed_at_start = TryClone();
  g_checked_at_start = true;
}

bool ThrowawayChildAllowed() {
  const SeccompState now = ReadSeccompState();
  if (!now.filtering) return true;
  if (g_checked_at_start && now.filters >= 0 && now.filters == g_state_at_start.filters) {
    return g_clone_allowed_at_start;
  }
  return TryClone();
}

pid_t StartThrowawayChild() {
  // A process of its own (no CLONE_VM) that sends no signal when it ends (exit signal 0).
  const long child = syscall(SYS_clone, 0ul, nullptr, nullptr, nullptr, nullptr);
  if (child == 0) IsolateChild();
  return static_cast<pid_t>(child);
}

void ExitThrowawayChild(int status) {
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

std::string WaitForComputingChild(pid_t child, const std::atomic<uint32_t>* done, int stall_ms, bool* stalled,
                                  int* exit_status) {
  *stalled = false;
  *exit_status = -1;
  int64_t ticks = ChildCpuTicks(child);
  int64_t moved_at = MonotonicMs();
  // Without /proc the child's progress cannot be seen: it gets a minute in all.
  const bool blind = ticks < 0;
  if (blind && stall_ms < kBlindStallMs) stall_ms = kBlindStallMs;
  for (;;) {
    int status = 0;
    if (done != nullptr && done->load(std::memory_order_acquire) != 0) {
      waitpid(child, &status, WNOHANG | __WALL);
      *exit_status = 0;
      return "";
    }
    const pid_t reaped = waitpid(child, &status, WNOHANG | __WALL);
    if (reaped == child) {
      if (WIFSIGNALED(status)) return "it was ended by signal " + std::to_string(WTERMSIG(status));
      *exit_status = WEXITSTATUS(status);
      return *exit_status == 0 ? "" : "it exited with status " + std::to_string(*exit_status);
    }
    if (reaped < 0 && errno != EINTR) return "it was reaped by someone else";
    const int64_t now_ticks = ChildCpuTicks(child);
    const int64_t now = MonotonicMs();
    if (now_ticks != ticks) {
      ticks = now_ticks;
      moved_at = now;
    } else if (now - moved_at >= stall_ms) {
      kill(child, SIGKILL);
      while (waitpid(child, &status, __WALL) < 0 && errno == EINTR) {
      }
      *stalled = true;
      if (blind) return "it did not finish within " + std::to_string(stall_ms) + " ms";
      return "it used no CPU time for " + std::to_string(stall_ms) + " ms (waiting for a lock another thread held)";
    }
    // Woken at once when done is set; the slice bounds how late an exit or a stall is seen.
    const timespec slice{0, 20 * 1000 * 1000};
    if (done != nullptr) {
      syscall(SYS_futex, done, FUTEX_WAIT, 0, &slice, nullptr, 0);
    } else {
      nanosleep(&slice, nullptr);
    }
  }
}

void MarkThrowawayChildDone(std::atomic<uint32_t>* done) {
  done->store(1, std::memory_order_release);
  syscall(SYS_futex, done, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

}  // namespace memtide::internal
