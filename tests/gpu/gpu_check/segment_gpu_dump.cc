// scripts/gpu-check: prints the GPU part of a kept stats segment without the memtide CLI (which needs
// libraries a GPU machine may not have): one line per device, "SEGMENT ordinal=… current=… …".
// Built by the check (c++) with the project's include/memtide/segment.h.
#include <memtide/segment.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  static memtide::Segment segment;
  FILE *file = argc == 2 ? fopen(argv[1], "rb") : NULL;
  if (file == NULL || fread(&segment, 1, sizeof(segment), file) != sizeof(segment)) {
    fprintf(stderr, "cannot read a whole segment from %s\n", argc == 2 ? argv[1] : "(no file given)");
    return 1;
  }
  if (memcmp(segment.magic, MEMTIDE_SEGMENT_MAGIC, sizeof(segment.magic)) != 0 ||
      segment.version != MEMTIDE_SEGMENT_VERSION || segment.total_bytes != sizeof(segment)) {
    fprintf(stderr, "%s is not a segment of this memtide version\n", argv[1]);
    return 1;
  }
  unsigned count = segment.gpu_device_count < MEMTIDE_SEGMENT_GPU_DEVICES ? segment.gpu_device_count
                                                                           : MEMTIDE_SEGMENT_GPU_DEVICES;
  printf("SEGMENT_DEVICES count=%u state=%u\n", count, segment.state);
  for (unsigned i = 0; i < count; ++i) {
    const memtide::SegmentGpuDevice *g = &segment.gpu[i];
    printf("SEGMENT ordinal=%d current=%lld peak=%lld allocations=%llu frees=%llu unknown_frees=%llu\n", g->ordinal,
           (long long)g->device_current_bytes, (long long)g->device_peak_bytes, (unsigned long long)g->allocations,
           (unsigned long long)g->frees, (unsigned long long)g->unknown_frees);
  }
  return 0;
}
