/* A fake CUDA driver (libcuda.so.1) for the GPU tests on machines without a GPU. It behaves like the real
 * driver where memtide depends on it:
 *  - cuGetProcAddress/_v2 map (base name, cudaVersion, flags) to exported _v2/_ptsz symbols the way the
 *    real driver does (newest version <= the one asked for; flags 2 = per-thread default stream variant);
 *  - the pointers it hands out are its exported symbols (built with -Bsymbolic-functions, like the real
 *    driver's internal references; the "interposable" build leaves that out to provoke aliasing);
 *  - allocation functions are malloc-backed and keep a table, so fakeCudaLiveBytes() gives the ground truth;
 *  - cuStreamIsCapturing reports FAKE_CAPTURING_STREAM as capturing; allocations on it go to a graph pool;
 *  - two devices, the current one per thread (cuCtxSetCurrent(ordinal + 1)), UUIDs 16 * ordinal + i.
 * cuGetExportTable fails, so a real CUDA runtime stops after its lookups (enough for the lookup tests). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda.h"

#define EXPORT __attribute__((visibility("default")))
#define DEVICES 2
#define TOTAL_BYTES (16ull << 30)
#define OTHERS_BYTES (1ull << 30)
#define POOL_CHUNK (2ull << 20)

enum { SPACE_DEVICE = 1, SPACE_HOST, SPACE_REGISTERED, SPACE_HANDLE, SPACE_ARRAY, SPACE_IPC, SPACE_V1 };

typedef struct FakePool {
  int device;
  unsigned long long used;
  unsigned long long reserved;
} FakePool;

typedef struct Allocation {
  uintptr_t key;
  size_t bytes;
  int device;
  int kind;
  int space;
  FakePool *pool;
  struct Allocation *next;
} Allocation;

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static Allocation *g_allocations;
static FakePool g_default_pools[DEVICES];
static unsigned long long g_graph_reserved[DEVICES];
static __thread int t_device;
static long long g_lookups;

/* ---- call counting ---- */

static const char *const kCounted[] = {
    "cuMemAlloc",          "cuMemFree",          "cuMemAlloc_v2",           "cuMemFree_v2",
    "cuMemAllocPitch_v2",  "cuMemAllocAsync",    "cuMemAllocAsync_ptsz",    "cuMemAllocFromPoolAsync",
    "cuMemAllocFromPoolAsync_ptsz", "cuMemFreeAsync", "cuMemFreeAsync_ptsz", "cuMemAllocManaged",
    "cuMemCreate",         "cuMemRelease",       "cuMemMap",                "cuMemImportFromShareableHandle",
    "cuMemHostAlloc",      "cuMemAllocHost_v2",  "cuMemFreeHost",           "cuMemHostRegister",
    "cuMemHostRegister_v2", "cuMemHostUnregister", "cuArrayCreate_v2",      "cuArray3DCreate_v2",
    "cuArrayDestroy",      "cuMipmappedArrayCreate", "cuMipmappedArrayDestroy", "cuIpcOpenMemHandle_v2",
    "cuIpcCloseMemHandle", "cuInit",             "cuGetExportTable",
};
#define COUNTED (sizeof(kCounted) / sizeof(kCounted[0]))
static long long g_calls[COUNTED];

static void Count(const char *name) {
  for (size_t i = 0; i < COUNTED; ++i) {
    if (strcmp(kCounted[i], name) == 0) {
      __atomic_fetch_add(&g_calls[i], 1, __ATOMIC_RELAXED);
      return;
    }
  }
}

EXPORT long long fakeCudaCalls(const char *name) {
  for (size_t i = 0; i < COUNTED; ++i) {
    if (strcmp(kCounted[i], name) == 0) return __atomic_load_n(&g_calls[i], __ATOMIC_RELAXED);
  }
  return -1;
}

EXPORT long long fakeCudaProcAddressLookups(void) { return __atomic_load_n(&g_lookups, __ATOMIC_RELAXED); }

/* ---- the allocation table (ground truth) ---- */

