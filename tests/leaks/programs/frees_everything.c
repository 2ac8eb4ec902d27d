// Frees everything it allocates: zero leaks on both sides.
#include <stdlib.h>
#include <string.h>

int main(void) {
  void* blocks[8];
  for (int i = 0; i < 8; ++i) blocks[i] = malloc(22022 + i);
  char* copy = strdup("frees_everything");
  void* aligned = NULL;
  if (posix_memalign(&aligned, 64, 22222) != 0) return 1;
  blocks[3] = realloc(blocks[3], 44044);
  free(aligned);
  free(copy);
  for (int i = 0; i < 8; ++i) free(blocks[i]);
  return 0;
}
