/* Runs a program under a seccomp filter that lets it start threads and posix_spawn-style children but kills
 * the process at any other clone (a fork-like copy of itself), as a sandbox that allows threads only may:
 * usage `threads_only_sandbox PROGRAM ARGS...`. clone3, whose flags a filter cannot read, answers ENOSYS, so
 * glibc starts threads with clone. memtide's exit-cleanup probe must then stay out of the way rather than kill
 * the traced program at exit. Prints "ok skipped: ..." and exits 0 when this machine refuses seccomp filters
 * (a container without the privilege). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
      /* clone's flags, low 32 bits (x86_64 and aarch64 are little-endian) */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD | CLONE_VFORK, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {sizeof(filter) / sizeof(filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    printf("ok skipped: no seccomp filter here (%s)\n", strerror(errno));
    return 0;
  }
  execv(argv[1], argv + 1);
  printf("cannot run %s: %s\n", argv[1], strerror(errno));
  return 127;
}
