/* End-to-end program: a signal handler that calls mprotect and mmap/munmap (as GCs and JITs do) while the
 * program's own mprotect calls keep memtide's mapping table busy. A handler that lands while the thread holds
 * the table's lock must not wait for it: the program finishes, and the pages it holds at the end are counted
 * exactly. A 50 µs interval timer, for about 0.3 s. Output: "ok signals=<n>". */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "e2e_check.h"

static char *g_handler_page;
static volatile sig_atomic_t g_signals;

static void OnAlarm(int signal_number) {
  (void)signal_number;
  mprotect(g_handler_page, 4096, (g_signals & 1) ? PROT_NONE : PROT_READ | PROT_WRITE);
  void *scratch = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (scratch != MAP_FAILED) munmap(scratch, 4096);
  g_signals = g_signals + 1;
}

int main(void) {
  E2eRequireApi();
  struct memtide_heap_stats start = E2eStats();
  g_handler_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *pages = mmap(NULL, 64 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  E2E_CHECK(g_handler_page != MAP_FAILED && pages != MAP_FAILED, "mmap failed");
  struct sigaction action = {0};
  action.sa_handler = OnAlarm;
  action.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &action, NULL);
  struct itimerval every = {{0, 50}, {0, 50}};
  setitimer(ITIMER_REAL, &every, NULL);
  double began = E2eNowSeconds();
  for (int i = 0; E2eNowSeconds() - began < 0.3 || g_signals < 100; ++i) {
    mprotect(pages + (i % 64) * 4096, 4096, PROT_READ | PROT_WRITE);
    mprotect(pages + ((i + 32) % 64) * 4096, 4096, PROT_NONE);
  }
  struct itimerval stop = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &stop, NULL);
  /* Exact again once the handler is quiet: every page made PROT_NONE, then 5 opened. */
  mprotect(g_handler_page, 4096, PROT_NONE);
  mprotect(pages, 64 * 4096, PROT_NONE);
  mprotect(pages + 8 * 4096, 5 * 4096, PROT_READ);
  struct memtide_heap_stats end = E2eStats();
  E2E_CHECK_EQ("mmap_current_bytes", end.mmap_current_bytes, start.mmap_current_bytes + 5 * 4096);
  E2eWriteLine(1, "ok signals=%d", (int)g_signals);
  return 0;
}
