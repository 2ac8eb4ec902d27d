/* A process that never touches CUDA: memtide must not load anything or keep any GPU state for it. */
#include <dlfcn.h>
#include <link.h>
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int FindCuda(struct dl_phdr_info *info, size_t size, void *found) {
  (void)size;
  if (strstr(info->dlpi_name, "cuda") != NULL) {
    *(const char **)found = info->dlpi_name;
    return 1;
  }
  return 0;
}

int main(void) {
  if (memtide_get_gpu_stats == NULL) {
    fprintf(stderr, "not under memtide\n");
    return 1;
  }
  void *volatile block = malloc(12345);
  free(block);
  /* Ordinary lookups, including RTLD_DEFAULT, are the program's own. */
  if (dlsym(RTLD_DEFAULT, "printf") == NULL) return 1;
  const char *found = NULL;
  dl_iterate_phdr(FindCuda, &found);
  if (found != NULL) {
    fprintf(stderr, "a CUDA library is loaded: %s\n", found);
    return 1;
  }
  struct memtide_gpu_stats stats;
  if (memtide_get_gpu_stats(0, &stats) != -1 || stats.ordinal != -1 || stats.current_bytes != 0) {
    fprintf(stderr, "GPU state in a process without CUDA\n");
    return 1;
  }
  /* memtide's exports of driver names must not pretend a driver is there. */
  dlerror();
  if (dlsym(RTLD_DEFAULT, "cuMemAlloc_v2") != NULL || dlerror() == NULL) {
    fprintf(stderr, "dlsym(RTLD_DEFAULT, cuMemAlloc_v2) must fail without a driver\n");
    return 1;
  }
  if (dlsym(dlopen(NULL, RTLD_NOW), "cuGetProcAddress_v2") != NULL || dlerror() == NULL) {
    fprintf(stderr, "dlsym(dlopen(NULL), cuGetProcAddress_v2) must fail without a driver\n");
    return 1;
  }
  printf("ok\n");
  return 0;
}
