// Built twice (tests/leaks/CMakeLists.txt) for dlopen_replaced: libreplaced_a.so with REPLACED_NAME
// replaced_a_leak and REPLACED_SIZE 18008, libreplaced_b.so with replaced_b_leak and 19009. Names of one
// length and sizes of one encoding keep the two files' code at the same offsets.
#include <stdlib.h>

void* g_replaced_sink;

__attribute__((noinline)) void REPLACED_NAME(void) { g_replaced_sink = malloc(REPLACED_SIZE); }
