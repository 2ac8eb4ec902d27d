/* Runs a program under a seccomp filter that kills any process calling process_vm_readv, as a hardened
 * service's filter may (systemd's SystemCallFilter= kills by default for a call it does not list): usage
 * `without_process_vm_readv PROGRAM ARGS...`. memtide must then keep libunwind's memory checks on a pipe
 * rather than kill the traced program. Prints "ok skipped: ..." and exits 0 when this machine refuses seccomp
 * filters (a container without the privilege). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
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
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
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
