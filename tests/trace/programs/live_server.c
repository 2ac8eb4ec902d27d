// A long-running process for `memtide snapshot PID`: keeps 3 blocks of 21061 bytes from HoldBlocks(), writes
// argv[1] when ready, then waits (up to 20 s) until argv[2] exists and exits.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void* g_held[3];

__attribute__((noinline)) void HoldBlocks(void) {
  for (int i = 0; i < 3; ++i) g_held[i] = malloc(21061);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  HoldBlocks();
  FILE* ready = fopen(argv[1], "w");
  if (ready == NULL) return 3;
  fclose(ready);
  for (int i = 0; i < 2000 && access(argv[2], F_OK) != 0; ++i) usleep(10000);
  for (int i = 0; i < 3; ++i) free(g_held[i]);
  return 0;
}
