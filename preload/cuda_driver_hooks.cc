// The CUDA driver wrappers (DESIGN.md decision 6; research/CUDA.md §3). Runs on the threads that call the
// driver, never on the host malloc/free path, and not at all in a process that never touches libcuda.
//
// How programs reach the driver, and how each way ends up here:
//  - cudart (static or shared, in every CUDA library and framework) does dlopen("libcuda.so.1") +
//    dlsym(h, "cuGetProcAddress_v2"), then asks that function for "cuGetProcAddress" itself and resolves
//    everything else through the answer. The dlsym override (dlsym_override.cc) hands the looked-up pointer
//    to SubstituteDriverPointer, which returns memtide's cuGetProcAddress_v2 wrapper; that wrapper does the
//    same to every pointer the driver returns, including its answer for "cuGetProcAddress".
//  - XLA-style stubs and libraries call dlsym(h, "cuMemAlloc_v2") for each function: the same substitution.
//  - Programs linked with -lcuda call the exported names below through their PLT: the dynamic linker binds
//    them to memtide (preloaded), and each wrapper finds the real function lazily: the next definition
//    past memtide (RTLD_NEXT), else the loaded libcuda's.
// Routing is by the identity of the pointer the driver returned (dladdr: the exported symbol at exactly that
// address), never by the requested name: one name is handed out at several ABI versions and stream
// flavours (cuMemAllocAsync vs cuMemAllocAsync_ptsz), and each exact symbol has its own slot and wrapper.
//
// Observer only: a wrapper always calls the real function with the caller's arguments and returns its
// result unchanged; counting happens after a successful allocation, and before the real free (so a
// concurrent allocation reusing the address cannot be mistaken for the freed one; undone if the free fails).
// Counting and sampling take the guard (nothing memtide does is the program's heap), no lock is held while
// the driver runs, and the side table's memory never comes from malloc (gpu_accounting.cc).
#include "cuda_driver_hooks.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <atomic>

#include "gpu_accounting.h"
#include "log.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

// The driver API's types, as far as memtide reads them (cuda.h is not needed to build memtide).
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUstream = void*;
using CUmemoryPool = void*;
using CUarray = void*;
using CUmipmappedArray = void*;
using CUmemGenericAllocationHandle = unsigned long long;
using cuuint64_t = unsigned long long;

struct CUmemLocation {
  int type;
  int id;
};
// The leading fields of CUmemAllocationProp; the driver's struct continues, memtide reads only these.
struct CUmemAllocationPropPrefix {
  int type;
  int requested_handle_types;
  CUmemLocation location;
};
struct CudaArrayDescriptor {
  size_t width;
  size_t height;
  int format;
  unsigned int channels;
};
struct CudaArray3DDescriptor {
  size_t width;
  size_t height;
  size_t depth;
  int format;
  unsigned int channels;
  unsigned int flags;
};
struct CUipcMemHandle {
  char reserved[64];
};

constexpr CUresult kSuccess = 0;
constexpr CUresult kErrorNotInitialized = 3;
constexpr int kLocationDevice = 1;
constexpr unsigned int kArraySparse = 0x40;
constexpr unsigned int kArrayDeferredMapping = 0x80;
constexpr int kPoolAttributeReservedCurrent = 5;      // CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT
constexpr int kGraphAttributeReservedCurrent = 2;     // CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT
constexpr int64_t kInfoSampleNs = 100 * 1000 * 1000;  // cuMemGetInfo costs a kernel round trip
constexpr int64_t kPoolSampleNs = 1000 * 1000;
constexpr int kSlots = MEMTIDE_SEGMENT_GPU_DEVICES;
constexpr int kPoolsPerDevice = 8;

// Every wrapped entry point, by exact exported name. One slot (the real pointer) and one wrapper each.
// clang-format off
#define MEMTIDE_DRIVER_ENTRY_POINTS(X)                                                                    \
  X(cuGetProcAddress) X(cuGetProcAddress_v2) X(cuMemAlloc_v2) X(cuMemFree_v2) X(cuMemAllocPitch_v2)       \
  X(cuMemAllocAsync) X(cuMemAllocAsync_ptsz) X(cuMemAllocFromPoolAsync) X(cuMemAllocFromPoolAsync_ptsz)   \
  X(cuMemFreeAsync) X(cuMemFreeAsync_ptsz) X(cuMemAllocManaged) X(cuMemCreate) X(cuMemRelease)            \
  X(cuMemImportFromShareableHandle) X(cuMemMap) X(cuMemHostAlloc) X(cuMemAllocHost_v2) X(cuMemFreeHost)    \
  X(cuMemHostRegister) X(cuMemHostRegister_v2) X(cuMemHostUnregister) X(cuArrayCreate_v2)                 \
  X(cuArray3DCreate_v2) X(cuMipmappedArrayCreate) X(cuArrayDestroy) X(cuMipmappedArrayDestroy)            \
  X(cuIpcOpenMemHandle_v2) X(cuIpcCloseMemHandle)
// clang-format on

enum DriverEntry : int {
#define MEMTIDE_ENUM(name) k_##name,
  MEMTIDE_DRIVER_ENTRY_POINTS(MEMTIDE_ENUM)
#undef MEMTIDE_ENUM
      kDriverEntryCount
};

constexpr const char* kDriverEntryNames[] = {
#define MEMTIDE_NAME(name) #name,
    MEMTIDE_DRIVER_ENTRY_POINTS(MEMTIDE_NAME)
#undef MEMTIDE_NAME
};

// The real function of each entry point: filled once (first pointer wins), never cleared.
std::atomic<void*> g_real[kDriverEntryCount];

