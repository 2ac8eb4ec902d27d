// A known allocation profile for sample mode, everything live at exit: site_large allocates 64 MiB,
// site_medium 16 MiB and site_small 4 MiB, each in blocks of mixed sizes 100..100000 bytes drawn from a
// fixed-seed generator (the last block of a site is cut so the site's total is exact). The blocks are never
// touched, so the resident memory stays small.
#include <stdint.h>
#include <stdlib.h>

static uint64_t s_state = 0x2545F4914F6CDD1DULL;

static size_t NextSize(void) {
  s_state ^= s_state << 13;
  s_state ^= s_state >> 7;
  s_state ^= s_state << 17;
  return 100 + (size_t)(s_state % 99901);  // 100..100000
}

enum { kMaxBlocks = 8192 };  // 84 MiB in blocks of ~50 KB on average: about 1,700
static void** s_blocks;
static size_t s_count;

// A macro, not a function: each site's malloc call must be in the site's own function (the innermost
// program frame is what the test groups by).
#define ALLOCATE_TOTAL(bytes)                               \
  do {                                                      \
    size_t total = (bytes);                                 \
    while (total > 0) {                                     \
      size_t size = NextSize();                             \
      if (size > total || total - size < 100) size = total; \
      if (s_count == kMaxBlocks) abort();                   \
      s_blocks[s_count++] = malloc(size);                   \
      total -= size;                                        \
    }                                                       \
  } while (0)

__attribute__((noinline)) void site_large(void) { ALLOCATE_TOTAL((size_t)64 << 20); }
__attribute__((noinline)) void site_medium(void) { ALLOCATE_TOTAL((size_t)16 << 20); }
__attribute__((noinline)) void site_small(void) { ALLOCATE_TOTAL((size_t)4 << 20); }

int main(void) {
  s_blocks = malloc(sizeof(void*) * kMaxBlocks);
  site_large();
  site_medium();
  site_small();
  return s_count == 0;
}
