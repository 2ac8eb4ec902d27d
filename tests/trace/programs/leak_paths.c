// Leaks one block of 21001 bytes from LeakForPath(), then ends the way argv[1] says: return, exit, _exit,
// exit_group (the system call itself: no exit handler runs, no interposed function is called), kill (SIGKILL:
// no exit handler can run, so no leak check) or chdir (returns from main in another directory). The trace must name LeakForPath in each case where the process
// could still write it.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void* g_kept;

__attribute__((noinline)) void LeakForPath(void) {
  g_kept = malloc(21001);
  memset(g_kept, 1, 21001);
  g_kept = NULL;  // lost: a real leak, not a still-reachable block
}

int main(int argc, char** argv) {
  const char* how = argc > 1 ? argv[1] : "return";
  LeakForPath();
  free(malloc(5000));
  if (strcmp(how, "exit") == 0) exit(0);
  if (strcmp(how, "_exit") == 0) _exit(0);
  if (strcmp(how, "exit_group") == 0) syscall(SYS_exit_group, 0);
  if (strcmp(how, "kill") == 0) raise(SIGKILL);
  if (strcmp(how, "chdir") == 0 && chdir("/") != 0) return 1;
  return 0;
}
