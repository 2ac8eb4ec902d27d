// Memory per live allocation under full tracing (run_bench.py's tracing memory row): allocates --blocks
// blocks of --size bytes from a handful of call sites (a small stack depot, as in real programs), keeps them
// all live, then frees them. The driver compares max RSS with tracing off and full: the difference divided by
// the block count is what the tracer keeps per live block (its table), the depot being a few stacks here.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void** g_blocks;

__attribute__((noinline)) static void FillFrom(size_t begin, size_t end, size_t size) {
  for (size_t i = begin; i < end; ++i) {
    g_blocks[i] = malloc(size);
    ((char*)g_blocks[i])[0] = (char)i;
  }
}

int main(int argc, char** argv) {
  size_t blocks = 1000000, size = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--blocks") == 0) blocks = strtoull(argv[i + 1], NULL, 10);
    if (strcmp(argv[i], "--size") == 0) size = strtoull(argv[i + 1], NULL, 10);
  }
  // The pointer array itself is mmap'ed by glibc (it is large), the same in every configuration.
  g_blocks = malloc(blocks * sizeof(void*));
  if (g_blocks == NULL) return 1;
  for (int site = 0; site < 4; ++site) FillFrom(blocks * site / 4, blocks * (site + 1) / 4, size);
  long checksum = 0;
  for (size_t i = 0; i < blocks; ++i) checksum += ((char*)g_blocks[i])[0];
  for (size_t i = 0; i < blocks; ++i) free(g_blocks[i]);
  free(g_blocks);
  printf("live_blocks %zu\nchecksum %ld\n", blocks, checksum);
  return 0;
}
