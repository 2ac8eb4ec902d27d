// The monitor thread: creates the segment once the process is MEMTIDE_SEGMENT_DELAY old, then every
// MEMTIDE_INTERVAL samples RSS and the cgroup and publishes the counters. Started by the constructor
// (and in a fork child); all signals blocked; everything it does is under the guard, so uncounted.
#ifndef MEMTIDE_PRELOAD_MONITOR_THREAD_H_
#define MEMTIDE_PRELOAD_MONITOR_THREAD_H_

#include "proc_stats.h"

namespace memtide::internal {

void StartMonitorThread();
// Samples /proc and the cgroup into the segment writer (publish lock not held; takes it) and returns the
// memory pressure that alerts and the trim policy use.
MemoryPressure SampleProcessStats();
// Exit: the monitor publishes nothing after this (the final state stays).
void StopMonitorPublishing();
// Credential changes (preload/credential_hooks.cc): ends the monitor thread and waits until it is gone (up to
// one interval). True if it was running. Not async-signal-safe; callers serialize.
bool PauseMonitorThread();
// Starts it again after a pause, unless the process has begun to exit meanwhile.
void ResumeMonitorThread();
// fork() child: the parent's monitor thread does not exist here, whatever state it was in.
void ResetMonitorInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_MONITOR_THREAD_H_
