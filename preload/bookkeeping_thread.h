// The bookkeeping thread: applies the tracer module's queued live-table and site changes
// (tracer/bookkeeping_queue.h) on a core of its own while one program thread traces in full mode, so that
// thread pays for its stack captures and not for the tables. memtide's thread, like the monitor: the guard set
// for good, every signal blocked, a small stack. Wanted when the tracer starts and the process may run on two
// CPUs or more, started by the monitor thread when the process is old enough to have its segment; ended and
// started again around credential changes (credential_hooks.cc); a fork child has none
// (its module keeps the tables on the program's threads). Ends by itself once the module says nothing will
// be queued again (a second thread traced). With the queue empty it sleeps, 50 us doubling up to 5 ms: an
// idle traced program costs it some 200 wake-ups a second.
#ifndef MEMTIDE_PRELOAD_BOOKKEEPING_THREAD_H_
#define MEMTIDE_PRELOAD_BOOKKEEPING_THREAD_H_

struct MemtideTracerApi;

namespace memtide::internal {

// Whether a bookkeeping thread is worth starting here: at least two CPUs in the affinity mask, and a CPU
// cgroup quota (`docker run --cpus`) of more than one CPU or none. With one CPU's time it would only take
// turns with the program.
bool BookkeepingThreadUseful();
// The tracer was started with bookkeeping_thread set: the thread is wanted, for `tracer`.
void WantBookkeepingThread(const MemtideTracerApi* tracer);
// Starts it if wanted and not running. The monitor thread calls this once the process is
// MEMTIDE_SEGMENT_DELAY old, so that a process that ends sooner (most in a shell script) pays for no thread:
// until then its thread applies the queue itself whenever it fills. Logs one line on failure.
void StartBookkeepingThreadIfWanted();
// Whether the thread runs now (the monitor counts the process's threads without memtide's).
bool BookkeepingThreadRunning();
// Credential changes: ends the thread and waits until it is gone (at most one sleep); true if it was running.
// Not async-signal-safe; callers serialize.
bool PauseBookkeepingThread();
void ResumeBookkeepingThread();
// fork() child: the parent's thread does not exist here.
void ResetBookkeepingThreadInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_BOOKKEEPING_THREAD_H_
