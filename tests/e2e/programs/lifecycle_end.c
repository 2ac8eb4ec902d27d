/* End-to-end program: leaks sentinel blocks, marks "before_end", prints its exact current heap bytes and
 * ends the way argv[1] says (return, exit, _exit, abort, sigkill). The driver checks that the report's
 * final (or, when killed, last published) heap.current_bytes equals the printed number.
 * Output (stdout): "pid=<pid> current=<bytes> leaked=<bytes>". Exit codes: 0 return, 42 exit, 43 _exit. */
#include <signal.h>

#include "e2e_check.h"

int main(int argc, char **argv) {
  if (argc != 2) E2E_FAIL("usage: lifecycle_end return|exit|_exit|abort|sigkill");
  E2eRequireApi();
  const char *how = argv[1];

  struct memtide_heap_stats before = E2eStats();
  static const size_t kSentinels[] = {11001, 12001, 13001};
  size_t leaked = 0;
  for (size_t i = 0; i < sizeof(kSentinels) / sizeof(kSentinels[0]); ++i) {
    void *p = malloc(kSentinels[i]);
    E2E_CHECK(p != NULL, "malloc(%zu) failed", kSentinels[i]);
    memset(p, 0x5a, kSentinels[i]);
    E2eEscape(p);
    leaked += malloc_usable_size(p);
  }
  /* A freed block must not show up in the final state. */
  void *freed = malloc(14001);
  E2eEscape(freed);
  free(freed);

  memtide_mark("before_end");
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK_EQ("current_bytes delta", after.current_bytes - before.current_bytes, leaked);
  E2eWriteLine(1, "pid=%d current=%llu leaked=%zu", (int)getpid(), (unsigned long long)after.current_bytes,
               leaked);

  if (strcmp(how, "return") == 0) return 0;
  if (strcmp(how, "exit") == 0) exit(42);
  if (strcmp(how, "_exit") == 0) _exit(43);
  if (strcmp(how, "abort") == 0) abort();
  if (strcmp(how, "sigkill") == 0) {
    raise(SIGKILL);
    E2E_FAIL("still alive after raise(SIGKILL)");
  }
  E2E_FAIL("unknown ending '%s'", how);
}
