/* A fake CUDA runtime (libcudart.so.13) that reaches the driver exactly the way the real one does
 * (research/CUDA.md §1.1): no NEEDED libcuda; dlopen("libcuda.so.1", RTLD_NOW) in local scope,
 * dlsym(h, "cuGetProcAddress_v2"), an empty-name probe, cuInit, the self-query for "cuGetProcAddress" at
 * 11030 and 12000, then every driver function through the self-queried pointer, per-thread variants
 * included. The runtime API on top maps one call to one driver call, as cudart does, so the tests can
 * check that each runtime allocation is counted exactly once. */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#include "fake_cuda.h"

#define EXPORT __attribute__((visibility("default")))

typedef int cudaError_t;
typedef void *cudaStream_t;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static PFN_cuGetProcAddress_v2 g_gpa;
static int g_ready;
static CUresult (*g_alloc)(CUdeviceptr *, size_t);
static CUresult (*g_free)(CUdeviceptr);
static CUresult (*g_alloc_async)(CUdeviceptr *, size_t, CUstream);
static CUresult (*g_alloc_async_ptsz)(CUdeviceptr *, size_t, CUstream);
static CUresult (*g_free_async)(CUdeviceptr, CUstream);
static CUresult (*g_free_async_ptsz)(CUdeviceptr, CUstream);
static CUresult (*g_host_alloc)(void **, size_t, unsigned int);
static CUresult (*g_free_host)(void *);
static CUresult (*g_alloc_managed)(CUdeviceptr *, size_t, unsigned int);

static void *Get(const char *name, int version, cuuint64_t flags) {
  void *function = NULL;
  return g_gpa(name, &function, version, flags, NULL) == CUDA_SUCCESS ? function : NULL;
}

static void Initialize(void) {
  void *driver = dlopen("libcuda.so.1", RTLD_NOW);
  if (driver == NULL) return;
  PFN_cuGetProcAddress_v2 gpa = (PFN_cuGetProcAddress_v2)dlsym(driver, "cuGetProcAddress_v2");
  if (gpa == NULL) return;
  void *function = NULL;
  gpa("", &function, 0, 0, NULL);
  if (gpa("cuInit", &function, 2000, 0, NULL) != CUDA_SUCCESS) return;
  ((CUresult(*)(unsigned int))function)(0);
  void *gpa_11030 = NULL;
  gpa("cuGetProcAddress", &gpa_11030, 11030, 0, NULL);
  if (gpa("cuGetProcAddress", (void **)&g_gpa, 12000, 0, NULL) != CUDA_SUCCESS) return;
  *(void **)&g_alloc = Get("cuMemAlloc", 3020, 0);
  *(void **)&g_free = Get("cuMemFree", 3020, 0);
  *(void **)&g_alloc_async = Get("cuMemAllocAsync", 11020, CU_GET_PROC_ADDRESS_DEFAULT);
  *(void **)&g_alloc_async_ptsz = Get("cuMemAllocAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  *(void **)&g_free_async = Get("cuMemFreeAsync", 11020, CU_GET_PROC_ADDRESS_DEFAULT);
  *(void **)&g_free_async_ptsz = Get("cuMemFreeAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  *(void **)&g_host_alloc = Get("cuMemHostAlloc", 2020, 0);
  *(void **)&g_free_host = Get("cuMemFreeHost", 2000, 0);
  *(void **)&g_alloc_managed = Get("cuMemAllocManaged", 6000, 0);
  /* Like cudart, resolve many more functions than the program will use. */
  static const char *const kOthers[] = {"cuDeviceGet", "cuDeviceGetCount", "cuCtxGetDevice", "cuCtxSetCurrent",
                                        "cuMemGetInfo", "cuStreamIsCapturing", "cuMemAllocPitch", "cuArrayCreate",
                                        "cuArray3DCreate", "cuArrayDestroy", "cuMemHostRegister"};
  for (size_t i = 0; i < sizeof(kOthers) / sizeof(kOthers[0]); ++i) Get(kOthers[i], 12000, 0);
  g_ready = 1;
}

static int Ready(void) {
  pthread_once(&g_once, Initialize);
  return g_ready;
}

#define CHECKED(call) (Ready() ? (call) : CUDA_ERROR_NOT_INITIALIZED)

EXPORT cudaError_t cudaMalloc(void **p, size_t size) { return CHECKED(g_alloc((CUdeviceptr *)p, size)); }
EXPORT cudaError_t cudaFree(void *p) { return CHECKED(p == NULL ? 0 : g_free((CUdeviceptr)p)); }
EXPORT cudaError_t cudaMallocAsync(void **p, size_t size, cudaStream_t s) {
  return CHECKED(g_alloc_async((CUdeviceptr *)p, size, s));
}
EXPORT cudaError_t cudaMallocAsync_ptsz(void **p, size_t size, cudaStream_t s) {
  return CHECKED(g_alloc_async_ptsz((CUdeviceptr *)p, size, s));
}
EXPORT cudaError_t cudaFreeAsync(void *p, cudaStream_t s) { return CHECKED(g_free_async((CUdeviceptr)p, s)); }
EXPORT cudaError_t cudaFreeAsync_ptsz(void *p, cudaStream_t s) {
  return CHECKED(g_free_async_ptsz((CUdeviceptr)p, s));
}
EXPORT cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int flags) {
  return CHECKED(g_host_alloc(p, size, flags));
}
EXPORT cudaError_t cudaMallocHost(void **p, size_t size) { return CHECKED(g_host_alloc(p, size, 0)); }
EXPORT cudaError_t cudaFreeHost(void *p) { return CHECKED(g_free_host(p)); }
EXPORT cudaError_t cudaMallocManaged(void **p, size_t size, unsigned int flags) {
  return CHECKED(g_alloc_managed((CUdeviceptr *)p, size, flags));
}
/* PyTorch's expandable segments resolve cuMemCreate & co. this way (c10/cuda/driver_api.cpp). */
EXPORT cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **function, unsigned int version,
                                                    unsigned long long flags, int *status) {
  return CHECKED(g_gpa(symbol, function, (int)version, flags, status));
}
