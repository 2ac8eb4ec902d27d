// memtide's own file opens (its /proc and cgroup statistics, each monitor tick; the segment file; snapshot
// files) happen on a thread whose descriptor table is its own, so that the program never sees them.
// Programs look at their descriptors: CPython's subprocess tests fstat every number and fail on one they did
// not open (a monitor that held /proc/self/stat at number 4 for a few microseconds failed test_pass_fds),
// daemons close everything above 2, leak checkers list /proc/self/fd. A descriptor kept open at a high number
// is no better: test_pass_fds_redirected compares the child's whole set.
//
// The thread calls unshare(CLONE_FILES), then closes every descriptor of its copy at once (holding the
// program's pipes would keep their readers from ever seeing end-of-file), then runs the work it is handed,
// one call at a time. Where unshare is refused (Docker's default seccomp profile allows it only with
// CAP_SYS_ADMIN) or close_range is missing (kernels before 5.9), the thread ends and callers do the work
// themselves: their descriptor is then visible for the few microseconds of the read. The monitor starts the
// thread once the process is MEMTIDE_SEGMENT_DELAY old, so short-lived processes never pay for it.
//
// Work handed over must not write to descriptors the program owns (standard error is closed there): it
// returns what happened and the caller logs.
#ifndef MEMTIDE_PRELOAD_PRIVATE_DESCRIPTORS_H_
#define MEMTIDE_PRELOAD_PRIVATE_DESCRIPTORS_H_

namespace memtide::internal {

// Starts the thread once per process image (the monitor thread calls it first thing; later calls do
// nothing). Waits until the thread has its own table, or has given up.
void StartPrivateDescriptorThread();

// Ends the thread and waits for it (a credential change: glibc aborts the process when a thread's setuid
// fails, and this thread did none of the program's per-thread capability steps; credential_hooks.cc). The next
// StartPrivateDescriptorThread starts a new one. Meanwhile callers do their work themselves.
void StopPrivateDescriptorThread();

// Runs work(argument) on that thread and waits for it. False, without running it, when there is no such
// thread, or its locks stay busy (a signal handler that interrupted a caller); the caller then runs it itself.
// Allocation-free; callers are served one at a time.
bool RunWithPrivateDescriptors(void (*work)(void*), void* argument);

// True while the thread exists (it counts among the process's threads).
bool PrivateDescriptorThreadRunning();

// fork() child: the thread was not copied; the child's monitor starts its own.
void ResetPrivateDescriptorsInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_PRIVATE_DESCRIPTORS_H_