static void Add(uintptr_t key, size_t bytes, int device, int kind, int space, FakePool *pool) {
  Allocation *a = malloc(sizeof(*a));
  a->key = key;
  a->bytes = bytes;
  a->device = device;
  a->kind = kind;
  a->space = space;
  a->pool = pool;
  pthread_mutex_lock(&g_mutex);
  if (pool != NULL) {
    pool->used += bytes;
    while (pool->reserved < pool->used) pool->reserved += POOL_CHUNK;
  }
  a->next = g_allocations;
  g_allocations = a;
  pthread_mutex_unlock(&g_mutex);
}

/* Removes and returns the allocation of `key` in `space`, or NULL. */
static Allocation *Take(uintptr_t key, int space) {
  pthread_mutex_lock(&g_mutex);
  for (Allocation **link = &g_allocations; *link != NULL; link = &(*link)->next) {
    Allocation *a = *link;
    if (a->key != key || a->space != space) continue;
    *link = a->next;
    if (a->pool != NULL) a->pool->used -= a->bytes;
    pthread_mutex_unlock(&g_mutex);
    return a;
  }
  pthread_mutex_unlock(&g_mutex);
  return NULL;
}

static Allocation *Find(uintptr_t key, int space) {
  pthread_mutex_lock(&g_mutex);
  Allocation *found = NULL;
  for (Allocation *a = g_allocations; a != NULL; a = a->next) {
    if (a->key == key && a->space == space) found = a;
  }
  pthread_mutex_unlock(&g_mutex);
  return found;
}

EXPORT long long fakeCudaLiveBytes(int device, int kind) {
  long long total = 0;
  pthread_mutex_lock(&g_mutex);
  for (Allocation *a = g_allocations; a != NULL; a = a->next) {
    if (a->device == device && a->kind == kind) total += (long long)a->bytes;
  }
  pthread_mutex_unlock(&g_mutex);
  return total;
}

static void *Block(size_t bytes) { return malloc(bytes != 0 ? bytes : 1); }

static CUresult Free(uintptr_t key, int space) {
  Allocation *a = Take(key, space);
  if (a == NULL) return CUDA_ERROR_INVALID_VALUE;
  free((void *)a->key);
  free(a);
  return CUDA_SUCCESS;
}

/* ---- init, devices, contexts ---- */

