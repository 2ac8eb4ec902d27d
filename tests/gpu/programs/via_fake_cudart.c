/* A program built on a CUDA runtime (the fake libcudart.so.13, which reaches the fake driver exactly like the
 * real runtime): each runtime allocation must be counted once, at the driver layer. Also the path PyTorch's
 * expandable segments take to cuMemCreate (cudaGetDriverEntryPointByVersion). */
#include <stdint.h>

#include "gpu_check.h"

int cudaMalloc(void **p, size_t size);
int cudaFree(void *p);
int cudaMallocAsync(void **p, size_t size, void *stream);
int cudaMallocAsync_ptsz(void **p, size_t size, void *stream);
int cudaFreeAsync(void *p, void *stream);
int cudaFreeAsync_ptsz(void *p, void *stream);
int cudaHostAlloc(void **p, size_t size, unsigned int flags);
int cudaMallocHost(void **p, size_t size);
int cudaFreeHost(void *p);
int cudaMallocManaged(void **p, size_t size, unsigned int flags);
int cudaGetDriverEntryPointByVersion(const char *symbol, void **function, unsigned int version,
                                     unsigned long long flags, int *status);

int main(void) {
  GpuRequirePreload();
  void *a = NULL, *b = NULL, *c = NULL, *host = NULL, *host2 = NULL, *managed = NULL;
  GPU_CHECK(cudaMalloc(&a, 40 << 20) == 0, "cudaMalloc");
  GpuBindFake(); /* the runtime loaded the driver */
  GpuExpectMatchesDriver(0, "cudaMalloc");
  GPU_CHECK_EQ("cudaMalloc counted once", GpuStats(0).current_bytes, 40 << 20);
  GPU_CHECK(cudaMallocAsync(&b, 8 << 20, NULL) == 0, "cudaMallocAsync");
  GPU_CHECK(cudaMallocAsync_ptsz(&c, 2 << 20, NULL) == 0, "cudaMallocAsync_ptsz");
  GPU_CHECK_EQ("reached cuMemAllocAsync", FakeCalls("cuMemAllocAsync"), 1);
  GPU_CHECK_EQ("reached cuMemAllocAsync_ptsz", FakeCalls("cuMemAllocAsync_ptsz"), 1);
  GpuExpectMatchesDriver(0, "cudaMallocAsync");
  GPU_CHECK(cudaHostAlloc(&host, 1 << 20, 0) == 0 && cudaMallocHost(&host2, 1 << 20) == 0, "pinned");
  GPU_CHECK(cudaMallocManaged(&managed, 4 << 20, 1) == 0, "managed");
  GpuExpectMatchesDriver(0, "pinned and managed");

  typedef CUresult (*MemCreate)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
                                unsigned long long);
  typedef CUresult (*MemRelease)(CUmemGenericAllocationHandle);
  MemCreate create = NULL;
  MemRelease release = NULL;
  int status = -1;
  GPU_CHECK(cudaGetDriverEntryPointByVersion("cuMemCreate", (void **)&create, 12000, 0, &status) == 0 && status == 0,
            "cudaGetDriverEntryPointByVersion(cuMemCreate)");
  GPU_CHECK(cudaGetDriverEntryPointByVersion("cuMemRelease", (void **)&release, 12000, 0, NULL) == 0, "cuMemRelease");
  GPU_CHECK(GpuIsMemtide((void *)create), "cuMemCreate from the runtime's entry-point query must be wrapped");
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  CUmemGenericAllocationHandle handle = 0;
  GPU_CHECK_OK(create(&handle, 6 << 20, &prop, 0));
  GpuExpectMatchesDriver(0, "expandable segment");
  GPU_CHECK_EQ("peak", GpuStats(0).peak_bytes, 56 << 20);
  GPU_CHECK_OK(release(handle));

  GPU_CHECK(cudaFreeAsync(b, NULL) == 0 && cudaFreeAsync_ptsz(c, NULL) == 0 && cudaFree(a) == 0, "frees");
  GPU_CHECK(cudaFreeHost(host) == 0 && cudaFreeHost(host2) == 0 && cudaFree(managed) == 0, "frees");
  GpuExpectMatchesDriver(0, "everything freed");
  struct memtide_gpu_stats s = GpuStats(0);
  GPU_CHECK_EQ("allocations", s.allocations, 7);
  GPU_CHECK_EQ("frees", s.frees, 7);
  GPU_CHECK_EQ("unknown frees", s.unknown_frees, 0);
  printf("ok\n");
  return 0;
}
