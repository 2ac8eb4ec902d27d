/* Reaches the (fake) driver the way CUDA 12/13 runtimes do (research/CUDA.md §1.1): dlopen("libcuda.so.1",
 * RTLD_NOW) in local scope, dlsym(h, "cuGetProcAddress_v2"), an empty-name probe, cuInit, the self-query for
 * "cuGetProcAddress" at 11030 and 12000 (NULL status), then every lookup through the self-queried pointer,
 * at the versions and flags cudart uses. Then every allocation family, with memtide's counters compared to
 * the driver's ground truth after each step, exact to the byte.
 *
 * Arguments: none, or "interposable" when the driver is the build without -Bsymbolic, whose cuGetProcAddress
 * hands out memtide's own exports (wrapper-as-real aliasing): the counts must still be exact, no recursion. */
#include <pthread.h>
#include <stdint.h>

#include "gpu_check.h"

typedef CUresult (*Init)(unsigned int);
typedef CUresult (*MemAlloc)(CUdeviceptr *, size_t);
typedef CUresult (*MemAllocV1)(unsigned int *, unsigned int);
typedef CUresult (*MemFree)(CUdeviceptr);
typedef CUresult (*MemFreeV1)(unsigned int);
typedef CUresult (*MemAllocPitch)(CUdeviceptr *, size_t *, size_t, size_t, unsigned int);
typedef CUresult (*MemAllocAsync)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*MemAllocFromPoolAsync)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);
typedef CUresult (*MemFreeAsync)(CUdeviceptr, CUstream);
typedef CUresult (*MemAllocManaged)(CUdeviceptr *, size_t, unsigned int);
typedef CUresult (*MemCreate)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
typedef CUresult (*MemRelease)(CUmemGenericAllocationHandle);
typedef CUresult (*MemImport)(CUmemGenericAllocationHandle *, void *, int);
typedef CUresult (*MemMap)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
typedef CUresult (*MemHostAlloc)(void **, size_t, unsigned int);
typedef CUresult (*MemAllocHost)(void **, size_t);
typedef CUresult (*MemFreeHost)(void *);
typedef CUresult (*MemHostRegister)(void *, size_t, unsigned int);
typedef CUresult (*MemHostUnregister)(void *);
typedef CUresult (*ArrayCreate)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *);
typedef CUresult (*Array3DCreate)(CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *);
typedef CUresult (*ArrayDestroy)(CUarray);
typedef CUresult (*MipmappedArrayCreate)(CUmipmappedArray *, const CUDA_ARRAY3D_DESCRIPTOR *, unsigned int);
typedef CUresult (*MipmappedArrayDestroy)(CUmipmappedArray);
typedef CUresult (*IpcOpen)(CUdeviceptr *, CUipcMemHandle, unsigned int);
typedef CUresult (*IpcClose)(CUdeviceptr);
typedef CUresult (*CtxSetCurrent)(CUcontext);
typedef CUresult (*PoolCreate)(CUmemoryPool *, const void *);
typedef CUresult (*PoolGetAttribute)(CUmemoryPool, int, void *);
typedef CUresult (*DefaultPool)(CUmemoryPool *, CUdevice);
typedef CUresult (*GraphAttribute)(CUdevice, int, void *);

static PFN_cuGetProcAddress_v2 g_gpa;

/* One lookup through the self-queried cuGetProcAddress_v2, as cudart makes it (symbolStatus NULL). */
static void *Get(const char *name, int version, cuuint64_t flags) {
  void *function = NULL;
  CUresult result = g_gpa(name, &function, version, flags, NULL);
  GPU_CHECK(result == CUDA_SUCCESS && function != NULL, "cuGetProcAddress(%s, %d, %llu) -> %d", name, version,
            (unsigned long long)flags, result);
  return function;
}

static long long Calls(const char *name) { return FakeCalls(name); }

