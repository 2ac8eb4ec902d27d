// fork: the parent leaks 21031 before forking (live in both processes), the child leaks 21032 and exits, the
// parent leaks 21033 after the child ended. Each process writes its own trace (MEMTIDE_TRACE_FILE with %p).
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void* g_lost;

__attribute__((noinline)) void LeakBeforeFork(void) { g_lost = malloc(21031); }
__attribute__((noinline)) void LeakInChild(void) { g_lost = malloc(21032); }
__attribute__((noinline)) void LeakInParent(void) { g_lost = malloc(21033); }

int main(void) {
  LeakBeforeFork();
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) return 2;
  if (child == 0) {
    LeakInChild();
    printf("child %d\n", (int)getpid());
    exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  LeakInParent();
  printf("parent %d\n", (int)getpid());
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 3;
}