// Functions memtide itself calls (device of the calling thread, UUIDs, samples), by exact name.
struct DriverInternals {
  CUresult (*ctx_get_device)(CUdevice*);
  CUresult (*device_get_uuid)(uint8_t*, CUdevice);
  CUresult (*mem_get_info)(size_t*, size_t*);
  CUresult (*stream_is_capturing)(CUstream, int*);
  CUresult (*stream_is_capturing_ptsz)(CUstream, int*);
  CUresult (*device_get_default_mem_pool)(CUmemoryPool*, CUdevice);
  CUresult (*device_get_mem_pool)(CUmemoryPool*, CUdevice);
  CUresult (*mem_pool_get_attribute)(CUmemoryPool, int, void*);
  CUresult (*device_get_graph_mem_attribute)(CUdevice, int, void*);
  CUresult (*mem_get_address_range)(CUdeviceptr*, size_t*, CUdeviceptr);
};
DriverInternals g_internals;
enum : int { kUnresolved = 0, kResolving = 1, kResolved = 2 };
std::atomic<int> g_internals_state{kUnresolved};

// The driver library: learned from the first pointer routed through a lookup, or found among the loaded
// objects. The path is written once (g_driver_path_state: 0 none, 1 being written, 2 ready); no lock is ever
// held across a dl* call (a thread inside dlopen holds the loader's lock and may call a wrapper from a
// constructor).
std::atomic<int> g_driver_path_state{0};
char g_driver_path[512];
std::atomic<void*> g_driver_handle{nullptr};

// Sampling state per device slot (gpu_accounting's slot numbers). Relaxed: a lost update only means one
// sample more or less.
struct SampleState {
  std::atomic<int64_t> last_info_ns;
  std::atomic<int64_t> last_pool_ns;
  std::atomic<bool> pools_in_use;                    // a stream-ordered allocation happened on the device
  std::atomic<bool> graphs_in_use;                   // a captured one did (graph memory nodes)
  std::atomic<CUmemoryPool> pools[kPoolsPerDevice];  // explicit pools seen in cuMemAllocFromPoolAsync
};
SampleState g_samples[kSlots];

// Diagnostics for MEMTIDE_VERBOSE and the one-line warnings.
std::atomic<uint64_t> g_dlsym_lookups{0};
std::atomic<uint64_t> g_proc_address_lookups{0};
std::atomic<uint64_t> g_substituted{0};
std::atomic<uint64_t> g_unidentified{0};
std::atomic<uint64_t> g_conflicts{0};
std::atomic<uint64_t> g_own_wrappers_refused{0};
std::atomic<uint64_t> g_captured_skipped{0};
std::atomic<uint64_t> g_wrapper_calls{0};
std::atomic<bool> g_unidentified_logged{false};
std::atomic<bool> g_conflict_logged{false};

