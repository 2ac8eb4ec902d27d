// tracemalloc-style snapshots from the C API: snapshot to argv[1], allocate 10 x 21051 bytes in
// GrowOnce() (kept live), snapshot to argv[2]. `memtide diff` of the two must show +210510 bytes, +10 blocks
// at GrowOnce and nothing else of note. Prints each memtide_snapshot() result.
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>

void* g_kept[10];

__attribute__((noinline)) void GrowOnce(void) {
  for (int i = 0; i < 10; ++i) g_kept[i] = malloc(21051);
}

int main(int argc, char** argv) {
  if (argc < 3 || !memtide_snapshot) return 2;
  int first = memtide_snapshot(argv[1]);
  GrowOnce();
  int second = memtide_snapshot(argv[2]);
  printf("snapshots %d %d\n", first, second);
  for (int i = 0; i < 10; ++i) free(g_kept[i]);
  return 0;
}