int main(int argc, char **argv) {
  int interposable = argc > 1 && strcmp(argv[1], "interposable") == 0;
  GpuRequirePreload();

  /* ---- the lookup sequence ---- */
  void *driver = dlopen("libcuda.so.1", RTLD_NOW);
  GPU_CHECK(driver != NULL, "dlopen: %s", dlerror());
  GpuBindFake();
  PFN_cuGetProcAddress_v2 gpa_from_dlsym = (PFN_cuGetProcAddress_v2)dlsym(driver, "cuGetProcAddress_v2");
  GPU_CHECK(gpa_from_dlsym != NULL, "dlsym(cuGetProcAddress_v2): %s", dlerror());
  GPU_CHECK(GpuIsMemtide((void *)gpa_from_dlsym), "dlsym(libcuda, cuGetProcAddress_v2) was not routed to memtide");

  void *probe = (void *)1;
  GPU_CHECK(gpa_from_dlsym("", &probe, 0, 0, NULL) == CUDA_ERROR_NOT_FOUND, "empty-name probe must fail");
  GPU_CHECK(probe == NULL, "empty-name probe must clear the pointer");
  void *init = NULL;
  GPU_CHECK_OK(gpa_from_dlsym("cuInit", &init, 2000, 0, NULL));
  GPU_CHECK(!GpuIsMemtide(init), "cuInit is not wrapped and must be the driver's own");
  GPU_CHECK_OK(((Init)init)(0));

  PFN_cuGetProcAddress gpa_11030 = NULL;
  GPU_CHECK_OK(gpa_from_dlsym("cuGetProcAddress", (void **)&gpa_11030, 11030, 0, NULL));
  GPU_CHECK(GpuIsMemtide((void *)gpa_11030), "self-query at 11030 must return memtide's 4-argument wrapper");
  GPU_CHECK_OK(gpa_from_dlsym("cuGetProcAddress", (void **)&g_gpa, 12000, 0, NULL));
  GPU_CHECK(GpuIsMemtide((void *)g_gpa), "self-query at 12000 must return memtide's cuGetProcAddress_v2 wrapper");
  GPU_CHECK((void *)g_gpa != (void *)gpa_11030, "the 4- and 5-argument functions need different wrappers");
  GPU_CHECK((void *)g_gpa == (void *)gpa_from_dlsym, "one wrapper per exact symbol");

  /* A lookup through the 4-argument ABI works too and returns the same wrapper. */
  void *alloc_via_11030 = NULL;
  GPU_CHECK_OK(gpa_11030("cuMemAlloc", &alloc_via_11030, 3020, 0));

  MemAlloc mem_alloc = (MemAlloc)Get("cuMemAlloc", 3020, 0);
  MemFree mem_free = (MemFree)Get("cuMemFree", 3020, 0);
  GPU_CHECK((void *)mem_alloc == alloc_via_11030, "both cuGetProcAddress ABIs must route to one wrapper");
  GPU_CHECK(GpuIsMemtide((void *)mem_alloc), "cuMemAlloc@3020 (cuMemAlloc_v2) must be wrapped");
  /* Routing by pointer identity: version 2000 is the 32-bit cuMemAlloc, which memtide leaves alone. */
  MemAllocV1 mem_alloc_v1 = (MemAllocV1)Get("cuMemAlloc", 2000, 0);
  MemFreeV1 mem_free_v1 = (MemFreeV1)Get("cuMemFree", 2000, 0);
  GPU_CHECK(!GpuIsMemtide((void *)mem_alloc_v1), "cuMemAlloc@2000 is the v1 ABI and must not be wrapped");
  MemAllocPitch alloc_pitch = (MemAllocPitch)Get("cuMemAllocPitch", 3020, 0);
  MemAllocAsync alloc_async = (MemAllocAsync)Get("cuMemAllocAsync", 11020, CU_GET_PROC_ADDRESS_DEFAULT);
  MemAllocAsync alloc_async_ptsz =
      (MemAllocAsync)Get("cuMemAllocAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  GPU_CHECK((void *)alloc_async != (void *)alloc_async_ptsz, "cuMemAllocAsync and _ptsz need separate slots");
  MemFreeAsync free_async = (MemFreeAsync)Get("cuMemFreeAsync", 11020, 0);
  MemFreeAsync free_async_ptsz = (MemFreeAsync)Get("cuMemFreeAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  MemAllocFromPoolAsync alloc_from_pool = (MemAllocFromPoolAsync)Get("cuMemAllocFromPoolAsync", 11020, 0);
  MemAllocManaged alloc_managed = (MemAllocManaged)Get("cuMemAllocManaged", 6000, 0);
  MemCreate mem_create = (MemCreate)Get("cuMemCreate", 10020, 0);
  MemRelease mem_release = (MemRelease)Get("cuMemRelease", 10020, 0);
  MemImport mem_import = (MemImport)Get("cuMemImportFromShareableHandle", 10020, 0);
  MemMap mem_map = (MemMap)Get("cuMemMap", 10020, 0);
  MemHostAlloc host_alloc = (MemHostAlloc)Get("cuMemHostAlloc", 2020, 0);
  MemAllocHost alloc_host = (MemAllocHost)Get("cuMemAllocHost", 3020, 0);
  MemFreeHost free_host = (MemFreeHost)Get("cuMemFreeHost", 2000, 0);
  MemHostRegister host_register = (MemHostRegister)Get("cuMemHostRegister", 6050, 0);
  MemHostRegister host_register_v1 = (MemHostRegister)Get("cuMemHostRegister", 4000, 0);
  GPU_CHECK((void *)host_register != (void *)host_register_v1, "cuMemHostRegister and _v2 have separate slots");
  MemHostUnregister host_unregister = (MemHostUnregister)Get("cuMemHostUnregister", 4000, 0);
  ArrayCreate array_create = (ArrayCreate)Get("cuArrayCreate", 3020, 0);
  Array3DCreate array3d_create = (Array3DCreate)Get("cuArray3DCreate", 3020, 0);
  ArrayDestroy array_destroy = (ArrayDestroy)Get("cuArrayDestroy", 2000, 0);
  MipmappedArrayCreate mipmapped_create = (MipmappedArrayCreate)Get("cuMipmappedArrayCreate", 5000, 0);
  MipmappedArrayDestroy mipmapped_destroy = (MipmappedArrayDestroy)Get("cuMipmappedArrayDestroy", 5000, 0);
  IpcOpen ipc_open = (IpcOpen)Get("cuIpcOpenMemHandle", 11000, 0);
  IpcClose ipc_close = (IpcClose)Get("cuIpcCloseMemHandle", 4010, 0);
  CtxSetCurrent set_current = (CtxSetCurrent)Get("cuCtxSetCurrent", 4000, 0);
  PoolCreate pool_create = (PoolCreate)Get("cuMemPoolCreate", 11020, 0);
  PoolGetAttribute pool_attribute = (PoolGetAttribute)Get("cuMemPoolGetAttribute", 11020, 0);
  DefaultPool default_pool = (DefaultPool)Get("cuDeviceGetDefaultMemPool", 11020, 0);
  GraphAttribute graph_attribute = (GraphAttribute)Get("cuDeviceGetGraphMemAttribute", 11040, 0);
  /* A version below the first one of a symbol: not found, status left alone when NULL. */
  void *too_old = NULL;
  GPU_CHECK(g_gpa("cuMemAllocAsync", &too_old, 11000, 0, NULL) == CUDA_ERROR_NOT_FOUND && too_old == NULL,
            "cuMemAllocAsync@11000 must not exist");

  GPU_CHECK(GpuStats(0).ordinal == -1, "nothing allocated yet: device 0 must be unknown to memtide");

  /* ---- device memory ---- */
  CUdeviceptr a = 0, b = 0, c = 0;
  GPU_CHECK_OK(mem_alloc(&a, 64 << 20));
  GpuExpectMatchesDriver(0, "cuMemAlloc_v2 64 MiB");
  GPU_CHECK_EQ("current after 64 MiB", GpuStats(0).current_bytes, 64 << 20);
  struct memtide_gpu_stats s = GpuStats(0);
  GPU_CHECK(s.ordinal == 0 && s.uuid[0] == 0 && s.uuid[15] == 15, "device 0 must carry the driver's UUID");
  GPU_CHECK_OK(alloc_async(&b, 32 << 20, NULL));
  GpuExpectMatchesDriver(0, "cuMemAllocAsync 32 MiB");
  GPU_CHECK_EQ("peak after 64+32 MiB", GpuStats(0).peak_bytes, 96 << 20);
  GPU_CHECK_EQ("calls of cuMemAllocAsync", Calls("cuMemAllocAsync"), 1);
  GPU_CHECK_OK(alloc_async_ptsz(&c, 1 << 20, NULL));
  GPU_CHECK_EQ("the _ptsz wrapper must reach cuMemAllocAsync_ptsz", Calls("cuMemAllocAsync_ptsz"), 1);
  GPU_CHECK_EQ("...and not cuMemAllocAsync", Calls("cuMemAllocAsync"), 1);
  GpuExpectMatchesDriver(0, "cuMemAllocAsync_ptsz 1 MiB");
  GPU_CHECK_OK(free_async_ptsz(c, NULL));
  GPU_CHECK_EQ("calls of cuMemFreeAsync_ptsz", Calls("cuMemFreeAsync_ptsz"), 1);
  GPU_CHECK_OK(free_async(b, NULL));
  GPU_CHECK_OK(mem_free(a));
  GpuExpectMatchesDriver(0, "all device memory freed");
  GPU_CHECK_EQ("peak stays", GpuStats(0).peak_bytes, 97 << 20);

  /* The 32-bit ABI is the driver's business only: not counted, not confused with the v2 slot. */
  unsigned int small = 0;
  GPU_CHECK_OK(mem_alloc_v1(&small, 4096));
  GPU_CHECK_EQ("v1 cuMemAlloc is not counted", GpuStats(0).current_bytes, 0);
  GPU_CHECK_OK(mem_free_v1(small));

  /* Pitched: pitch × height as the driver returned it. */
  size_t pitch = 0;
  GPU_CHECK_OK(alloc_pitch(&a, &pitch, 1000, 300, 4));
  GPU_CHECK_EQ("pitched bytes", GpuStats(0).current_bytes, pitch * 300);
  GpuExpectMatchesDriver(0, "cuMemAllocPitch_v2");
  GPU_CHECK_OK(mem_free(a));

  /* An explicit pool, then the pools' reserved bytes as sampled (forced by the C API). */
  CUmemoryPool pool = NULL, pool0 = NULL;
  GPU_CHECK_OK(pool_create(&pool, NULL));
  GPU_CHECK_OK(alloc_from_pool(&a, 3 << 20, pool, NULL));
  GPU_CHECK_OK(alloc_async(&b, 5 << 20, NULL));
  GpuExpectMatchesDriver(0, "pools");
  cuuint64_t reserved = 0, reserved0 = 0, graph = 0;
  GPU_CHECK_OK(pool_attribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  GPU_CHECK_OK(default_pool(&pool0, 0));
  GPU_CHECK_OK(pool_attribute(pool0, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved0));
  GPU_CHECK_EQ("pool reserved (default + explicit)", GpuStats(0).pool_reserved_bytes, reserved + reserved0);

  /* A captured allocation belongs to the graph: not counted; the graph pool shows in the sample. */
  CUdeviceptr captured = 0;
  GPU_CHECK_OK(alloc_async(&captured, 7 << 20, FAKE_CAPTURING_STREAM));
  GpuExpectMatchesDriver(0, "captured allocation");
  GPU_CHECK_OK(graph_attribute(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &graph));
  GPU_CHECK_EQ("graph memory in the pool sample", graph, 7 << 20);
  GPU_CHECK_EQ("pool reserved with graphs", GpuStats(0).pool_reserved_bytes, reserved + reserved0 + graph);
  GPU_CHECK_OK(free_async(captured, FAKE_CAPTURING_STREAM));
  GPU_CHECK_OK(free_async(a, NULL));
  GPU_CHECK_OK(mem_free(b)); /* cudaFree of stream-ordered memory is allowed */
  GpuExpectMatchesDriver(0, "pools freed");

  /* Whole-device figures sampled from cuMemGetInfo_v2 (the fake: 16 GiB, 1 GiB used by others). */
  GPU_CHECK_OK(mem_alloc(&a, 10 << 20));
  s = GpuStats(0);
  GPU_CHECK_EQ("device total", s.device_total_bytes, 16ull << 30);
  GPU_CHECK_EQ("device used", s.device_used_bytes, (1ull << 30) + (10 << 20));

  /* An unknown pointer: allocated behind memtide's back, freed through the wrapper. Counted, never
   * subtracted (no underflow). */
  if (!interposable) {
    MemAlloc raw_alloc = (MemAlloc)FakeRealFunction("cuMemAlloc_v2");
    GPU_CHECK(raw_alloc != NULL && !GpuIsMemtide((void *)raw_alloc), "the fake's own cuMemAlloc_v2");
    GPU_CHECK_OK(raw_alloc(&b, 1 << 20));
    GPU_CHECK_OK(mem_free(b));
    s = GpuStats(0);
    GPU_CHECK_EQ("unknown frees", s.unknown_frees, 1);
    GPU_CHECK_EQ("current after an unknown free", s.current_bytes, 10 << 20);
  }
  /* A failed free changes nothing. */
  GPU_CHECK(mem_free((CUdeviceptr)(uintptr_t)&pitch) != CUDA_SUCCESS, "freeing a stack address must fail");
  GPU_CHECK_EQ("current after a failed free", GpuStats(0).current_bytes, 10 << 20);
  GPU_CHECK_OK(mem_free(a));

  /* ---- managed, pinned, registered ---- */
  GPU_CHECK_OK(alloc_managed(&a, 6 << 20, 1));
  GpuExpectMatchesDriver(0, "managed");
  GPU_CHECK_EQ("managed bytes", GpuStats(0).managed_current_bytes, 6 << 20);
  GPU_CHECK_OK(mem_free(a));
  GPU_CHECK_EQ("managed peak", GpuStats(0).managed_peak_bytes, 6 << 20);
  void *pinned1 = NULL, *pinned2 = NULL;
  GPU_CHECK_OK(host_alloc(&pinned1, 3 << 20, 0));
  GPU_CHECK_OK(alloc_host(&pinned2, 1 << 20));
  GpuExpectMatchesDriver(0, "pinned");
  GPU_CHECK_EQ("pinned bytes", GpuStats(0).pinned_host_current_bytes, 4 << 20);
  GPU_CHECK_OK(free_host(pinned1));
  GPU_CHECK_OK(free_host(pinned2));
  GPU_CHECK_EQ("pinned peak", GpuStats(0).pinned_host_peak_bytes, 4 << 20);
  char *buffer = malloc(1 << 16);
  GPU_CHECK_OK(host_register(buffer, 1 << 16, 0));
  GPU_CHECK_OK(host_register_v1(buffer + 4096, 4096, 0));
  GpuExpectMatchesDriver(0, "registered");
  GPU_CHECK_EQ("registered bytes", GpuStats(0).host_registered_bytes, (1 << 16) + 4096);
  GPU_CHECK_OK(host_unregister(buffer));
  GPU_CHECK_OK(host_unregister(buffer + 4096));
  free(buffer);
  GpuExpectMatchesDriver(0, "unregistered");

  /* ---- VMM: device, host, another device, imported ---- */
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  CUmemGenericAllocationHandle h0 = 0, h1 = 0, hh = 0, hi = 0;
  GPU_CHECK_OK(mem_create(&h0, 2 << 20, &prop, 0));
  prop.location.id = 1;
  GPU_CHECK_OK(mem_create(&h1, 4 << 20, &prop, 0));
  prop.location.type = CU_MEM_LOCATION_TYPE_HOST;
  GPU_CHECK_OK(mem_create(&hh, 8 << 20, &prop, 0));
  GpuExpectMatchesDriver(0, "VMM on device 0 and host");
  GpuExpectMatchesDriver(1, "VMM on device 1");
  GPU_CHECK_EQ("VMM device 1", GpuStats(1).current_bytes, 4 << 20);
  s = GpuStats(1);
  GPU_CHECK(s.ordinal == 1 && s.uuid[0] == 16 && s.uuid[15] == 31, "device 1 must carry its own UUID");
  GPU_CHECK_OK(mem_import(&hi, (void *)(uintptr_t)(5 << 20), 1));
  GPU_CHECK_EQ("an imported handle's size is unknown until it is mapped", GpuStats(0).imported_bytes, 0);
  GPU_CHECK_OK(mem_map(0x10000000, 5 << 20, 0, hi, 0));
  GpuExpectMatchesDriver(0, "imported and mapped");
  GPU_CHECK_OK(mem_map(0x20000000, 5 << 20, 0, hi, 0)); /* mapped twice: still one allocation */
  GpuExpectMatchesDriver(0, "mapped twice");
  GPU_CHECK_OK(mem_release(hi));
  GPU_CHECK_OK(mem_release(h0));
  GPU_CHECK_OK(mem_release(h1));
  GPU_CHECK_OK(mem_release(hh));
  GpuExpectMatchesDriver(0, "VMM released");
  GpuExpectMatchesDriver(1, "VMM released on device 1");

  /* Legacy IPC: another process's memory, its size from cuMemGetAddressRange. */
  CUipcMemHandle ipc;
  memset(&ipc, 0, sizeof(ipc));
  uint64_t ipc_bytes = 3 << 20;
  memcpy(ipc.reserved, &ipc_bytes, sizeof(ipc_bytes));
  GPU_CHECK_OK(ipc_open(&a, ipc, 1));
  GpuExpectMatchesDriver(0, "IPC opened");
  GPU_CHECK_EQ("imported IPC bytes", GpuStats(0).imported_bytes, 3 << 20);
  GPU_CHECK_OK(ipc_close(a));
  GpuExpectMatchesDriver(0, "IPC closed");

  /* ---- arrays (element bytes of the descriptor; counted as device memory too) ---- */
  CUDA_ARRAY_DESCRIPTOR d2 = {100, 50, CU_AD_FORMAT_FLOAT, 1};
  CUDA_ARRAY3D_DESCRIPTOR d3 = {64, 32, 8, CU_AD_FORMAT_UNSIGNED_INT8, 4, 0};
  CUDA_ARRAY3D_DESCRIPTOR deferred = {1024, 1024, 0, CU_AD_FORMAT_FLOAT, 1, CUDA_ARRAY3D_DEFERRED_MAPPING};
  CUDA_ARRAY3D_DESCRIPTOR mip = {64, 64, 0, CU_AD_FORMAT_FLOAT, 1, 0};
  CUarray arr2 = NULL, arr3 = NULL, arr_deferred = NULL;
  CUmipmappedArray arr_mip = NULL;
  GPU_CHECK_OK(array_create(&arr2, &d2));
  GPU_CHECK_OK(array3d_create(&arr3, &d3));
  GPU_CHECK_OK(array3d_create(&arr_deferred, &deferred));
  GPU_CHECK_OK(mipmapped_create(&arr_mip, &mip, 3));
  GpuExpectMatchesDriver(0, "arrays");
  long long array_bytes = 100 * 50 * 4 + 64 * 32 * 8 * 4 + (64 * 64 + 32 * 32 + 16 * 16) * 4;
  GPU_CHECK_EQ("array bytes", GpuStats(0).array_bytes, array_bytes);
  GPU_CHECK_OK(array_destroy(arr2));
  GPU_CHECK_OK(array_destroy(arr3));
  GPU_CHECK_OK(array_destroy(arr_deferred));
  GPU_CHECK_OK(mipmapped_destroy(arr_mip));
  GpuExpectMatchesDriver(0, "arrays destroyed");
  GPU_CHECK_EQ("array bytes after destroy", GpuStats(0).array_bytes, 0);

  /* ---- the current device decides: device 1 ---- */
  GPU_CHECK_OK(set_current((CUcontext)(uintptr_t)2));
  GPU_CHECK_OK(mem_alloc(&a, 12 << 20));
  GpuExpectMatchesDriver(1, "cuMemAlloc_v2 on device 1");
  GpuExpectMatchesDriver(0, "device 0 unchanged");
  size_t current1 = 0, peak1 = 0;
  GPU_CHECK(memtide_get_gpu_traced_memory(1, &current1, &peak1) == 0, "device 1 is known");
  GPU_CHECK_EQ("traced current on device 1", current1, 12 << 20);
  GPU_CHECK_EQ("traced peak on device 1", peak1, 12 << 20);
  GPU_CHECK_OK(mem_free(a));
  GPU_CHECK(memtide_get_gpu_traced_memory(7, &current1, &peak1) == -1 && current1 == 0, "device 7 is unknown");

  /* ---- reset_peak ---- */
  memtide_reset_peak();
  GPU_CHECK_EQ("peak after reset", GpuStats(0).peak_bytes, 0);
  GPU_CHECK_EQ("managed peak after reset", GpuStats(0).managed_peak_bytes, 0);

  s = GpuStats(0);
  printf("ok allocations=%llu frees=%llu unknown_frees=%llu lookups=%lld\n", (unsigned long long)s.allocations,
         (unsigned long long)s.frees, (unsigned long long)s.unknown_frees, FakeLookups());
  return 0;
}
