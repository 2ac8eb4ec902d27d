// GPU memory accounting (DESIGN.md decision 6): the side table of live driver allocations and the per-device
// counters that the segment, the C API and `memtide run` show. Fed by the driver wrappers
// (cuda_driver_hooks.cc) on the threads that call the driver, read by the monitor thread and the C API.
//
// Nothing here runs on the host malloc/free path. Every function takes one process-wide mutex for a few
// hundred nanoseconds (driver allocations are rare and cost microseconds themselves); none allocates
// through malloc: the table lives in anonymous memory mapped with raw system calls, so it is neither
// counted as the program's heap nor its mmap. Not async-signal-safe.
//
// Byte counts are the sizes the driver was asked for (pitched allocations: pitch × height as returned;
// arrays: the descriptor's element bytes), per device ordinal of the process, keyed for readers by the
// device's UUID (ordinals differ between processes under CUDA_VISIBLE_DEVICES).
#ifndef MEMTIDE_PRELOAD_GPU_ACCOUNTING_H_
#define MEMTIDE_PRELOAD_GPU_ACCOUNTING_H_

#include <stdint.h>

#include "memtide/segment.h"

namespace memtide::internal {

// Which namespace a key lives in: each free entry point looks only in its own.
enum class GpuSpace : uint8_t {
  kDevicePointer = 1,  // cuMemAlloc*, cuMemAllocAsync*, cuMemAllocManaged: freed by cuMemFree_v2/cuMemFreeAsync*
  kHostAllocation,     // cuMemHostAlloc, cuMemAllocHost_v2: freed by cuMemFreeHost
  kHostRegistration,   // cuMemHostRegister*: ended by cuMemHostUnregister
  kPhysicalHandle,     // cuMemCreate, cuMemImportFromShareableHandle: released by cuMemRelease
  kArray,              // cuArray*Create*, cuMipmappedArrayCreate: destroyed by cuArrayDestroy/cuMipmappedArrayDestroy
  kIpcMapping,         // cuIpcOpenMemHandle_v2: closed by cuIpcCloseMemHandle
};

// Which counter an allocation moves.
enum class GpuBucket : uint8_t {
  kDevice,          // device memory the process allocated (also VMM physical memory on a device)
  kArray,           // device memory held by CUDA arrays: counted in kDevice's current/peak as well
  kManaged,         // cuMemAllocManaged
  kPinnedHost,      // cuMemHostAlloc, cuMemAllocHost_v2, cuMemCreate on a host location
  kHostRegistered,  // already-allocated host memory pinned with cuMemHostRegister (counted as heap/mmap too)
  kImported,        // memory another process owns (IPC handles, imported VMM handles)
};

struct GpuTaken {
  bool found;
  GpuBucket bucket;
  int8_t slot;
  uint64_t bytes;
};

// Sampled figures for one device; a negative value means "not sampled this time" (keep the last one).
struct GpuSample {
  int64_t pool_reserved_bytes;
  int64_t device_used_bytes;
  int64_t device_total_bytes;
};

// True once any GPU allocation was counted (the monitor skips GPU work otherwise). Lock-free.
bool GpuAccountingActive();

// The slot of device `ordinal`, or -1 if it has none yet (or `ordinal` is out of range).
int GpuFindSlot(int ordinal);
// The slot of device `ordinal`, created with `uuid` (16 bytes, may be null) if new. -1 if every slot is taken.
int GpuSlotForOrdinal(int ordinal, const uint8_t* uuid);

// A successful allocation of `bytes` under `key`. A key already present (its free went through a path
// memtide does not see) is replaced: its bytes are released first.
void GpuRecordAllocation(GpuSpace space, uint64_t key, uint64_t bytes, GpuBucket bucket, int slot);
// Removes `key` before the real free runs (so a concurrent allocation reusing the address cannot be
// confused with it) and releases its bytes. Not found: {found = false}, nothing changes.
GpuTaken GpuTakeAllocation(GpuSpace space, uint64_t key);
// The real free failed: put back what GpuTakeAllocation removed.
void GpuRestoreAllocation(GpuSpace space, uint64_t key, const GpuTaken& taken);
// A successful free of a key memtide never saw allocated: counted, never subtracted.
void GpuCountUnknownFree(int slot);
// An imported handle whose size was unknown at import learns it at its first cuMemMap. Cheap when no
// imported handle of unknown size exists (one relaxed load).
void GpuLearnImportedSize(uint64_t handle, uint64_t bytes);

void GpuRecordSample(int slot, const GpuSample& sample);

// For the segment (monitor thread, under the publish lock): fills up to `capacity` devices, returns how many.
uint32_t GpuFillSegment(SegmentGpuDevice* out, uint32_t capacity);
// One device by ordinal; false (and *out zeroed, ordinal -1) if memtide has not seen it.
bool GpuReadDevice(int ordinal, SegmentGpuDevice* out);
// memtide_reset_peak: every peak becomes the current value.
void GpuResetPeaks();
// fork() child: GPU counting starts afresh (the child cannot use the parent's CUDA state anyway).
void GpuResetInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_GPU_ACCOUNTING_H_
