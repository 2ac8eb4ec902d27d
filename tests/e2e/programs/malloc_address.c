/* End-to-end program: an executable that takes malloc's and free's addresses without defining them, built
 * without PIE, exports them as undefined symbols whose values are its canonical PLT entries (node and python3
 * do), and dlsym returns those stubs. memtide's malloc is still the one called: the calls through the
 * pointers are counted exactly, and memtide must not claim the executable has its own malloc. Output:
 * "malloc_address ok". */
#include <dlfcn.h>

#include "e2e_check.h"

/* Without PIE, the weak references of e2e_check.h compare as null whatever is loaded: the API comes from dlsym. */
static void (*g_get_heap_stats)(struct memtide_heap_stats *);

static struct memtide_heap_stats Stats(void) {
  struct memtide_heap_stats stats;
  memset(&stats, 0, sizeof(stats));
  g_get_heap_stats(&stats);
  return stats;
}

void *(*volatile g_allocate)(size_t);
void (*volatile g_release)(void *);

int main(void) {
  g_get_heap_stats = (void (*)(struct memtide_heap_stats *))dlsym(RTLD_DEFAULT, "memtide_get_heap_stats");
  E2E_CHECK(g_get_heap_stats != NULL, "memtide API not found: is libmemtide.so in LD_PRELOAD?");
  /* Taken in code, not in a data initializer (which the linker turns into a dynamic relocation instead). */
  g_allocate = malloc;
  g_release = free;
  struct memtide_heap_stats before = Stats();
  void *p = g_allocate(14001);
  E2E_CHECK(p != NULL, "malloc(14001) through a pointer failed");
  E2eEscape(p);
  size_t usable = malloc_usable_size(p);
  struct memtide_heap_stats allocated = Stats();
  E2E_CHECK_HEAP_DELTA(before, allocated, usable, 1, 0, usable);
  g_release(p);
  struct memtide_heap_stats freed = Stats();
  E2E_CHECK_HEAP_DELTA(allocated, freed, 0 - (uint64_t)usable, 0, 1, 0);
  E2eWriteLine(1, "malloc_address ok");
  return 0;
}
