/* End-to-end program: a program that uses memtide's API runs fine without the preload, because the API
 * is declared weak: every symbol is null and the program takes the "not traced" branch.
 * Output: "unbound". */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "e2e_check.h"

int main(void) {
  E2E_CHECK(memtide_get_traced_memory == NULL, "memtide_get_traced_memory bound without the preload");
  E2E_CHECK(memtide_reset_peak == NULL, "memtide_reset_peak bound without the preload");
  E2E_CHECK(memtide_mark == NULL, "memtide_mark bound without the preload");
  E2E_CHECK(memtide_get_heap_stats == NULL, "memtide_get_heap_stats bound without the preload");
  E2E_CHECK(dlsym(RTLD_DEFAULT, "memtide_mark") == NULL, "dlsym found memtide_mark");

  /* The documented calling pattern. */
  if (memtide_mark) memtide_mark("unreachable");
  size_t current = 1, peak = 1;
  if (memtide_get_traced_memory) memtide_get_traced_memory(&current, &peak);
  E2E_CHECK(current == 1 && peak == 1, "outputs written without the preload");
  void *p = malloc(11001);
  E2eEscape(p);
  free(p);
  E2eWriteLine(1, "unbound");
  return 0;
}