const char* BaseName(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

bool IsDriverLibraryName(const char* path) { return path != nullptr && strncmp(BaseName(path), "libcuda.so", 10) == 0; }

int64_t NowNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

// errno is the program's: memtide's bookkeeping between its calls must not change it.
class SavedErrno {
 public:
  SavedErrno() : saved_(errno) {}
  ~SavedErrno() { errno = saved_; }
  SavedErrno(const SavedErrno&) = delete;
  SavedErrno& operator=(const SavedErrno&) = delete;

 private:
  int saved_;
};

// A lookup of memtide's own failed and left a message (and its memory) in dlerror's per-thread state:
// reading it twice frees it, under the guard like the allocation, so the program's heap count is unchanged.
void DiscardDlerror() {
  dlerror();
  dlerror();
}

int FindDriverObject(dl_phdr_info* info, size_t, void* out) {
  if (!IsDriverLibraryName(info->dlpi_name)) return 0;
  size_t length = strnlen(info->dlpi_name, sizeof(g_driver_path) - 1);
  memcpy(out, info->dlpi_name, length);
  static_cast<char*>(out)[length] = '\0';
  return 1;
}

void SetDriverPath(const char* path) {
  int expected = 0;
  if (!g_driver_path_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
  size_t length = strnlen(path, sizeof(g_driver_path) - 1);
  memcpy(g_driver_path, path, length);
  g_driver_path[length] = '\0';
  g_driver_path_state.store(2, std::memory_order_release);
}

bool GetDriverPath(char (&out)[sizeof(g_driver_path)]) {
  if (g_driver_path_state.load(std::memory_order_acquire) != 2) return false;
  memcpy(out, g_driver_path, sizeof(out));
  return true;
}

// A handle on the loaded driver library, or null if none is loaded. Never loads anything. Guarded.
void* DriverHandle() {
  void* handle = g_driver_handle.load(std::memory_order_acquire);
  if (handle != nullptr) return handle;
  char path[sizeof(g_driver_path)] = {};
  if (!GetDriverPath(path)) {
    if (dl_iterate_phdr(FindDriverObject, path) == 0) return nullptr;
    SetDriverPath(path);
  }
  handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);  // a reference memtide keeps: the driver stays loaded
  if (handle == nullptr) {
    DiscardDlerror();
    return nullptr;
  }
  void* expected = nullptr;
  if (!g_driver_handle.compare_exchange_strong(expected, handle, std::memory_order_acq_rel)) return expected;
  return handle;
}

void RememberDriverObject(const char* path) {
  if (IsDriverLibraryName(path)) SetDriverPath(path);
}

// The slots keep pointers into the object that defined them for the rest of the process, so that object
// must never be unmapped: a runtime that fails to initialize dlcloses the driver, and a later dlopen would
// map it elsewhere, leaving the slots dangling. RTLD_NODELETE on the loaded object (RTLD_NOLOAD: never loads
// anything). Once per object; guarded.
void PinDefiningObject(const Dl_info& info) {
  static std::atomic<void*> pinned[4];
  for (auto& slot : pinned) {
    void* base = slot.load(std::memory_order_acquire);
    if (base == info.dli_fbase) return;
    if (base != nullptr) continue;
    if (!slot.compare_exchange_strong(base, info.dli_fbase, std::memory_order_acq_rel)) {
      if (base == info.dli_fbase) return;
      continue;
    }
    if (info.dli_fname == nullptr || dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == nullptr) {
      DiscardDlerror();
    }
    return;
  }
}

template <typename F>
void ResolveInternal(void* handle, F*& slot, const char* name) {
  slot = reinterpret_cast<F*>(handle != nullptr ? RealDlsym(handle, name) : nullptr);
  if (slot == nullptr && handle != nullptr) DiscardDlerror();
}

bool InternalsReady() { return g_internals_state.load(std::memory_order_acquire) == kResolved; }

// Resolves DriverInternals once, on the first counted call (the driver is loaded and initialized by then).
// Another thread resolving at the same time is waited for at most 50 ms: it may be blocked on the loader's
// lock held by this very thread (a wrapper called from a constructor during dlopen). Returns whether the
// functions are ready; without them memtide attributes to device 0 and skips samples.
bool EnsureInternals() {
  if (InternalsReady()) return true;
  int expected = kUnresolved;
  if (!g_internals_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) {
    int64_t deadline = NowNs() + 50 * 1000 * 1000;
    while (!InternalsReady() && NowNs() < deadline) sched_yield();
    return InternalsReady();
  }
  void* handle = DriverHandle();
  DriverInternals& d = g_internals;
  ResolveInternal(handle, d.ctx_get_device, "cuCtxGetDevice");
  ResolveInternal(handle, d.device_get_uuid, "cuDeviceGetUuid_v2");
  if (d.device_get_uuid == nullptr) ResolveInternal(handle, d.device_get_uuid, "cuDeviceGetUuid");
  ResolveInternal(handle, d.mem_get_info, "cuMemGetInfo_v2");
  ResolveInternal(handle, d.stream_is_capturing, "cuStreamIsCapturing");
  ResolveInternal(handle, d.stream_is_capturing_ptsz, "cuStreamIsCapturing_ptsz");
  ResolveInternal(handle, d.device_get_default_mem_pool, "cuDeviceGetDefaultMemPool");
  ResolveInternal(handle, d.device_get_mem_pool, "cuDeviceGetMemPool");
  ResolveInternal(handle, d.mem_pool_get_attribute, "cuMemPoolGetAttribute");
  ResolveInternal(handle, d.device_get_graph_mem_attribute, "cuDeviceGetGraphMemAttribute");
  ResolveInternal(handle, d.mem_get_address_range, "cuMemGetAddressRange_v2");
  // No driver found (a wrapper called before any libcuda is loaded): try again next time.
  g_internals_state.store(handle != nullptr ? kResolved : kUnresolved, std::memory_order_release);
  return handle != nullptr;
}

// The real function of an exported wrapper called through a PLT (or handed out before its slot was filled):
// the next definition past memtide in the global scope (another interposer, or libcuda linked with -lcuda),
// else the loaded driver's own (libcuda opened RTLD_LOCAL, by cudart or a library that needs it).
__attribute__((noinline)) void* ResolveEntrySlow(int entry) {
  ScopedGuard guard;
  SavedErrno saved;
  const char* name = kDriverEntryNames[entry];
  void* real = RealDlsym(RTLD_NEXT, name);
  if (real == nullptr) {
    DiscardDlerror();
    if (void* handle = DriverHandle()) {
      real = RealDlsym(handle, name);
      if (real == nullptr) DiscardDlerror();
    }
  }
  if (real == nullptr || IsDriverWrapper(real)) return nullptr;
  Dl_info info;
  if (dladdr(real, &info) != 0) PinDefiningObject(info);
  void* expected = nullptr;
  if (!g_real[entry].compare_exchange_strong(expected, real, std::memory_order_acq_rel)) return expected;
  return real;
}

template <typename F>
F* Real(int entry) {
  void* real = g_real[entry].load(std::memory_order_acquire);
  if (__builtin_expect(real == nullptr, 0)) real = ResolveEntrySlow(entry);
  return reinterpret_cast<F*>(real);
}

// ---- Devices, counting and sampling (all guarded, none on the malloc path). ----

// The device of the calling thread's current context; 0 if it has none (then the driver call that just
// succeeded did not need one either, e.g. pinned host memory before any context).
int CurrentOrdinal() {
  CUdevice device = 0;
  if (!EnsureInternals() || g_internals.ctx_get_device == nullptr || g_internals.ctx_get_device(&device) != kSuccess ||
      device < 0)
    return 0;
  return device;
}

int SlotFor(int ordinal) {
  int slot = GpuFindSlot(ordinal);
  if (slot >= 0) return slot;
  uint8_t uuid[16] = {};
  if (InternalsReady() && g_internals.device_get_uuid != nullptr) g_internals.device_get_uuid(uuid, ordinal);
  return GpuSlotForOrdinal(ordinal, uuid);
}

int64_t PoolReserved(CUmemoryPool pool) {
  uint64_t reserved = 0;
  if (pool == nullptr ||
      g_internals.mem_pool_get_attribute(pool, kPoolAttributeReservedCurrent, &reserved) != kSuccess) {
    return 0;
  }
  return static_cast<int64_t>(reserved);
}

// Stream-ordered pools of `ordinal`: its default and current pool, explicit pools seen, graph memory.
int64_t SumPoolReserved(int ordinal, SampleState& state) {
  const DriverInternals& d = g_internals;
  CUmemoryPool seen[kPoolsPerDevice + 2] = {};
  int count = 0;
  auto add = [&](CUmemoryPool pool) {
    if (pool == nullptr) return;
    for (int i = 0; i < count; ++i) {
      if (seen[i] == pool) return;
    }
    seen[count++] = pool;
  };
  CUmemoryPool pool = nullptr;
  if (d.device_get_default_mem_pool != nullptr && d.device_get_default_mem_pool(&pool, ordinal) == kSuccess) add(pool);
  pool = nullptr;
  if (d.device_get_mem_pool != nullptr && d.device_get_mem_pool(&pool, ordinal) == kSuccess) add(pool);
  for (auto& explicit_pool : state.pools) add(explicit_pool.load(std::memory_order_relaxed));
  int64_t reserved = 0;
  if (d.mem_pool_get_attribute != nullptr) {
    for (int i = 0; i < count; ++i) reserved += PoolReserved(seen[i]);
  }
  uint64_t graph = 0;
  if (state.graphs_in_use.load(std::memory_order_relaxed) && d.device_get_graph_mem_attribute != nullptr &&
      d.device_get_graph_mem_attribute(ordinal, kGraphAttributeReservedCurrent, &graph) == kSuccess) {
    reserved += static_cast<int64_t>(graph);
  }
  return reserved;
}

// Samples the device of the calling thread's context (`ordinal`, whose slot is `slot`): whole-device used
// and total at most every 100 ms, the pools' reserved bytes at most every 1 ms once pools are in use.
// `force` ignores the rate limits (the C API). Only ever on a thread that just used its context.
void MaybeSample(int ordinal, int slot, bool force) {
  if (slot < 0 || slot >= kSlots || !InternalsReady()) return;
  SampleState& state = g_samples[slot];
  int64_t now = NowNs();
  GpuSample sample{-1, -1, -1};
  bool sampled = false;
  if (g_internals.mem_get_info != nullptr &&
      (force || now - state.last_info_ns.load(std::memory_order_relaxed) >= kInfoSampleNs)) {
    state.last_info_ns.store(now, std::memory_order_relaxed);
    size_t free_bytes = 0, total_bytes = 0;
    if (g_internals.mem_get_info(&free_bytes, &total_bytes) == kSuccess) {
      sample.device_used_bytes = static_cast<int64_t>(total_bytes - free_bytes);
      sample.device_total_bytes = static_cast<int64_t>(total_bytes);
      sampled = true;
    }
  }
  if ((state.pools_in_use.load(std::memory_order_relaxed) || state.graphs_in_use.load(std::memory_order_relaxed)) &&
      (force || now - state.last_pool_ns.load(std::memory_order_relaxed) >= kPoolSampleNs)) {
    state.last_pool_ns.store(now, std::memory_order_relaxed);
    sample.pool_reserved_bytes = SumPoolReserved(ordinal, state);
    sampled = true;
  }
  if (sampled) GpuRecordSample(slot, sample);
}

void NotePool(int slot, CUmemoryPool pool) {
  if (slot < 0 || slot >= kSlots || pool == nullptr) return;
  for (auto& entry : g_samples[slot].pools) {
    CUmemoryPool current = entry.load(std::memory_order_relaxed);
    if (current == pool) return;
    if (current == nullptr && entry.compare_exchange_strong(current, pool, std::memory_order_relaxed)) return;
  }
}

enum class AllocationKind { kPlain, kStreamOrdered };

// After a successful allocation. `ordinal` < 0: the device of the calling thread's context.
__attribute__((noinline)) void CountAllocation(GpuSpace space, uint64_t key, uint64_t bytes, GpuBucket bucket,
                                               int ordinal, AllocationKind kind = AllocationKind::kPlain,
                                               CUmemoryPool pool = nullptr) {
  ScopedGuard guard;
  SavedErrno saved;
  g_wrapper_calls.fetch_add(1, std::memory_order_relaxed);
  int current = CurrentOrdinal();
  int slot = SlotFor(ordinal >= 0 ? ordinal : current);
  GpuRecordAllocation(space, key, bytes, bucket, slot);
  if (slot < 0 || (ordinal >= 0 && ordinal != current)) return;  // samples describe the context's device
  if (kind == AllocationKind::kStreamOrdered) {
    g_samples[slot].pools_in_use.store(true, std::memory_order_relaxed);
    NotePool(slot, pool);
  }
  MaybeSample(current, slot, false);
}

// Before the real free: takes the entry out (see the file comment).
__attribute__((noinline)) GpuTaken TakeForFree(GpuSpace space, uint64_t key) {
  ScopedGuard guard;
  return GpuTakeAllocation(space, key);
}

// After the real free returned `result`.
__attribute__((noinline)) void FinishFree(GpuSpace space, uint64_t key, const GpuTaken& taken, CUresult result) {
  ScopedGuard guard;
  SavedErrno saved;
  g_wrapper_calls.fetch_add(1, std::memory_order_relaxed);
  if (result != kSuccess) return GpuRestoreAllocation(space, key, taken);
  int current = CurrentOrdinal();
  int slot = SlotFor(current);
  if (!taken.found) GpuCountUnknownFree(slot);
  MaybeSample(current, slot, false);
}

// Whether an allocation or free on `stream` is being captured into a graph: it then creates a graph memory
// node, which the graph owns and its launches back without any API call (research/CUDA.md §4).
__attribute__((noinline)) bool StreamIsCapturing(CUstream stream, bool per_thread) {
  ScopedGuard guard;
  SavedErrno saved;
  if (!EnsureInternals()) return false;
  auto* is_capturing = per_thread ? g_internals.stream_is_capturing_ptsz : g_internals.stream_is_capturing;
  int status = 0;
  if (is_capturing == nullptr || is_capturing(stream, &status) != kSuccess || status == 0) return false;
  g_captured_skipped.fetch_add(1, std::memory_order_relaxed);
  int slot = SlotFor(CurrentOrdinal());
  if (slot >= 0) g_samples[slot].graphs_in_use.store(true, std::memory_order_relaxed);
  return true;
}

// Bytes of one element of a CUDA array format (CUarray_format); block-compressed and YUV formats are
// approximated per pixel. 4 for formats memtide does not know.
double FormatBytes(int format) {
  // clang-format off
  switch (format) {
    case 0x01: case 0x08: case 0xc0: case 0xc6: return 1;                               // 8-bit
    case 0x02: case 0x09: case 0x10: case 0xc1: case 0xc3: case 0xc7: case 0xc9: return 2;  // 16-bit
    case 0x03: case 0x0a: case 0x20: case 0xc2: case 0xc4: case 0xc8: case 0xca: return 4;  // 32-bit
    case 0xc5: case 0xcb: return 8;
    case 0x91: case 0x92: case 0x97: case 0x98: return 0.5;  // BC1, BC4: 8 bytes per 4x4 block
    case 0x93: case 0x94: case 0x95: case 0x96: case 0x99: case 0x9a: case 0x9b: case 0x9c: case 0x9d: case 0x9e:
      return 1;  // BC2/3/5/6H/7: 16 bytes per 4x4 block
    case 0xb0: return 1.5;  // NV12
    default: return 4;
  }
  // clang-format on
}

uint64_t ArrayBytes(size_t width, size_t height, size_t depth, int format, unsigned int channels) {
  double bytes = static_cast<double>(width) * static_cast<double>(height == 0 ? 1 : height) *
                 static_cast<double>(depth == 0 ? 1 : depth) * (channels == 0 ? 1 : channels) * FormatBytes(format);
  return static_cast<uint64_t>(bytes + 0.5);
}

uint64_t Key(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer); }

