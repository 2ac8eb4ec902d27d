/* Runs a program under a seccomp filter that kills the process for what a hardened service's or a sandbox's
 * filter may refuse (systemd's SystemCallFilter= kills by default for a call it does not list):
 * usage `seccomp_sandbox KIND PROGRAM ARGS...`, KIND one of
 *   no-process-vm-readv  process_vm_readv kills: memtide must then keep libunwind's memory checks on a pipe;
 *   threads-only         a clone that is neither a thread's nor posix_spawn's (CLONE_VFORK) kills, and clone3,
 *                        whose flags a filter cannot read, answers ENOSYS so that glibc starts threads with
 *                        clone: memtide's exit-cleanup probe must then stay out of the way.
 * Prints "ok skipped: ..." and exits 0 when this machine refuses seccomp filters (a container without the
 * privilege). */
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

static struct sock_filter no_process_vm_readv[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

static struct sock_filter threads_only[] = {
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

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  struct sock_fprog program;
  if (strcmp(argv[1], "no-process-vm-readv") == 0) {
    program = (struct sock_fprog){sizeof(no_process_vm_readv) / sizeof(no_process_vm_readv[0]), no_process_vm_readv};
  } else if (strcmp(argv[1], "threads-only") == 0) {
    program = (struct sock_fprog){sizeof(threads_only) / sizeof(threads_only[0]), threads_only};
  } else {
    printf("unknown sandbox kind %s\n", argv[1]);
    return 2;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    printf("ok skipped: no seccomp filter here (%s)\n", strerror(errno));
    return 0;
  }
  execv(argv[2], argv + 2);
  printf("cannot run %s: %s\n", argv[2], strerror(errno));
  return 127;
}
