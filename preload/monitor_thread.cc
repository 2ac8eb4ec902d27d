// See monitor_thread.h. Runs on its own thread, under the guard for its whole life.
//
// One tick: sample /proc and the cgroup, create the segment when due, answer a control request, update the
// alert level and let the trim policy act, publish. Between ticks it sleeps on the segment's futex word, so
// `memtide trim PID` (another process) and a free-heavy phase (this one) wake it at once.
#include "monitor_thread.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "bookkeeping_thread.h"
#include "control_mailbox.h"
#include "heap_counters.h"
#include "lifecycle.h"
#include "log.h"
#include "memory_policy.h"
#include "memtide/segment.h"
#include "own_thread.h"
#include "private_descriptors.h"
#include "proc_stats.h"
#include "real_symbols.h"
#include "segment_writer.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

std::atomic<bool> g_stopped{false};
std::atomic<bool> g_pausing{false};  // PauseMonitorThread asked the loop to return
uint32_t g_local_wake = 0;           // private futex word for the waits before there is a segment
bool g_running = false;              // a monitor thread exists (joinable: g_thread)
pthread_t g_thread;
std::atomic<int64_t> g_process_threads{0};  // from the last sample

// Sleeps up to `milliseconds`, or until PauseMonitorThread wakes it (no segment yet, or none possible).
void WaitLocally(int64_t milliseconds) {
  uint32_t seen = __atomic_load_n(&g_local_wake, __ATOMIC_ACQUIRE);
  if (g_pausing.load(std::memory_order_acquire)) return;
  timespec timeout{static_cast<time_t>(milliseconds / 1000), static_cast<long>(milliseconds % 1000) * 1000000};
  syscall(SYS_futex, &g_local_wake, FUTEX_WAIT_PRIVATE, seen, &timeout, nullptr, 0);
}

// Sleeps up to `milliseconds`, or until the wake word moves past `seen`. The word lives in a shared file
// mapping, so the futex is not PRIVATE: other processes wake it.
void WaitForWork(SegmentControl* control, uint32_t seen, int64_t milliseconds) {
  if (control == nullptr) return WaitLocally(milliseconds);
  timespec timeout{static_cast<time_t>(milliseconds / 1000), static_cast<long>(milliseconds % 1000) * 1000000};
  syscall(SYS_futex, &control->wake, FUTEX_WAIT, seen, &timeout, nullptr, 0);
}

// Called from the free path's flush (heap_counters.h): async-signal-safe, errno preserved, no lock.
void WakeFromFreePath() {
  SegmentControl* control = SharedControl();
  if (control == nullptr) return;
  int saved_errno = errno;
  __atomic_add_fetch(&control->wake, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, &control->wake, FUTEX_WAKE, 1, nullptr, nullptr, 0);
  errno = saved_errno;
}

// The kernel keeps counting a main thread that called pthread_exit (a zombie leader) until the process ends.
bool OnlyThisThreadIsLeft() {
  int64_t threads = g_process_threads.load(std::memory_order_relaxed);
  if (PrivateDescriptorThreadRunning()) --threads;  // memtide's other threads
  if (BookkeepingThreadRunning()) --threads;
  if (threads == 1) return true;
  if (threads != 2) return false;
  char stat[512];
  if (ReadSmallFile("/proc/self/stat", stat, sizeof(stat)) <= 0) return false;
  const char* state = strrchr(stat, ')');
  return state != nullptr && state[1] == ' ' && state[2] == 'Z';
}

