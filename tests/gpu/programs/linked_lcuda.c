/* Linked with -lcuda (the fake): every driver call goes through the program's PLT, which the dynamic
 * linker binds to memtide's exported `cu*` functions (memtide is preloaded, so it comes first). Each
 * wrapper finds the driver's function lazily. Also: cuGetProcAddress_v2 called directly through the PLT. */
#include <stdint.h>

#include "gpu_check.h"

int main(void) {
  GpuRequirePreload();
  GpuBindFake();
  GPU_CHECK(GpuIsMemtide((void *)&cuMemAlloc_v2), "cuMemAlloc_v2 must bind to memtide's export");
  GPU_CHECK(!GpuIsMemtide((void *)&cuInit), "cuInit is not wrapped and must bind to the driver");
  GPU_CHECK_OK(cuInit(0));
  /* With the driver in the global scope, lookups of the exported names find the same wrappers the PLT uses. */
  GPU_CHECK(dlsym(RTLD_DEFAULT, "cuMemAlloc_v2") == (void *)&cuMemAlloc_v2, "dlsym(RTLD_DEFAULT, cuMemAlloc_v2)");
  GPU_CHECK(dlsym(RTLD_NEXT, "cuMemFree_v2") == (void *)&cuMemFree_v2, "dlsym(RTLD_NEXT, cuMemFree_v2)");
  GPU_CHECK(!GpuIsMemtide(dlsym(RTLD_DEFAULT, "cuCtxGetDevice")), "unwrapped names are the driver's");

  CUdeviceptr a = 0, b = 0;
  GPU_CHECK_OK(cuMemAlloc_v2(&a, 11 << 20));
  GpuExpectMatchesDriver(0, "cuMemAlloc_v2 through the PLT");
  GPU_CHECK_EQ("current", GpuStats(0).current_bytes, 11 << 20);
  GPU_CHECK_OK(cuMemAllocAsync_ptsz(&b, 1 << 20, NULL));
  GPU_CHECK_EQ("cuMemAllocAsync_ptsz reached", FakeCalls("cuMemAllocAsync_ptsz"), 1);
  GpuExpectMatchesDriver(0, "cuMemAllocAsync_ptsz through the PLT");
  GPU_CHECK_OK(cuMemFreeAsync_ptsz(b, NULL));
  void *pinned = NULL;
  GPU_CHECK_OK(cuMemHostAlloc(&pinned, 2 << 20, 0));
  GpuExpectMatchesDriver(0, "cuMemHostAlloc through the PLT");

  /* cuGetProcAddress_v2 through the PLT: its answers are substituted too, one wrapper per exact symbol. */
  void *alloc = NULL;
  GPU_CHECK_OK(cuGetProcAddress_v2("cuMemAlloc", &alloc, 12000, 0, NULL));
  GPU_CHECK(alloc == (void *)&cuMemAlloc_v2, "cuGetProcAddress must hand out the same wrapper the PLT binds to");
  CUdeviceptr c = 0;
  GPU_CHECK_OK(((CUresult(*)(CUdeviceptr *, size_t))alloc)(&c, 3 << 20));
  GpuExpectMatchesDriver(0, "cuMemAlloc_v2 through cuGetProcAddress_v2");
  GPU_CHECK_EQ("one call each", FakeCalls("cuMemAlloc_v2"), 2);

  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  CUmemGenericAllocationHandle handle = 0;
  GPU_CHECK_OK(cuMemCreate(&handle, 4 << 20, &prop, 0));
  GpuExpectMatchesDriver(0, "cuMemCreate through the PLT");
  GPU_CHECK_OK(cuMemRelease(handle));
  GPU_CHECK_OK(cuMemFree_v2(a));
  GPU_CHECK_OK(cuMemFree_v2(c));
  GPU_CHECK_OK(cuMemFreeHost(pinned));
  GpuExpectMatchesDriver(0, "everything freed");
  struct memtide_gpu_stats s = GpuStats(0);
  GPU_CHECK_EQ("peak", s.peak_bytes, 18 << 20);
  GPU_CHECK_EQ("allocations", s.allocations, 5);
  GPU_CHECK_EQ("frees", s.frees, 5);
  GPU_CHECK_EQ("unknown frees", s.unknown_frees, 0);
  printf("ok\n");
  return 0;
}