// Frees share one shape: take, real call, finish.
template <typename Call>
CUresult CountedFree(GpuSpace space, uint64_t key, Call call) {
  if (key == 0) return call();  // freeing nothing is not a free
  GpuTaken taken = TakeForFree(space, key);
  CUresult result = call();
  FinishFree(space, key, taken, result);
  return result;
}

}  // namespace
}  // namespace memtide::internal

// ---- The wrappers. Hidden definitions (their addresses are what lookups hand out) and exported aliases
// with the driver's exact names (what -lcuda programs bind to). ----

using namespace memtide::internal;  // NOLINT: the wrappers below are extern "C" and use this file's helpers

#define MEMTIDE_WRAPPER extern "C" __attribute__((visibility("hidden"), used))
#define MEMTIDE_EXPORT_DRIVER(name) \
  extern "C" decltype(memtide_wrap_##name) name __attribute__((alias("memtide_wrap_" #name), visibility("default")));

MEMTIDE_WRAPPER CUresult memtide_wrap_cuGetProcAddress(const char* symbol, void** function, int version,
                                                       cuuint64_t flags) {
  auto* real = Real<decltype(memtide_wrap_cuGetProcAddress)>(k_cuGetProcAddress);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(symbol, function, version, flags);
  g_proc_address_lookups.fetch_add(1, std::memory_order_relaxed);
  if (result == kSuccess && function != nullptr && *function != nullptr && symbol != nullptr) {
    *function = SubstituteDriverPointer(*function, symbol);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuGetProcAddress_v2(const char* symbol, void** function, int version,
                                                          cuuint64_t flags, int* symbol_status) {
  auto* real = Real<decltype(memtide_wrap_cuGetProcAddress_v2)>(k_cuGetProcAddress_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(symbol, function, version, flags, symbol_status);
  g_proc_address_lookups.fetch_add(1, std::memory_order_relaxed);
  if (result == kSuccess && function != nullptr && *function != nullptr && symbol != nullptr) {
    *function = SubstituteDriverPointer(*function, symbol);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
  auto* real = Real<decltype(memtide_wrap_cuMemAlloc_v2)>(k_cuMemAlloc_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, bytes);
  if (result == kSuccess && pointer != nullptr) {
    CountAllocation(GpuSpace::kDevicePointer, *pointer, bytes, GpuBucket::kDevice, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemFree_v2(CUdeviceptr pointer) {
  auto* real = Real<decltype(memtide_wrap_cuMemFree_v2)>(k_cuMemFree_v2);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kDevicePointer, pointer, [&] { return real(pointer); });
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocPitch_v2(CUdeviceptr* pointer, size_t* pitch, size_t width_bytes,
                                                         size_t height, unsigned int element_bytes) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocPitch_v2)>(k_cuMemAllocPitch_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, pitch, width_bytes, height, element_bytes);
  if (result == kSuccess && pointer != nullptr && pitch != nullptr) {
    CountAllocation(GpuSpace::kDevicePointer, *pointer, *pitch * height, GpuBucket::kDevice, -1);
  }
  return result;
}

namespace {

CUresult AllocateAsync(bool per_thread, CUdeviceptr* pointer, size_t bytes, CUmemoryPool pool, CUstream stream,
                       CUresult result) {
  if (result == kSuccess && pointer != nullptr && !StreamIsCapturing(stream, per_thread)) {
    CountAllocation(GpuSpace::kDevicePointer, *pointer, bytes, GpuBucket::kDevice, -1, AllocationKind::kStreamOrdered,
                    pool);
  }
  return result;
}

template <typename F>
CUresult FreeAsync(F* real, bool per_thread, CUdeviceptr pointer, CUstream stream) {
  if (pointer == 0 || StreamIsCapturing(stream, per_thread)) return real(pointer, stream);
  return CountedFree(GpuSpace::kDevicePointer, pointer, [&] { return real(pointer, stream); });
}

}  // namespace

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocAsync(CUdeviceptr* pointer, size_t bytes, CUstream stream) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocAsync)>(k_cuMemAllocAsync);
  if (real == nullptr) return kErrorNotInitialized;
  return AllocateAsync(false, pointer, bytes, nullptr, stream, real(pointer, bytes, stream));
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocAsync_ptsz(CUdeviceptr* pointer, size_t bytes, CUstream stream) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocAsync_ptsz)>(k_cuMemAllocAsync_ptsz);
  if (real == nullptr) return kErrorNotInitialized;
  return AllocateAsync(true, pointer, bytes, nullptr, stream, real(pointer, bytes, stream));
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocFromPoolAsync(CUdeviceptr* pointer, size_t bytes, CUmemoryPool pool,
                                                              CUstream stream) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocFromPoolAsync)>(k_cuMemAllocFromPoolAsync);
  if (real == nullptr) return kErrorNotInitialized;
  return AllocateAsync(false, pointer, bytes, pool, stream, real(pointer, bytes, pool, stream));
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* pointer, size_t bytes,
                                                                   CUmemoryPool pool, CUstream stream) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocFromPoolAsync_ptsz)>(k_cuMemAllocFromPoolAsync_ptsz);
  if (real == nullptr) return kErrorNotInitialized;
  return AllocateAsync(true, pointer, bytes, pool, stream, real(pointer, bytes, pool, stream));
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemFreeAsync(CUdeviceptr pointer, CUstream stream) {
  auto* real = Real<decltype(memtide_wrap_cuMemFreeAsync)>(k_cuMemFreeAsync);
  if (real == nullptr) return kErrorNotInitialized;
  return FreeAsync(real, false, pointer, stream);
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemFreeAsync_ptsz(CUdeviceptr pointer, CUstream stream) {
  auto* real = Real<decltype(memtide_wrap_cuMemFreeAsync_ptsz)>(k_cuMemFreeAsync_ptsz);
  if (real == nullptr) return kErrorNotInitialized;
  return FreeAsync(real, true, pointer, stream);
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocManaged(CUdeviceptr* pointer, size_t bytes, unsigned int flags) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocManaged)>(k_cuMemAllocManaged);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, bytes, flags);
  if (result == kSuccess && pointer != nullptr) {
    CountAllocation(GpuSpace::kDevicePointer, *pointer, bytes, GpuBucket::kManaged, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemCreate(CUmemGenericAllocationHandle* handle, size_t bytes,
                                                  const CUmemAllocationPropPrefix* properties,
                                                  unsigned long long flags) {
  auto* real = Real<decltype(memtide_wrap_cuMemCreate)>(k_cuMemCreate);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(handle, bytes, properties, flags);
  if (result == kSuccess && handle != nullptr) {
    bool on_device = properties != nullptr && properties->location.type == kLocationDevice;
    CountAllocation(GpuSpace::kPhysicalHandle, *handle, bytes, on_device ? GpuBucket::kDevice : GpuBucket::kPinnedHost,
                    on_device ? properties->location.id : -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemRelease(CUmemGenericAllocationHandle handle) {
  auto* real = Real<decltype(memtide_wrap_cuMemRelease)>(k_cuMemRelease);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kPhysicalHandle, handle, [&] { return real(handle); });
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemImportFromShareableHandle(CUmemGenericAllocationHandle* handle,
                                                                     void* os_handle, int handle_type) {
  auto* real = Real<decltype(memtide_wrap_cuMemImportFromShareableHandle)>(k_cuMemImportFromShareableHandle);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(handle, os_handle, handle_type);
  // The driver does not say how large an imported allocation is: its first cuMemMap does.
  if (result == kSuccess && handle != nullptr) {
    CountAllocation(GpuSpace::kPhysicalHandle, *handle, 0, GpuBucket::kImported, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemMap(CUdeviceptr pointer, size_t bytes, size_t offset,
                                               CUmemGenericAllocationHandle handle, unsigned long long flags) {
  auto* real = Real<decltype(memtide_wrap_cuMemMap)>(k_cuMemMap);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, bytes, offset, handle, flags);
  if (result == kSuccess) {
    ScopedGuard guard;
    GpuLearnImportedSize(handle, offset + bytes);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemHostAlloc(void** pointer, size_t bytes, unsigned int flags) {
  auto* real = Real<decltype(memtide_wrap_cuMemHostAlloc)>(k_cuMemHostAlloc);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, bytes, flags);
  if (result == kSuccess && pointer != nullptr) {
    CountAllocation(GpuSpace::kHostAllocation, Key(*pointer), bytes, GpuBucket::kPinnedHost, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemAllocHost_v2(void** pointer, size_t bytes) {
  auto* real = Real<decltype(memtide_wrap_cuMemAllocHost_v2)>(k_cuMemAllocHost_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, bytes);
  if (result == kSuccess && pointer != nullptr) {
    CountAllocation(GpuSpace::kHostAllocation, Key(*pointer), bytes, GpuBucket::kPinnedHost, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemFreeHost(void* pointer) {
  auto* real = Real<decltype(memtide_wrap_cuMemFreeHost)>(k_cuMemFreeHost);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kHostAllocation, Key(pointer), [&] { return real(pointer); });
}

namespace {

template <typename F>
CUresult RegisterHost(F* real, void* pointer, size_t bytes, unsigned int flags) {
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, bytes, flags);
  if (result == kSuccess) {
    CountAllocation(GpuSpace::kHostRegistration, Key(pointer), bytes, GpuBucket::kHostRegistered, -1);
  }
  return result;
}

}  // namespace

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemHostRegister(void* pointer, size_t bytes, unsigned int flags) {
  return RegisterHost(Real<decltype(memtide_wrap_cuMemHostRegister)>(k_cuMemHostRegister), pointer, bytes, flags);
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemHostRegister_v2(void* pointer, size_t bytes, unsigned int flags) {
  return RegisterHost(Real<decltype(memtide_wrap_cuMemHostRegister_v2)>(k_cuMemHostRegister_v2), pointer, bytes, flags);
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMemHostUnregister(void* pointer) {
  auto* real = Real<decltype(memtide_wrap_cuMemHostUnregister)>(k_cuMemHostUnregister);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kHostRegistration, Key(pointer), [&] { return real(pointer); });
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuArrayCreate_v2(CUarray* array, const CudaArrayDescriptor* descriptor) {
  auto* real = Real<decltype(memtide_wrap_cuArrayCreate_v2)>(k_cuArrayCreate_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(array, descriptor);
  if (result == kSuccess && array != nullptr && descriptor != nullptr) {
    uint64_t bytes = ArrayBytes(descriptor->width, descriptor->height, 1, descriptor->format, descriptor->channels);
    CountAllocation(GpuSpace::kArray, Key(*array), bytes, GpuBucket::kArray, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuArray3DCreate_v2(CUarray* array, const CudaArray3DDescriptor* descriptor) {
  auto* real = Real<decltype(memtide_wrap_cuArray3DCreate_v2)>(k_cuArray3DCreate_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(array, descriptor);
  // Sparse and deferred-mapping arrays have no memory of their own until something is mapped into them.
  if (result == kSuccess && array != nullptr && descriptor != nullptr &&
      (descriptor->flags & (kArraySparse | kArrayDeferredMapping)) == 0) {
    uint64_t bytes =
        ArrayBytes(descriptor->width, descriptor->height, descriptor->depth, descriptor->format, descriptor->channels);
    CountAllocation(GpuSpace::kArray, Key(*array), bytes, GpuBucket::kArray, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMipmappedArrayCreate(CUmipmappedArray* array,
                                                             const CudaArray3DDescriptor* descriptor,
                                                             unsigned int levels) {
  auto* real = Real<decltype(memtide_wrap_cuMipmappedArrayCreate)>(k_cuMipmappedArrayCreate);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(array, descriptor, levels);
  if (result == kSuccess && array != nullptr && descriptor != nullptr &&
      (descriptor->flags & (kArraySparse | kArrayDeferredMapping)) == 0) {
    // Each level halves every extent (down to 1), except the layer count of a layered array.
    bool layered = (descriptor->flags & 0x01) != 0;  // CUDA_ARRAY3D_LAYERED
    auto halve = [](size_t extent, unsigned int level) -> size_t {
      return extent == 0 ? 0 : ((extent >> level) == 0 ? 1 : extent >> level);
    };
    uint64_t bytes = 0;
    for (unsigned int level = 0; level < levels && level < 64; ++level) {
      bytes += ArrayBytes(halve(descriptor->width, level), halve(descriptor->height, level),
                          layered ? descriptor->depth : halve(descriptor->depth, level), descriptor->format,
                          descriptor->channels);
    }
    CountAllocation(GpuSpace::kArray, Key(*array), bytes, GpuBucket::kArray, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuArrayDestroy(CUarray array) {
  auto* real = Real<decltype(memtide_wrap_cuArrayDestroy)>(k_cuArrayDestroy);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kArray, Key(array), [&] { return real(array); });
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuMipmappedArrayDestroy(CUmipmappedArray array) {
  auto* real = Real<decltype(memtide_wrap_cuMipmappedArrayDestroy)>(k_cuMipmappedArrayDestroy);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kArray, Key(array), [&] { return real(array); });
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuIpcOpenMemHandle_v2(CUdeviceptr* pointer, CUipcMemHandle handle,
                                                            unsigned int flags) {
  auto* real = Real<decltype(memtide_wrap_cuIpcOpenMemHandle_v2)>(k_cuIpcOpenMemHandle_v2);
  if (real == nullptr) return kErrorNotInitialized;
  CUresult result = real(pointer, handle, flags);
  if (result == kSuccess && pointer != nullptr) {
    ScopedGuard guard;
    CUdeviceptr base = 0;
    size_t bytes = 0;
    if (EnsureInternals() && g_internals.mem_get_address_range != nullptr)
      g_internals.mem_get_address_range(&base, &bytes, *pointer);
    CountAllocation(GpuSpace::kIpcMapping, *pointer, bytes, GpuBucket::kImported, -1);
  }
  return result;
}

MEMTIDE_WRAPPER CUresult memtide_wrap_cuIpcCloseMemHandle(CUdeviceptr pointer) {
  auto* real = Real<decltype(memtide_wrap_cuIpcCloseMemHandle)>(k_cuIpcCloseMemHandle);
  if (real == nullptr) return kErrorNotInitialized;
  return CountedFree(GpuSpace::kIpcMapping, pointer, [&] { return real(pointer); });
}

#define MEMTIDE_EXPORT_ENTRY(name) MEMTIDE_EXPORT_DRIVER(name)
MEMTIDE_DRIVER_ENTRY_POINTS(MEMTIDE_EXPORT_ENTRY)
#undef MEMTIDE_EXPORT_ENTRY

namespace memtide::internal {
namespace {

// The wrappers' own (hidden, non-interposable) addresses, in DriverEntry order.
void* const kWrappers[] = {
#define MEMTIDE_WRAPPER_ADDRESS(name) reinterpret_cast<void*>(&memtide_wrap_##name),
    MEMTIDE_DRIVER_ENTRY_POINTS(MEMTIDE_WRAPPER_ADDRESS)
#undef MEMTIDE_WRAPPER_ADDRESS
};
static_assert(sizeof(kWrappers) / sizeof(kWrappers[0]) == kDriverEntryCount, "one wrapper per entry point");

int EntryOfName(const char* name) {
  for (int entry = 0; entry < kDriverEntryCount; ++entry) {
    if (strcmp(kDriverEntryNames[entry], name) == 0) return entry;
  }
  return -1;
}

int EntryOfWrapper(const void* pointer) {
  for (int entry = 0; entry < kDriverEntryCount; ++entry) {
    if (kWrappers[entry] == pointer) return entry;
  }
  return -1;
}

// Whether the driver could answer a lookup of `requested` with one of the wrapped symbols: it hands out
// the base name or a suffixed variant (cuMemAlloc -> cuMemAlloc_v2, cuMemAllocAsync -> _ptsz). A filter
// only, so that dladdr runs for a few dozen of the ~450 lookups a runtime makes; routing is by pointer.
bool MayNameWrappedEntry(const char* requested) {
  size_t length = strlen(requested);
  if (length < 3) return false;
  for (const char* name : kDriverEntryNames) {
    if (strncmp(name, requested, length) == 0 && (name[length] == '\0' || name[length] == '_')) return true;
  }
  return false;
}

// MEMTIDE_VERBOSE: what the driver layer saw, once at exit, in processes that used the driver.
__attribute__((destructor)) void LogDriverDiagnostics() {
  uint64_t lookups = g_dlsym_lookups.load() + g_proc_address_lookups.load();
  if (!VerboseLogging() || (lookups == 0 && g_wrapper_calls.load() == 0)) return;
  Log("gpu: driver lookups {} through dlsym and {} through cuGetProcAddress, {} routed to wrappers, "
      "{} unidentified, {} conflicting, {} own wrappers refused; {} counted calls, {} captured skipped",
      g_dlsym_lookups.load(), g_proc_address_lookups.load(), g_substituted.load(), g_unidentified.load(),
      g_conflicts.load(), g_own_wrappers_refused.load(), g_wrapper_calls.load(), g_captured_skipped.load());
}

}  // namespace

bool IsWrappedDriverName(const char* name) { return name != nullptr && EntryOfName(name) >= 0; }

void* DriverWrapperForName(const char* name) {
  int entry = name != nullptr ? EntryOfName(name) : -1;
  return entry >= 0 ? kWrappers[entry] : nullptr;
}

bool IsDriverWrapper(const void* pointer) { return EntryOfWrapper(pointer) >= 0; }

bool DriverLoaded() {
  static std::atomic<bool> loaded{false};
  if (loaded.load(std::memory_order_acquire)) return true;
  ScopedGuard guard;
  char path[sizeof(g_driver_path)] = {};
  if (dl_iterate_phdr(FindDriverObject, path) == 0) return false;
  RememberDriverObject(path);
  loaded.store(true, std::memory_order_release);
  return true;
}

bool IsDriverCaller(const void* return_address) {
  ScopedGuard guard;
  SavedErrno saved;
  Dl_info info;
  return dladdr(return_address, &info) != 0 && IsDriverLibraryName(info.dli_fname);
}

void* SubstituteDriverPointer(void* real, const char* requested) {
  if (real == nullptr || requested == nullptr || !MayNameWrappedEntry(requested)) return real;
  ScopedGuard guard;
  SavedErrno saved;
  if (IsDriverWrapper(real)) {
    // A driver (or a fake one) answered with memtide's own export: storing it as "real" would recurse.
    g_own_wrappers_refused.fetch_add(1, std::memory_order_relaxed);
    return real;
  }
  Dl_info info;
  if (dladdr(real, &info) == 0 || info.dli_sname == nullptr || info.dli_saddr != real) {
    g_unidentified.fetch_add(1, std::memory_order_relaxed);
    if (!g_unidentified_logged.exchange(true)) {
      Log("the CUDA driver answered '{}' with a pointer that is no exported symbol; calls through it are not "
          "counted",
          requested);
    }
    return real;
  }
  int entry = EntryOfName(info.dli_sname);
  if (entry < 0) return real;
  void* expected = nullptr;
  if (!g_real[entry].compare_exchange_strong(expected, real, std::memory_order_acq_rel) && expected != real) {
    // Two different definitions of one symbol (two drivers, or an interposer seen both ways): one slot
    // cannot forward to both, so this one stays unwrapped.
    g_conflicts.fetch_add(1, std::memory_order_relaxed);
    if (!g_conflict_logged.exchange(true)) {
      Log("two different definitions of {} are in use ({}); calls through the second are not counted", info.dli_sname,
          info.dli_fname != nullptr ? info.dli_fname : "?");
    }
    return real;
  }
  RememberDriverObject(info.dli_fname);
  PinDefiningObject(info);
  g_substituted.fetch_add(1, std::memory_order_relaxed);
  return kWrappers[entry];
}

void* ConfirmExportedWrapper(void* wrapper) {
  int entry = EntryOfWrapper(wrapper);
  if (entry < 0) return wrapper;
  return Real<void>(entry) != nullptr ? wrapper : nullptr;
}

void ResetCudaHooksInChild() {
  if (g_driver_path_state.load(std::memory_order_relaxed) == 1) g_driver_path_state.store(0, std::memory_order_relaxed);
  if (g_internals_state.load(std::memory_order_relaxed) == kResolving) {
    g_internals_state.store(kUnresolved, std::memory_order_relaxed);
  }
  for (SampleState& state : g_samples) {
    state.last_info_ns.store(0, std::memory_order_relaxed);
    state.last_pool_ns.store(0, std::memory_order_relaxed);
    state.pools_in_use.store(false, std::memory_order_relaxed);
    state.graphs_in_use.store(false, std::memory_order_relaxed);
    for (auto& pool : state.pools) pool.store(nullptr, std::memory_order_relaxed);
  }
  GpuResetInChild();
}

void NoteDriverLookupThroughDlsym() { g_dlsym_lookups.fetch_add(1, std::memory_order_relaxed); }

int ReadGpuStats(int ordinal, memtide_gpu_stats* out) {
  SegmentGpuDevice device;
  if (GpuAccountingActive() && InternalsReady() && g_internals.ctx_get_device != nullptr) {
    // A thread with a context can sample its device now, so the caller compares against fresh figures.
    CUdevice current = -1;
    if (g_internals.ctx_get_device(&current) == kSuccess && current == ordinal) {
      int slot = GpuFindSlot(ordinal);
      if (slot >= 0) MaybeSample(ordinal, slot, true);
    }
  }
  bool found = GpuReadDevice(ordinal, &device);
  memset(out, 0, sizeof(*out));
  out->ordinal = found ? device.ordinal : -1;
  memcpy(out->uuid, device.uuid, sizeof(out->uuid));
  out->current_bytes = static_cast<uint64_t>(device.device_current_bytes);
  out->peak_bytes = static_cast<uint64_t>(device.device_peak_bytes);
  out->managed_current_bytes = static_cast<uint64_t>(device.managed_current_bytes);
  out->managed_peak_bytes = static_cast<uint64_t>(device.managed_peak_bytes);
  out->pinned_host_current_bytes = static_cast<uint64_t>(device.pinned_host_current_bytes);
  out->pinned_host_peak_bytes = static_cast<uint64_t>(device.pinned_host_peak_bytes);
  out->host_registered_bytes = static_cast<uint64_t>(device.host_registered_bytes);
  out->imported_bytes = static_cast<uint64_t>(device.imported_bytes);
  out->array_bytes = static_cast<uint64_t>(device.array_bytes);
  out->pool_reserved_bytes = static_cast<uint64_t>(device.pool_reserved_bytes);
  out->device_used_bytes = static_cast<uint64_t>(device.device_used_bytes);
  out->device_total_bytes = static_cast<uint64_t>(device.device_total_bytes);
  out->allocations = device.allocations;
  out->frees = device.frees;
  out->unknown_frees = device.unknown_frees;
  return found ? 0 : -1;
}

}  // namespace memtide::internal
