// realloc chains: grow_and_leak grows one block 100 -> 1000 -> 10000 -> 18008 and leaks the last;
// grow_and_free grows another and frees it; shrink_and_leak shrinks 50000 -> 18108 and leaks it.
// realloc(NULL, n) and realloc(p, 0) are in the chain too.
#include <stdlib.h>

void* volatile g_sink;

__attribute__((noinline)) void grow_and_leak(void) {
  char* block = realloc(NULL, 100);
  block = realloc(block, 1000);
  block = realloc(block, 10000);
  block = realloc(block, 18008);
  g_sink = block;
}

__attribute__((noinline)) void grow_and_free(void) {
  char* block = malloc(200);
  for (size_t size = 400; size <= 51200; size *= 2) block = realloc(block, size);
  free(block);
}

__attribute__((noinline)) void shrink_and_leak(void) {
  char* block = malloc(50000);
  block = realloc(block, 18108);
  g_sink = block;
}

int main(void) {
  grow_and_leak();
  grow_and_free();
  shrink_and_leak();
  g_sink = NULL;
  return 0;
}