EXPORT CUresult cuInit(unsigned int flags) {
  (void)flags;
  Count("cuInit");
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int *version) {
  *version = 13000;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuGetExportTable(const void **table, const void *id) {
  (void)table;
  (void)id;
  Count("cuGetExportTable");
  return CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  if (ordinal < 0 || ordinal >= DEVICES) return CUDA_ERROR_INVALID_VALUE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count) {
  *count = DEVICES;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice device) {
  if (device < 0 || device >= DEVICES) return CUDA_ERROR_INVALID_VALUE;
  for (int i = 0; i < 16; ++i) uuid->bytes[i] = (char)(16 * device + i);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice device) { return cuDeviceGetUuid(uuid, device); }

EXPORT CUresult cuCtxGetDevice(CUdevice *device) {
  *device = t_device;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(CUcontext context) {
  int device = (int)(uintptr_t)context - 1;
  if (device < 0 || device >= DEVICES) return CUDA_ERROR_INVALID_VALUE;
  t_device = device;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  *total_bytes = TOTAL_BYTES;
  *free_bytes = TOTAL_BYTES - OTHERS_BYTES - (size_t)fakeCudaLiveBytes(t_device, FAKE_KIND_DEVICE);
  return CUDA_SUCCESS;
}

/* ---- device memory ---- */

EXPORT CUresult cuMemAlloc(unsigned int *dptr, unsigned int bytesize) {
  /* The 32-bit ABI of CUDA < 3.2: a small handle stands in for the pointer. */
  static unsigned int next_handle = 0x1000;
  Count("cuMemAlloc");
  unsigned int handle = __atomic_add_fetch(&next_handle, 16, __ATOMIC_RELAXED);
  Add(handle, bytesize, t_device, FAKE_KIND_V1, SPACE_V1, NULL);
  *dptr = handle;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFree(unsigned int dptr) {
  Count("cuMemFree");
  Allocation *a = Take(dptr, SPACE_V1);
  if (a == NULL) return CUDA_ERROR_INVALID_VALUE;
  free(a);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
  Count("cuMemAlloc_v2");
  if (bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  void *p = Block(bytesize);
  Add((uintptr_t)p, bytesize, t_device, FAKE_KIND_DEVICE, SPACE_DEVICE, NULL);
  *dptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  Count("cuMemFree_v2");
  return Free((uintptr_t)dptr, SPACE_DEVICE);
}

EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t widthBytes, size_t height,
                                   unsigned int elementBytes) {
  (void)elementBytes;
  Count("cuMemAllocPitch_v2");
  size_t rounded = (widthBytes + 511) / 512 * 512;
  void *p = Block(rounded * height);
  Add((uintptr_t)p, rounded * height, t_device, FAKE_KIND_DEVICE, SPACE_DEVICE, NULL);
  *dptr = (CUdeviceptr)(uintptr_t)p;
  *pitch = rounded;
  return CUDA_SUCCESS;
}

static CUresult AllocAsync(CUdeviceptr *dptr, size_t bytesize, FakePool *pool, CUstream stream) {
  if (bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  void *p = Block(bytesize);
  if (stream == FAKE_CAPTURING_STREAM) {
    Add((uintptr_t)p, bytesize, t_device, FAKE_KIND_GRAPH, SPACE_DEVICE, NULL);
    pthread_mutex_lock(&g_mutex);
    g_graph_reserved[t_device] += bytesize;
    pthread_mutex_unlock(&g_mutex);
  } else {
    Add((uintptr_t)p, bytesize, pool->device, FAKE_KIND_DEVICE, SPACE_DEVICE, pool);
  }
  *dptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream) {
  Count("cuMemAllocAsync");
  return AllocAsync(dptr, bytesize, &g_default_pools[t_device], stream);
}

EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream) {
  Count("cuMemAllocAsync_ptsz");
  return AllocAsync(dptr, bytesize, &g_default_pools[t_device], stream);
}

EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream stream) {
  Count("cuMemAllocFromPoolAsync");
  return AllocAsync(dptr, bytesize, (FakePool *)pool, stream);
}

EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream stream) {
  Count("cuMemAllocFromPoolAsync_ptsz");
  return AllocAsync(dptr, bytesize, (FakePool *)pool, stream);
}

EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
  (void)stream;
  Count("cuMemFreeAsync");
  return Free((uintptr_t)dptr, SPACE_DEVICE);
}

EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
  (void)stream;
  Count("cuMemFreeAsync_ptsz");
  return Free((uintptr_t)dptr, SPACE_DEVICE);
}

EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
  (void)flags;
  Count("cuMemAllocManaged");
  void *p = Block(bytesize);
  Add((uintptr_t)p, bytesize, t_device, FAKE_KIND_MANAGED, SPACE_DEVICE, NULL);
  *dptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

/* ---- virtual memory management ---- */

EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                            unsigned long long flags) {
  (void)flags;
  Count("cuMemCreate");
  int on_device = prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
  void *p = Block(size);
  Add((uintptr_t)p, size, on_device ? prop->location.id : t_device, on_device ? FAKE_KIND_DEVICE : FAKE_KIND_PINNED,
      SPACE_HANDLE, NULL);
  *handle = (CUmemGenericAllocationHandle)(uintptr_t)p;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  Count("cuMemRelease");
  return Free((uintptr_t)handle, SPACE_HANDLE);
}

