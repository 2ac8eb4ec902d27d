/* fork: the child starts GPU counting afresh (it cannot use the parent's CUDA state anyway); the parent's
 * counters are untouched by whatever the child does. */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver_setup.h"

typedef CUresult (*MemAlloc)(CUdeviceptr *, size_t);
typedef CUresult (*MemFree)(CUdeviceptr);

int main(void) {
  GpuRequirePreload();
  PFN_cuGetProcAddress_v2 gpa = DriverSetup();
  MemAlloc mem_alloc = (MemAlloc)DriverGet(gpa, "cuMemAlloc", 3020, 0);
  MemFree mem_free = (MemFree)DriverGet(gpa, "cuMemFree", 3020, 0);
  CUdeviceptr a = 0;
  GPU_CHECK_OK(mem_alloc(&a, 1 << 20));
  fflush(NULL);
  pid_t child = fork();
  GPU_CHECK(child >= 0, "fork");
  if (child == 0) {
    GPU_CHECK(GpuStats(0).ordinal == -1, "the child must start with no GPU state");
    CUdeviceptr b = 0;
    GPU_CHECK_OK(mem_alloc(&b, 4096));
    struct memtide_gpu_stats s = GpuStats(0);
    GPU_CHECK_EQ("child current", s.current_bytes, 4096);
    GPU_CHECK_EQ("child peak", s.peak_bytes, 4096);
    GPU_CHECK_OK(mem_free(a)); /* the parent's block: unknown here */
    GPU_CHECK_EQ("child unknown frees", GpuStats(0).unknown_frees, 1);
    GPU_CHECK_EQ("child current after the unknown free", GpuStats(0).current_bytes, 4096);
    printf("child ok\n");
    fflush(NULL);
    _exit(0);
  }
  int status = 0;
  GPU_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
  struct memtide_gpu_stats s = GpuStats(0);
  GPU_CHECK_EQ("parent current", s.current_bytes, 1 << 20);
  GPU_CHECK_EQ("parent unknown frees", s.unknown_frees, 0);
  GPU_CHECK_OK(mem_free(a));
  printf("parent ok\n");
  return 0;
}
