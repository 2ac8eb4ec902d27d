/* Reaches the (fake) driver the way XLA's TSL stubs and cuBLASLt do: dlopen("libcuda.so.1") and one
 * dlsym(handle, exact name) per function, no cuGetProcAddress. Also through a dlsym reference bound to the
 * old symbol version dlsym@GLIBC_2.2.5 (binaries built against glibc < 2.34, CUDA's own libraries). */
#include <stdint.h>

#include "gpu_check.h"

#if defined(__x86_64__)
/* A reference to the pre-2.34 version of dlsym, as older binaries have. */
void *old_dlsym(void *handle, const char *name);
__asm__(".symver old_dlsym, dlsym@GLIBC_2.2.5");
#define HAVE_OLD_DLSYM 1
#endif

typedef CUresult (*MemAlloc)(CUdeviceptr *, size_t);
typedef CUresult (*MemFree)(CUdeviceptr);
typedef CUresult (*MemCreate)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
typedef CUresult (*MemRelease)(CUmemGenericAllocationHandle);
typedef CUresult (*MemHostAlloc)(void **, size_t, unsigned int);
typedef CUresult (*MemFreeHost)(void *);

static void *Sym(void *driver, const char *name) {
  void *function = dlsym(driver, name);
  GPU_CHECK(function != NULL, "dlsym(%s): %s", name, dlerror());
  return function;
}

int main(void) {
  GpuRequirePreload();
  void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  GPU_CHECK(driver != NULL, "dlopen: %s", dlerror());
  GpuBindFake();
  ((CUresult(*)(unsigned int))Sym(driver, "cuInit"))(0);
  MemAlloc mem_alloc = (MemAlloc)Sym(driver, "cuMemAlloc_v2");
  MemFree mem_free = (MemFree)Sym(driver, "cuMemFree_v2");
  MemCreate mem_create = (MemCreate)Sym(driver, "cuMemCreate");
  MemRelease mem_release = (MemRelease)Sym(driver, "cuMemRelease");
  MemHostAlloc host_alloc = (MemHostAlloc)Sym(driver, "cuMemHostAlloc");
  MemFreeHost free_host = (MemFreeHost)Sym(driver, "cuMemFreeHost");
  GPU_CHECK(GpuIsMemtide((void *)mem_alloc) && GpuIsMemtide((void *)mem_create), "dlsym answers must be wrapped");
  GPU_CHECK(!GpuIsMemtide(Sym(driver, "cuCtxGetDevice")), "unwrapped names keep the driver's pointer");
  GPU_CHECK(Sym(driver, "cuMemAlloc_v2") == (void *)mem_alloc, "the same wrapper every time");

  /* A failed lookup of a `cu*` name on a handle: NULL, and dlerror says so exactly once. */
  dlerror();
  GPU_CHECK(dlsym(driver, "cuNoSuchFunction") == NULL, "cuNoSuchFunction must not exist");
  const char *error = dlerror();
  GPU_CHECK(error != NULL && strstr(error, "cuNoSuchFunction") != NULL, "dlerror after a failed lookup: %s",
            error ? error : "(null)");
  GPU_CHECK(dlerror() == NULL, "dlerror must be cleared after it was read");

  CUdeviceptr a = 0;
  GPU_CHECK_OK(mem_alloc(&a, 9 << 20));
  GpuExpectMatchesDriver(0, "cuMemAlloc_v2 via dlsym");
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  CUmemGenericAllocationHandle handle = 0;
  GPU_CHECK_OK(mem_create(&handle, 20 << 20, &prop, 0));
  GpuExpectMatchesDriver(0, "cuMemCreate via dlsym (XLA's BFC pool)");
  void *staging = NULL;
  GPU_CHECK_OK(host_alloc(&staging, 1 << 20, 0));
  GpuExpectMatchesDriver(0, "cuMemHostAlloc via dlsym");
  GPU_CHECK_EQ("peak", GpuStats(0).peak_bytes, 29 << 20);

#if HAVE_OLD_DLSYM
  MemAlloc old_alloc = (MemAlloc)old_dlsym(driver, "cuMemAlloc_v2");
  GPU_CHECK(old_alloc == mem_alloc, "dlsym@GLIBC_2.2.5 must reach memtide's dlsym too");
  CUdeviceptr b = 0;
  GPU_CHECK_OK(old_alloc(&b, 1 << 20));
  GpuExpectMatchesDriver(0, "through dlsym@GLIBC_2.2.5");
  GPU_CHECK_OK(mem_free(b));
  /* RTLD_NEXT through the old binding keeps its meaning: from the program, the next malloc is memtide's. */
  GPU_CHECK(GpuIsMemtide(old_dlsym(RTLD_NEXT, "malloc")), "dlsym@GLIBC_2.2.5(RTLD_NEXT) from the program");
#endif

  GPU_CHECK_OK(free_host(staging));
  GPU_CHECK_OK(mem_release(handle));
  GPU_CHECK_OK(mem_free(a));
  GpuExpectMatchesDriver(0, "everything freed");
  GPU_CHECK_EQ("unknown frees", GpuStats(0).unknown_frees, 0);
  printf("ok\n");
  return 0;
}