/* `osHandle` stands for the exporter's file descriptor; here it carries the allocation's size. */
EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *osHandle,
                                               int handleType) {
  (void)handleType;
  Count("cuMemImportFromShareableHandle");
  size_t size = (size_t)(uintptr_t)osHandle;
  void *p = Block(size);
  Add((uintptr_t)p, size, t_device, FAKE_KIND_IMPORTED, SPACE_HANDLE, NULL);
  *handle = (CUmemGenericAllocationHandle)(uintptr_t)p;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                         unsigned long long flags) {
  (void)ptr;
  (void)flags;
  Count("cuMemMap");
  Allocation *a = Find((uintptr_t)handle, SPACE_HANDLE);
  if (a == NULL || offset + size > a->bytes) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

/* ---- host memory ---- */

EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags) {
  (void)flags;
  Count("cuMemHostAlloc");
  *pp = Block(bytesize);
  Add((uintptr_t)*pp, bytesize, t_device, FAKE_KIND_PINNED, SPACE_HOST, NULL);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) {
  Count("cuMemAllocHost_v2");
  *pp = Block(bytesize);
  Add((uintptr_t)*pp, bytesize, t_device, FAKE_KIND_PINNED, SPACE_HOST, NULL);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFreeHost(void *p) {
  Count("cuMemFreeHost");
  return Free((uintptr_t)p, SPACE_HOST);
}

static CUresult Register(void *p, size_t bytesize) {
  if (Find((uintptr_t)p, SPACE_REGISTERED) != NULL) return CUDA_ERROR_INVALID_VALUE;
  Add((uintptr_t)p, bytesize, t_device, FAKE_KIND_REGISTERED, SPACE_REGISTERED, NULL);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int flags) {
  (void)flags;
  Count("cuMemHostRegister");
  return Register(p, bytesize);
}

EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags) {
  (void)flags;
  Count("cuMemHostRegister_v2");
  return Register(p, bytesize);
}

EXPORT CUresult cuMemHostUnregister(void *p) {
  Count("cuMemHostUnregister");
  Allocation *a = Take((uintptr_t)p, SPACE_REGISTERED);
  if (a == NULL) return CUDA_ERROR_INVALID_VALUE;
  free(a); /* the memory is the program's */
  return CUDA_SUCCESS;
}

/* ---- arrays ---- */

static size_t FormatBytes(int format) { return format == CU_AD_FORMAT_UNSIGNED_INT8 ? 1 : 4; }

static size_t ArrayBytes(size_t w, size_t h, size_t d, int format, unsigned int channels) {
  return w * (h ? h : 1) * (d ? d : 1) * (channels ? channels : 1) * FormatBytes(format);
}

static CUresult NewArray(void **handle, size_t bytes) {
  *handle = Block(bytes);
  Add((uintptr_t)*handle, bytes, t_device, FAKE_KIND_DEVICE, SPACE_ARRAY, NULL);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuArrayCreate_v2(CUarray *handle, const CUDA_ARRAY_DESCRIPTOR *d) {
  Count("cuArrayCreate_v2");
  return NewArray(handle, ArrayBytes(d->Width, d->Height, 1, d->Format, d->NumChannels));
}

EXPORT CUresult cuArray3DCreate_v2(CUarray *handle, const CUDA_ARRAY3D_DESCRIPTOR *d) {
  Count("cuArray3DCreate_v2");
  size_t bytes = ArrayBytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels);
  if (d->Flags & CUDA_ARRAY3D_DEFERRED_MAPPING) {
    *handle = Block(16); /* no memory until something is mapped into it */
    Add((uintptr_t)*handle, 0, t_device, FAKE_KIND_DEVICE, SPACE_ARRAY, NULL);
    return CUDA_SUCCESS;
  }
  return NewArray(handle, bytes);
}

EXPORT CUresult cuArrayDestroy(CUarray handle) {
  Count("cuArrayDestroy");
  return Free((uintptr_t)handle, SPACE_ARRAY);
}

EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *handle, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                       unsigned int levels) {
  Count("cuMipmappedArrayCreate");
  size_t bytes = 0;
  for (unsigned int l = 0; l < levels; ++l) {
    size_t w = d->Width >> l ? d->Width >> l : 1;
    size_t h = d->Height == 0 ? 0 : (d->Height >> l ? d->Height >> l : 1);
    size_t depth = d->Depth == 0 ? 0 : (d->Depth >> l ? d->Depth >> l : 1);
    bytes += ArrayBytes(w, h, depth, d->Format, d->NumChannels);
  }
  return NewArray(handle, bytes);
}

EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray handle) {
  Count("cuMipmappedArrayDestroy");
  return Free((uintptr_t)handle, SPACE_ARRAY);
}

/* ---- IPC ---- */

/* The handle's first 8 bytes carry the exporter's allocation size (a real handle names its memory). */
EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int flags) {
  (void)flags;
  Count("cuIpcOpenMemHandle_v2");
  uint64_t size;
  memcpy(&size, handle.reserved, sizeof(size));
  void *p = Block(size);
  Add((uintptr_t)p, size, t_device, FAKE_KIND_IMPORTED, SPACE_IPC, NULL);
  *pdptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr) {
  Count("cuIpcCloseMemHandle");
  return Free((uintptr_t)dptr, SPACE_IPC);
}

EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr dptr) {
  pthread_mutex_lock(&g_mutex);
  for (Allocation *a = g_allocations; a != NULL; a = a->next) {
    if ((a->space == SPACE_DEVICE || a->space == SPACE_IPC) && dptr >= a->key && dptr < a->key + a->bytes) {
      if (base != NULL) *base = a->key;
      if (size != NULL) *size = a->bytes;
      pthread_mutex_unlock(&g_mutex);
      return CUDA_SUCCESS;
    }
  }
  pthread_mutex_unlock(&g_mutex);
  return CUDA_ERROR_NOT_FOUND;
}

/* ---- streams, pools, graphs ---- */

EXPORT CUresult cuStreamIsCapturing(CUstream stream, int *status) {
  *status = stream == FAKE_CAPTURING_STREAM ? 1 : 0;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream stream, int *status) { return cuStreamIsCapturing(stream, status); }

EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice device) {
  if (device < 0 || device >= DEVICES) return CUDA_ERROR_INVALID_VALUE;
  g_default_pools[device].device = device;
  *pool = &g_default_pools[device];
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice device) {
  return cuDeviceGetDefaultMemPool(pool, device);
}

EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const void *props) {
  (void)props;
  FakePool *created = calloc(1, sizeof(*created));
  created->device = t_device;
  *pool = created;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, int attribute, void *value) {
  if (attribute != CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) return CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_mutex);
  *(cuuint64_t *)value = ((FakePool *)pool)->reserved;
  pthread_mutex_unlock(&g_mutex);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice device, int attribute, void *value) {
  if (attribute != CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT || device < 0 || device >= DEVICES) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  pthread_mutex_lock(&g_mutex);
  *(cuuint64_t *)value = g_graph_reserved[device];
  pthread_mutex_unlock(&g_mutex);
  return CUDA_SUCCESS;
}

/* ---- cuGetProcAddress ---- */

typedef struct {
  const char *base;
  int version;    /* the first CUDA version that gets this exact symbol */
  int per_thread; /* the _ptsz variant, handed out for CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM */
  void *function;
} Proc;

#define P(base, version, function) {base, version, 0, (void *)&function}
#define PT(base, version, function) {base, version, 1, (void *)&function}

