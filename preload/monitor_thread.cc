// See monitor_thread.h. Runs on its own thread, under the guard for its whole life.
#include "monitor_thread.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <atomic>

#include "lifecycle.h"
#include "log.h"
#include "memtide/segment.h"
#include "proc_stats.h"
#include "segment_writer.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

std::atomic<bool> g_stopped{false};

void SleepMs(int64_t milliseconds) {
  timespec pause{static_cast<time_t>(milliseconds / 1000), static_cast<long>(milliseconds % 1000) * 1000000};
  while (nanosleep(&pause, &pause) != 0) {
  }
}

void* MonitorMain(void*) {
  tls_state.guard_depth = 1;  // nothing this thread does is the program's memory
  const Options& options = RuntimeOptions();
  int64_t delay_ms = options.segment_delay_ms - ElapsedNs() / 1000000;
  if (delay_ms > 0) SleepMs(delay_ms);
  while (!g_stopped.load(std::memory_order_acquire)) {
    SampleProcessStats();
    LockPublishing();
    if (!g_stopped.load(std::memory_order_acquire) && CreateSegment(options.dir.text)) {
      PublishSegment(kSegmentStateRunning, -1);
    }
    UnlockPublishing();
    SleepMs(options.interval_ms);
  }
  return nullptr;
}

}  // namespace

void SampleProcessStats() {
  static bool process_warned = false;
  ProcessMemory process;
  CgroupMemory cgroup;
  bool process_ok = ReadProcessMemory(0, &process);
  ReadCgroupMemory(0, &cgroup);  // on failure: version 0, no cgroup
  LockPublishing();
  if (!process_ok && !process_warned) {
    process_warned = true;
    Log("cannot read /proc/self/status; RSS is not reported");
  }
  // No memory cgroup (bare host, cgroups not mounted) is normal: the segment says version 0.
  SetSampledStats(process_ok ? &process : nullptr, &cgroup);
  UnlockPublishing();
}

void StartMonitorThread() {
  g_stopped.store(false, std::memory_order_relaxed);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 128 * 1024);
  // Signals meant for the program must never land on memtide's thread.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_t thread;
  int status = pthread_create(&thread, &attributes, MonitorMain, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_attr_destroy(&attributes);
  if (status != 0) {
    Log("cannot start the monitor thread ({}); the segment is written only at marks and at exit", strerror(status));
  }
}

void StopMonitorPublishing() { g_stopped.store(true, std::memory_order_release); }

}  // namespace memtide::internal
