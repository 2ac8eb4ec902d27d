/* End-to-end program: a forked child gets its own segment and its own counts. The parent leaks a
 * sentinel, marks, forks; the child allocates and marks "in_child"; the parent checks after waitpid that
 * its counts did not move at all. Run with MEMTIDE_KEEP_SEGMENT=1 so both segments stay for `memtide show`.
 * Output: "child_pid=<pid> child_current=<bytes>" then "parent_pid=<pid> parent_current=<bytes>". */
#include <sys/wait.h>

#include "e2e_check.h"

int main(void) {
  E2eRequireApi();
  void *parent_block = malloc(11001);
  E2eEscape(parent_block);
  memtide_mark("parent_before_fork");
  struct memtide_heap_stats before = E2eStats();

  pid_t child = fork();
  E2E_CHECK(child >= 0, "fork failed");
  if (child == 0) {
    struct memtide_heap_stats child_before = E2eStats();
    void *kept = malloc(12001);
    void *dropped = malloc(22001);
    E2eEscape(kept);
    E2eEscape(dropped);
    size_t kept_usable = malloc_usable_size(kept);
    size_t dropped_usable = malloc_usable_size(dropped);
    free(dropped);
    /* The parent's block is the child's too (a copy); freeing it is counted in the child only. */
    size_t parent_usable = malloc_usable_size(parent_block);
    free(parent_block);
    struct memtide_heap_stats child_after = E2eStats();
    E2E_CHECK_HEAP_DELTA(child_before, child_after, kept_usable - parent_usable, 2, 2,
                         kept_usable + dropped_usable);
    memtide_mark("in_child");
    E2eWriteLine(1, "child_pid=%d child_current=%llu", (int)getpid(),
                 (unsigned long long)child_after.current_bytes);
    exit(0);
  }

  int status = 0;
  E2E_CHECK(waitpid(child, &status, 0) == child, "waitpid failed");
  E2E_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status 0x%x)", status);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK_HEAP_DELTA(before, after, 0, 0, 0, 0);
  memtide_mark("parent_after_child");
  E2eWriteLine(1, "parent_pid=%d parent_current=%llu", (int)getpid(),
               (unsigned long long)after.current_bytes);
  return 0;
}
