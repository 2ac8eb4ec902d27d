// A throwaway child: a copy of the traced process, made at exit with clone(2), that does work the program
// itself must not risk (running the C runtime's cleanup, loading the symbolizer) and hands back its result
// through memory the caller shares with it (MAP_SHARED). It is a process of its own (no CLONE_VM) that sends
// no SIGCHLD when it ends (exit signal 0), so a program's SIGCHLD handler never hears of it; none of the
// program's signal handlers run in it, a crash leaves no core file, and the kernel's OOM killer takes it
// before the program (oom_score_adj 1000). Only the calling thread exists in it: a lock another thread held at
// the clone stays held there, so its callers wait for it with a limit.
//
// A seccomp filter may kill the whole process for a clone that starts no thread (a sandbox that allows
// threads only): under one, the clone is tried first from a child sharing this memory (child_sharing_memory.h),
// which alone dies if so. That try copies the process, so it is made at start (PrepareThrowawayChildren),
// while the process is small, and again at exit only if filters were added since.
#ifndef MEMTIDE_TRACER_THROWAWAY_CHILD_H_
#define MEMTIDE_TRACER_THROWAWAY_CHILD_H_

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <string>

namespace memtide::internal {

// Once, at start (the tracer's Start).
void PrepareThrowawayChildren();

// Whether this process may start one (false under a seccomp filter that kills it for the clone).
bool ThrowawayChildAllowed();

// clone(2) with exit signal 0: the child's pid in the parent, 0 in the child (which has made itself a throwaway
// one: default signal handlers, no core, first for the OOM killer), -1 with errno set on failure.
pid_t StartThrowawayChild();

// CLOCK_MONOTONIC in milliseconds: the clock the waits for children use.
int64_t MonotonicMs();

// Ends the child at once: no atexit handlers, no destructors, no stdio flush.
[[noreturn]] void ExitThrowawayChild(int status);

// Waits for a child that computes (and writes nothing to descriptors) until it sets *done to nonzero (in
// memory shared with it) and wakes this process with MarkThrowawayChildDone, or ends. "" when it finished
// (done, or exited with status 0), else why not, in a few words ("it was ended by signal 11"); *exit_status is
// its exit status, 0 when done, or -1 when it did not exit by itself. A finished child is not waited for
// further: taking down its copy of the address space costs about as much as making it, and it does that while
// the program goes on ending (it is reaped here if already gone, else by whoever inherits it). A child whose
// CPU time has not moved for `stall_ms` while it is still there is waiting for a lock another thread held at
// the clone: it is killed, *stalled is set and the reason says so (where /proc cannot tell its CPU time, after
// a minute).
std::string WaitForComputingChild(pid_t child, const std::atomic<uint32_t>* done, int stall_ms, bool* stalled,
                                  int* exit_status);

// In the child: sets *done and wakes the parent waiting in WaitForComputingChild.
void MarkThrowawayChildDone(std::atomic<uint32_t>* done);

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_THROWAWAY_CHILD_H_
