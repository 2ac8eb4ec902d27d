/* Shared library for the dlopen end-to-end test: its constructor allocates a 13001-byte sentinel while
 * the dynamic loader holds its lock, and measures the heap delta through memtide's API (the weak
 * references in this library bind to the preload too). */
#include "e2e_check.h"

static void *g_block;
static unsigned long long g_ctor_delta;
static int g_api_bound;

__attribute__((constructor)) static void AllocateInConstructor(void) {
  g_api_bound = memtide_get_heap_stats != NULL;
  if (!g_api_bound) return;
  struct memtide_heap_stats before = E2eStats();
  g_block = malloc(13001);
  E2eEscape(g_block);
  struct memtide_heap_stats after = E2eStats();
  g_ctor_delta = after.current_bytes - before.current_bytes;
}

__attribute__((visibility("default"))) void *CtorAllocBlock(void) { return g_block; }
__attribute__((visibility("default"))) unsigned long long CtorAllocDelta(void) { return g_ctor_delta; }
__attribute__((visibility("default"))) int CtorAllocApiBound(void) { return g_api_bound; }
