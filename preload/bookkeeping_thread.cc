// See bookkeeping_thread.h.
#include "bookkeeping_thread.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "log.h"
#include "own_thread.h"
#include "proc_stats.h"
#include "thread_state.h"
#include "tracer_module.h"

namespace memtide::internal {
namespace {

constexpr long kFirstSleepNs = 50 * 1000;
constexpr long kLongestSleepNs = 5 * 1000 * 1000;
constexpr int64_t kBusyRecords = 256;  // a drain that found this many goes on at once

const MemtideTracerApi* g_tracer = nullptr;
pthread_t g_thread;
bool g_running = false;  // joinable thread exists (changed by the starting or pausing thread only)
std::atomic<bool> g_pausing{false};
std::atomic<bool> g_alive{false};  // between the start and the end of BookkeepingMain
uint32_t g_wake = 0;  // futex word: moved to cut a sleep short

void Sleep(long nanoseconds) {
  const uint32_t seen = __atomic_load_n(&g_wake, __ATOMIC_ACQUIRE);
  if (g_pausing.load(std::memory_order_acquire)) return;
  timespec timeout{0, nanoseconds};
  syscall(SYS_futex, &g_wake, FUTEX_WAIT_PRIVATE, seen, &timeout, nullptr, 0);
}

void* BookkeepingMain(void*) {
  tls_state.guard_depth = 1;  // nothing this thread does is the program's memory
  long sleep_ns = kFirstSleepNs;
  while (!g_pausing.load(std::memory_order_acquire)) {
    const int64_t applied = g_tracer->drain_bookkeeping();
    if (applied < 0) break;  // nothing will be queued again
    if (applied >= kBusyRecords) continue;
    // A few records or none: wait for more rather than wake for each (the queue holds well over a
    // sleep's worth of the busiest program's records).
    sleep_ns = applied > 0 ? kFirstSleepNs : (sleep_ns * 2 < kLongestSleepNs ? sleep_ns * 2 : kLongestSleepNs);
    Sleep(sleep_ns);
  }
  g_alive.store(false, std::memory_order_release);
  return nullptr;
}

void StartThread() {
  g_pausing.store(false, std::memory_order_relaxed);
  g_alive.store(true, std::memory_order_relaxed);
  const int status = StartOwnThread(BookkeepingMain, nullptr, 64 * 1024, &g_thread);  // joined by the pause
  g_running = status == 0;
  if (status != 0) {
    g_alive.store(false, std::memory_order_relaxed);
    Log("cannot start the bookkeeping thread ({}); full tracing keeps its tables on the program's threads",
        strerror(status));
  }
}

}  // namespace

bool BookkeepingThreadUseful() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0 || CPU_COUNT(&cpus) < 2) return false;
  const int quota = ReadCgroupCpuLimit();
  return quota == 0 || quota >= 2;
}

void WantBookkeepingThread(const MemtideTracerApi* tracer) { g_tracer = tracer; }

void StartBookkeepingThreadIfWanted() {
  if (g_tracer != nullptr && !g_running) StartThread();
}

bool BookkeepingThreadRunning() { return g_alive.load(std::memory_order_acquire); }

bool PauseBookkeepingThread() {
  if (!g_running) return false;
  g_pausing.store(true, std::memory_order_release);
  __atomic_add_fetch(&g_wake, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, &g_wake, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  pthread_join(g_thread, nullptr);
  g_running = false;
  return true;
}

void ResumeBookkeepingThread() {
  if (g_tracer != nullptr) StartThread();
}

void ResetBookkeepingThreadInChild() {
  g_running = false;
  g_alive.store(false, std::memory_order_relaxed);
  g_tracer = nullptr;
  g_pausing.store(false, std::memory_order_relaxed);
}

}  // namespace memtide::internal
