/* End-to-end program: allocations made before main, in a constructor and in .preinit_array (which runs
 * before every shared library's constructor, the preload's included), are counted exactly and stay
 * counted until main frees them. Output: "ok current=<bytes>". */
#include "e2e_check.h"

struct Early {
  void *block;
  unsigned long long delta;
  unsigned long long allocations;
  int api_bound;
};
static struct Early g_preinit, g_ctor;

static void AllocateEarly(struct Early *early, size_t bytes) {
  early->api_bound = memtide_get_heap_stats != NULL;
  if (!early->api_bound) return;
  struct memtide_heap_stats before = E2eStats();
  early->block = malloc(bytes);
  E2eEscape(early->block);
  struct memtide_heap_stats after = E2eStats();
  early->delta = after.current_bytes - before.current_bytes;
  early->allocations = after.allocations - before.allocations;
}

static void PreinitAllocate(int argc, char **argv, char **envp) {
  (void)argc, (void)argv, (void)envp;
  AllocateEarly(&g_preinit, 11001);
}
__attribute__((section(".preinit_array"), used)) static void (*const kPreinit)(int, char **,
                                                                               char **) = PreinitAllocate;

__attribute__((constructor)) static void ConstructorAllocate(void) { AllocateEarly(&g_ctor, 12001); }

static void CheckEarly(const char *name, const struct Early *early) {
  E2E_CHECK(early->api_bound, "%s: memtide API not bound", name);
  E2E_CHECK(early->block != NULL, "%s: malloc failed", name);
  E2E_CHECK_EQ(name, early->delta, malloc_usable_size(early->block));
  E2E_CHECK_EQ(name, early->allocations, 1);
}

int main(void) {
  E2eRequireApi();
  /* tcmalloc's malloc_usable_size answers 0 until tcmalloc's own constructors have run, and .preinit_array
   * runs before every library constructor: under tcmalloc that block is counted as 0 bytes (a documented
   * limit, README "Stacked allocators"). Every other allocator is checked. */
  const char *allocator = getenv("E2E_ALLOCATOR");
  int usable_size_works_before_constructors = allocator == NULL || strcmp(allocator, "tcmalloc") != 0;
  if (!usable_size_works_before_constructors) {
    /* Not freed either: its free would subtract bytes that were never added. */
    printf("note: preinit_array check skipped under tcmalloc\n");
    g_preinit.block = NULL;
  } else {
    CheckEarly("preinit_array allocation", &g_preinit);
  }
  CheckEarly("constructor allocation", &g_ctor);
  /* Both blocks are still counted: freeing them gives back exactly their usable sizes. */
  size_t usable = (g_preinit.block != NULL ? malloc_usable_size(g_preinit.block) : 0) + malloc_usable_size(g_ctor.block);
  int blocks = g_preinit.block != NULL ? 2 : 1;
  struct memtide_heap_stats before = E2eStats();
  free(g_preinit.block);
  free(g_ctor.block);
  struct memtide_heap_stats after = E2eStats();
  E2E_CHECK_HEAP_DELTA(before, after, 0 - (uint64_t)usable, 0, blocks, 0);
  E2eWriteLine(1, "ok current=%llu", (unsigned long long)after.current_bytes);
  return 0;
}
