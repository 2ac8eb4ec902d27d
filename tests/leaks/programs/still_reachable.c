// Still-reachable blocks: a global pointer to a block (19009) and a static table of two blocks (19109 x2),
// which valgrind calls "still reachable" and memtide counts as not freed at exit, like any other.
#include <stdlib.h>

char* g_global_block;
static char* s_table[2];

__attribute__((noinline)) void make_global(void) { g_global_block = malloc(19009); }

__attribute__((noinline)) void fill_table(void) {
  for (int i = 0; i < 2; ++i) s_table[i] = malloc(19109);
}

int main(void) {
  make_global();
  fill_table();
  return s_table[0] == NULL;
}