static const Proc kProcs[] = {
    P("cuGetProcAddress", 11030, cuGetProcAddress),
    P("cuGetProcAddress", 12000, cuGetProcAddress_v2),
    P("cuInit", 2000, cuInit),
    P("cuDriverGetVersion", 2020, cuDriverGetVersion),
    P("cuGetExportTable", 3000, cuGetExportTable),
    P("cuDeviceGet", 2000, cuDeviceGet),
    P("cuDeviceGetCount", 2000, cuDeviceGetCount),
    P("cuDeviceGetUuid", 9020, cuDeviceGetUuid),
    P("cuDeviceGetUuid", 11040, cuDeviceGetUuid_v2),
    P("cuCtxGetDevice", 2000, cuCtxGetDevice),
    P("cuCtxSetCurrent", 4000, cuCtxSetCurrent),
    P("cuMemGetInfo", 3020, cuMemGetInfo_v2),
    P("cuMemAlloc", 2000, cuMemAlloc),
    P("cuMemAlloc", 3020, cuMemAlloc_v2),
    P("cuMemFree", 2000, cuMemFree),
    P("cuMemFree", 3020, cuMemFree_v2),
    P("cuMemAllocPitch", 3020, cuMemAllocPitch_v2),
    P("cuMemAllocAsync", 11020, cuMemAllocAsync),
    PT("cuMemAllocAsync", 11020, cuMemAllocAsync_ptsz),
    P("cuMemAllocFromPoolAsync", 11020, cuMemAllocFromPoolAsync),
    PT("cuMemAllocFromPoolAsync", 11020, cuMemAllocFromPoolAsync_ptsz),
    P("cuMemFreeAsync", 11020, cuMemFreeAsync),
    PT("cuMemFreeAsync", 11020, cuMemFreeAsync_ptsz),
    P("cuMemAllocManaged", 6000, cuMemAllocManaged),
    P("cuMemCreate", 10020, cuMemCreate),
    P("cuMemRelease", 10020, cuMemRelease),
    P("cuMemMap", 10020, cuMemMap),
    P("cuMemImportFromShareableHandle", 10020, cuMemImportFromShareableHandle),
    P("cuMemHostAlloc", 2020, cuMemHostAlloc),
    P("cuMemAllocHost", 3020, cuMemAllocHost_v2),
    P("cuMemFreeHost", 2000, cuMemFreeHost),
    P("cuMemHostRegister", 4000, cuMemHostRegister),
    P("cuMemHostRegister", 6050, cuMemHostRegister_v2),
    P("cuMemHostUnregister", 4000, cuMemHostUnregister),
    P("cuArrayCreate", 3020, cuArrayCreate_v2),
    P("cuArray3DCreate", 3020, cuArray3DCreate_v2),
    P("cuArrayDestroy", 2000, cuArrayDestroy),
    P("cuMipmappedArrayCreate", 5000, cuMipmappedArrayCreate),
    P("cuMipmappedArrayDestroy", 5000, cuMipmappedArrayDestroy),
    P("cuIpcOpenMemHandle", 11000, cuIpcOpenMemHandle_v2),
    P("cuIpcCloseMemHandle", 4010, cuIpcCloseMemHandle),
    P("cuMemGetAddressRange", 3020, cuMemGetAddressRange_v2),
    P("cuStreamIsCapturing", 10000, cuStreamIsCapturing),
    PT("cuStreamIsCapturing", 10000, cuStreamIsCapturing_ptsz),
    P("cuDeviceGetDefaultMemPool", 11020, cuDeviceGetDefaultMemPool),
    P("cuDeviceGetMemPool", 11020, cuDeviceGetMemPool),
    P("cuMemPoolCreate", 11020, cuMemPoolCreate),
    P("cuMemPoolGetAttribute", 11020, cuMemPoolGetAttribute),
    P("cuDeviceGetGraphMemAttribute", 11040, cuDeviceGetGraphMemAttribute),
};

static CUresult Lookup(const char *symbol, void **pfn, int version, cuuint64_t flags, int *status) {
  __atomic_fetch_add(&g_lookups, 1, __ATOMIC_RELAXED);
  int want_per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  const Proc *best = NULL;
  int known = 0;
  for (int pass = 0; pass < 2 && best == NULL; ++pass) {
    int per_thread = pass == 0 ? want_per_thread : 0;
    if (pass == 1 && !want_per_thread) break;
    for (size_t i = 0; i < sizeof(kProcs) / sizeof(kProcs[0]); ++i) {
      const Proc *p = &kProcs[i];
      if (symbol == NULL || strcmp(p->base, symbol) != 0) continue;
      known = 1;
      if (p->per_thread != per_thread || p->version > version) continue;
      if (best == NULL || p->version > best->version) best = p;
    }
  }
  if (best == NULL) {
    if (pfn != NULL) *pfn = NULL;
    if (status != NULL) {
      *status = known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    }
    return CUDA_ERROR_NOT_FOUND;
  }
  *pfn = best->function;
  if (status != NULL) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags) {
  return Lookup(symbol, pfn, cudaVersion, flags, NULL);
}

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                    int *symbolStatus) {
  return Lookup(symbol, pfn, cudaVersion, flags, symbolStatus);
}

EXPORT void *fakeCudaRealFunction(const char *name) {
  static const struct {
    const char *name;
    void *function;
  } kExact[] = {
      {"cuMemAlloc_v2", (void *)&cuMemAlloc_v2},
      {"cuMemFree_v2", (void *)&cuMemFree_v2},
      {"cuMemAllocAsync", (void *)&cuMemAllocAsync},
      {"cuMemHostAlloc", (void *)&cuMemHostAlloc},
      {"cuGetProcAddress_v2", (void *)&cuGetProcAddress_v2},
  };
  for (size_t i = 0; i < sizeof(kExact) / sizeof(kExact[0]); ++i) {
    if (strcmp(kExact[i].name, name) == 0) return kExact[i].function;
  }
  return NULL;
}
