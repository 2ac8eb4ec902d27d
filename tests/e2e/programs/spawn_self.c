/* End-to-end program: children started with posix_spawn or vfork+execve inherit the preload through the
 * environment and count exactly; the parent checks the child's exit status and that starting and
 * reaping the child did not move its own counts.
 * Usage: spawn_self posix_spawn|vfork (parent) or spawn_self child. Output: "child ok", "parent ok". */
#include <spawn.h>
#include <sys/wait.h>

#include "e2e_check.h"

extern char **environ;

static int Child(void) {
  E2eRequireApi();
  struct memtide_heap_stats before = E2eStats();
  void *p = malloc(12001);
  E2eEscape(p);
  size_t usable = malloc_usable_size(p);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK_HEAP_DELTA(before, after, usable, 1, 0, usable);
  free(p);
  E2eWriteLine(1, "child ok");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) E2E_FAIL("usage: spawn_self posix_spawn|vfork|child");
  if (strcmp(argv[1], "child") == 0) return Child();
  E2eRequireApi();
  int use_vfork = strcmp(argv[1], "vfork") == 0;
  E2E_CHECK(use_vfork || strcmp(argv[1], "posix_spawn") == 0, "unknown mode '%s'", argv[1]);

  void *kept = malloc(11001);
  E2eEscape(kept);
  char *child_argv[] = {argv[0], (char *)"child", NULL};
  struct memtide_heap_stats before = E2eStats();
  pid_t pid;
  if (use_vfork) {
    pid = vfork();
    if (pid == 0) {
      execve(argv[0], child_argv, environ);
      _exit(127);
    }
    E2E_CHECK(pid > 0, "vfork failed");
  } else {
    int rc = posix_spawn(&pid, argv[0], NULL, NULL, child_argv, environ);
    E2E_CHECK(rc == 0, "posix_spawn failed: %d", rc);
  }
  int status = 0;
  E2E_CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
  E2E_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status 0x%x)", status);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK_HEAP_DELTA(before, after, 0, 0, 0, 0);
  free(kept);
  E2eWriteLine(1, "parent ok");
  return 0;
}
