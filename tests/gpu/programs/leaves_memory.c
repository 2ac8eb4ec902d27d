/* Linked with -lcuda. Leaves device memory live at exit on two devices (and pinned host memory), after a
 * higher peak on device 0, for the report, `memtide show` and --max-gpu-peak. Prints its pid. */
#include <stdint.h>
#include <unistd.h>

#include "gpu_check.h"

int main(void) {
  GpuRequirePreload();
  GPU_CHECK_OK(cuInit(0));
  CUdeviceptr kept0 = 0, kept1 = 0, temporary = 0;
  void *pinned = NULL;
  GPU_CHECK_OK(cuMemAlloc_v2(&kept0, 3 << 20));
  GPU_CHECK_OK(cuMemAlloc_v2(&temporary, 8 << 20));
  GPU_CHECK_OK(cuMemFree_v2(temporary));
  GPU_CHECK_OK(cuMemHostAlloc(&pinned, 2 << 20, 0));
  GPU_CHECK_OK(cuCtxSetCurrent((CUcontext)(uintptr_t)2));
  GPU_CHECK_OK(cuMemAlloc_v2(&kept1, 1 << 20));
  printf("pid=%d\n", (int)getpid());
  return 0;
}
