// Direct leaks from distinct functions, next to blocks that are freed (which must not be reported).
// Sentinels: leak_one 11001 x1, leak_two 12002 x2, leak_three 13003 x3.
#include <stdlib.h>

void* volatile g_sink;  // keeps the compiler from reasoning about the pointers

__attribute__((noinline)) void leak_one(void) { g_sink = malloc(11001); }

__attribute__((noinline)) void leak_two(void) {
  for (int i = 0; i < 2; ++i) g_sink = malloc(12002);
}

__attribute__((noinline)) void leak_three(void) {
  for (int i = 0; i < 3; ++i) g_sink = malloc(13003);
}

__attribute__((noinline)) void allocate_and_free(void) {
  for (int i = 0; i < 4; ++i) free(malloc(10001 + i));
}

int main(void) {
  allocate_and_free();
  leak_one();
  leak_two();
  leak_three();
  g_sink = NULL;
  return 0;
}