void* MonitorMain(void*) {
  tls_state.guard_depth = 1;  // nothing this thread does is the program's memory
  const Options& options = RuntimeOptions();
  // Nothing before the delay: a process that ends sooner (most in a container) pays for no file and no
  // second thread. The segment an earlier image of this process left (before exec) goes now, or at exit.
  for (int64_t delay_ms = options.segment_delay_ms - ElapsedNs() / 1000000;
       delay_ms > 0 && !g_pausing.load(std::memory_order_acquire);
       delay_ms = options.segment_delay_ms - ElapsedNs() / 1000000) {
    WaitLocally(delay_ms);
  }
  StartPrivateDescriptorThread();  // before the first file is read
  StartBookkeepingThreadIfWanted();
  LockPublishing();
  RemoveSegmentOfEarlierImage(options.dir.text);
  UnlockPublishing();
  if (!VerifyGlibcChunkHeaders()) {
    Log("glibc's chunk headers do not read as expected; using malloc_usable_size (slower; counts so far may be off)");
  }
  SetFreeWakeHandler(WakeFromFreePath);
  while (!g_stopped.load(std::memory_order_acquire) && !g_pausing.load(std::memory_order_acquire)) {
    SegmentControl* control = SharedControl();
    uint32_t seen = control != nullptr ? __atomic_load_n(&control->wake, __ATOMIC_ACQUIRE) : 0;
    MemoryPressure pressure = SampleProcessStats();
    LockPublishing();
    bool have_segment = !g_stopped.load(std::memory_order_acquire) && CreateSegment(options.dir.text);
    UnlockPublishing();
    AnswerControlRequest();
    UpdateMemoryPolicy(pressure);
    LockPublishing();
    if (have_segment && !g_stopped.load(std::memory_order_acquire)) PublishSegment(kSegmentStateRunning, -1);
    UnlockPublishing();
    // glibc ends a process when its last thread ends (pthread_exit in main, then the others finish), but
    // counts this thread too: when it is the only one left, do what glibc would have done.
    if (OnlyThisThreadIsLeft() && !g_stopped.load(std::memory_order_acquire)) {
      LogVerbose("the program's last thread has ended; exiting with status 0 as glibc does");
      exit(0);
    }
    WaitForWork(SharedControl(), seen, options.interval_ms);
  }
  return nullptr;
}

}  // namespace

MemoryPressure SampleProcessStats() {
  static bool process_warned = false;
  ProcessMemory process{};
  CgroupMemory cgroup;
  SystemMemory system;
  bool process_ok = ReadProcessMemory(0, &process);
  ReadCgroupMemory(0, &cgroup);  // on failure: version 0, no cgroup
  ReadSystemMemory(&system);
  LockPublishing();
  if (!process_ok && !process_warned) {
    process_warned = true;
    Log("cannot read /proc/self/status; RSS is not reported");
  }
  // No memory cgroup (bare host, cgroups not mounted) is normal: the segment says version 0.
  SetSampledStats(process_ok ? &process : nullptr, &cgroup);
  UnlockPublishing();
  g_process_threads.store(process_ok ? process.threads : 0, std::memory_order_relaxed);
  return ComputeMemoryPressure(cgroup, system);
}

void StartMonitorThread() {
  g_pausing.store(false, std::memory_order_relaxed);
  pthread_t thread;
  const int status = StartOwnThread(MonitorMain, nullptr, 64 * 1024, &thread);  // joined by PauseMonitorThread
  g_running = status == 0;
  if (status == 0) {
    g_thread = thread;
  } else {
    Log("cannot start the monitor thread ({}); the segment is written only at marks and at exit", strerror(status));
  }
}

bool PauseMonitorThread() {
  if (!g_running) return false;
  g_pausing.store(true, std::memory_order_release);
  __atomic_add_fetch(&g_local_wake, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, &g_local_wake, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  WakeFromFreePath();
  pthread_join(g_thread, nullptr);
  StopPrivateDescriptorThread();  // the monitor started it; it starts it again when resumed
  g_running = false;
  g_pausing.store(false, std::memory_order_release);
  return true;
}

void ResumeMonitorThread() {
  if (!g_stopped.load(std::memory_order_acquire)) StartMonitorThread();
}

void ResetMonitorInChild() {
  g_stopped.store(false, std::memory_order_relaxed);
  g_pausing.store(false, std::memory_order_relaxed);
  g_running = false;
}

void StopMonitorPublishing() { g_stopped.store(true, std::memory_order_release); }

}  // namespace memtide::internal
