// The rest of the allocation family: calloc (3 x 8675 = 26025), posix_memalign(64, 26026),
// aligned_alloc(128, 26112), memalign(256, 26030) and strdup of a 26027-character string (26028 bytes).
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void* volatile g_sink;

__attribute__((noinline)) void leak_calloc(void) { g_sink = calloc(3, 8675); }

__attribute__((noinline)) void leak_posix_memalign(void) {
  void* block = NULL;
  if (posix_memalign(&block, 64, 26026) == 0) g_sink = block;
}

__attribute__((noinline)) void leak_aligned_alloc(void) { g_sink = aligned_alloc(128, 26112); }

__attribute__((noinline)) void leak_memalign(void) { g_sink = memalign(256, 26030); }

__attribute__((noinline)) void leak_strdup(const char* text) { g_sink = strdup(text); }

int main(void) {
  char* text = malloc(26028);
  memset(text, 'x', 26027);
  text[26027] = '\0';
  leak_calloc();
  leak_posix_memalign();
  leak_aligned_alloc();
  leak_memalign();
  leak_strdup(text);
  free(text);
  g_sink = NULL;
  return 0;
}
