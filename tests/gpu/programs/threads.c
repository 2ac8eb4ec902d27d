/* 16 threads allocate and free concurrently through the wrappers (half on device 1, half through the
 * per-thread-stream async variant): counts stay exact, nothing is lost or counted twice. */
#include <pthread.h>
#include <stdint.h>

#include "driver_setup.h"

#define THREADS 16
#define ROUNDS 500

typedef CUresult (*MemAlloc)(CUdeviceptr *, size_t);
typedef CUresult (*MemFree)(CUdeviceptr);
typedef CUresult (*MemAllocAsync)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*MemFreeAsync)(CUdeviceptr, CUstream);
typedef CUresult (*CtxSetCurrent)(CUcontext);

static MemAlloc g_alloc;
static MemFree g_free;
static MemAllocAsync g_alloc_async;
static MemFreeAsync g_free_async;
static CtxSetCurrent g_set_current;

static void *Work(void *argument) {
  intptr_t index = (intptr_t)argument;
  size_t bytes = 4096 * (size_t)(index + 1);
  if (index % 2 == 1) g_set_current((CUcontext)(uintptr_t)2);
  for (int round = 0; round < ROUNDS; ++round) {
    CUdeviceptr p = 0;
    if (index % 4 < 2) {
      if (g_alloc(&p, bytes) != CUDA_SUCCESS || g_free(p) != CUDA_SUCCESS) return (void *)1;
    } else {
      if (g_alloc_async(&p, bytes, NULL) != CUDA_SUCCESS || g_free_async(p, NULL) != CUDA_SUCCESS) return (void *)1;
    }
  }
  return NULL;
}

int main(void) {
  GpuRequirePreload();
  PFN_cuGetProcAddress_v2 gpa = DriverSetup();
  g_alloc = (MemAlloc)DriverGet(gpa, "cuMemAlloc", 3020, 0);
  g_free = (MemFree)DriverGet(gpa, "cuMemFree", 3020, 0);
  g_alloc_async = (MemAllocAsync)DriverGet(gpa, "cuMemAllocAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  g_free_async = (MemFreeAsync)DriverGet(gpa, "cuMemFreeAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  g_set_current = (CtxSetCurrent)DriverGet(gpa, "cuCtxSetCurrent", 4000, 0);
  pthread_t threads[THREADS];
  for (intptr_t i = 0; i < THREADS; ++i) pthread_create(&threads[i], NULL, Work, (void *)i);
  for (int i = 0; i < THREADS; ++i) {
    void *result = NULL;
    pthread_join(threads[i], &result);
    GPU_CHECK(result == NULL, "thread %d failed", i);
  }
  long long bound[2] = {0, 0};
  for (int i = 0; i < THREADS; ++i) bound[i % 2] += 4096LL * (i + 1);
  for (int device = 0; device < 2; ++device) {
    GpuExpectMatchesDriver(device, "after the threads");
    struct memtide_gpu_stats s = GpuStats(device);
    GPU_CHECK_EQ("current", s.current_bytes, 0);
    GPU_CHECK_EQ("allocations", s.allocations, THREADS / 2 * ROUNDS);
    GPU_CHECK_EQ("frees", s.frees, THREADS / 2 * ROUNDS);
    GPU_CHECK_EQ("unknown frees", s.unknown_frees, 0);
    GPU_CHECK(s.peak_bytes > 0 && (long long)s.peak_bytes <= bound[device], "peak %llu out of (0, %lld]",
              (unsigned long long)s.peak_bytes, bound[device]);
  }
  printf("ok\n");
  return 0;
}
