// A realloc chain from one call site that leaks its last block (21071 bytes): the leak's example sizes must be
// the leaked block's, not the sizes the stack allocated first (100, 200, 300).
#include <stdlib.h>

void* g_lost;

__attribute__((noinline)) void GrowAndLose(void) {
  void* block = NULL;
  size_t sizes[] = {100, 200, 300, 21071};
  for (int i = 0; i < 4; ++i) block = realloc(block, sizes[i]);
  g_lost = block;
  g_lost = NULL;
}

int main(void) {
  GrowAndLose();
  return 0;
}
