// Asking the kernel something that may kill the asking process: a seccomp filter may answer a system call it
// does not allow by killing the whole process (systemd's SystemCallFilter= does by default, a threads-only
// sandbox does for a fork-like clone). So the question is put from a child that shares this memory, started
// the way posix_spawn starts one (CLONE_VM | CLONE_VFORK, no exit signal, so the program's SIGCHLD handler and
// waits never see it): if the filter kills, only that child dies. Used by the preload (libunwind's memory
// checks) and by the tracer module (the exit-cleanup probe). Header-only: the two link separately.
#ifndef MEMTIDE_TRACER_CHILD_SHARING_MEMORY_H_
#define MEMTIDE_TRACER_CHILD_SHARING_MEMORY_H_

#include <sched.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/wait.h>

namespace memtide::internal {

// Runs question(nullptr) in such a child on `stack` (stack_bytes long), with the calling thread's TLS (errno),
// which waits meanwhile. True when it returned 0.
inline bool AnsweredInChildSharingMemory(int (*question)(void*), char* stack, size_t stack_bytes) {
  const pid_t child = clone(question, stack + stack_bytes, CLONE_VM | CLONE_VFORK, nullptr);
  int status = 0;
  return child > 0 && waitpid(child, &status, __WALL) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_CHILD_SHARING_MEMORY_H_
