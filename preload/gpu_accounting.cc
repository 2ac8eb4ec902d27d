// See gpu_accounting.h. Runs on the threads that call the CUDA driver, the monitor thread and the C API,
// never on the host malloc/free path. One mutex guards everything below; the table's memory comes from
// raw mmap/munmap system calls (not the traced malloc, not memtide's counted mmap hook).
#include "gpu_accounting.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "log.h"

namespace memtide::internal {
namespace {

constexpr int kSlots = MEMTIDE_SEGMENT_GPU_DEVICES;
constexpr int kBuckets = 6;
constexpr uint8_t kEmpty = 0;
constexpr uint8_t kTombstone = 0xff;
constexpr size_t kInitialCapacity = 4096;  // entries; 96 KiB, mapped at the first allocation

struct Entry {
  uint64_t key;
  uint64_t bytes;
  uint8_t space;  // GpuSpace, kEmpty or kTombstone
  uint8_t bucket;
  int8_t slot;
};

struct DeviceState {
  bool used;
  int32_t ordinal;
  uint8_t uuid[16];
  int64_t current[kBuckets];
  int64_t device_peak;
  int64_t managed_peak;
  int64_t pinned_peak;
  int64_t pool_reserved;
  int64_t device_used;
  int64_t device_total;
  uint64_t allocations;
  uint64_t frees;
  uint64_t unknown_frees;
};

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
// All below guarded by g_mutex, except the atomics.
Entry* g_table = nullptr;
size_t g_capacity = 0;  // power of two
size_t g_used = 0;      // live entries + tombstones
bool g_table_failed = false;
DeviceState g_devices[kSlots];  // zero-initialized: every slot unused
std::atomic<bool> g_active{false};
// Imported handles whose size is not known yet (learned at their first cuMemMap).
std::atomic<int64_t> g_unsized_imports{0};

class Locked {
 public:
  Locked() { pthread_mutex_lock(&g_mutex); }
  ~Locked() { pthread_mutex_unlock(&g_mutex); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
};

void* MapAnonymous(size_t bytes) {
  long result = syscall(SYS_mmap, nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return result == -1 ? nullptr : reinterpret_cast<void*>(result);
}

void Unmap(void* address, size_t bytes) { syscall(SYS_munmap, address, bytes); }

uint64_t Hash(GpuSpace space, uint64_t key) {
  uint64_t x = key ^ (static_cast<uint64_t>(space) << 56);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Entry* FindLocked(GpuSpace space, uint64_t key) {
  if (g_table == nullptr) return nullptr;
  size_t mask = g_capacity - 1;
  for (size_t i = Hash(space, key) & mask, probes = 0; probes < g_capacity; i = (i + 1) & mask, ++probes) {
    Entry& entry = g_table[i];
    if (entry.space == kEmpty) return nullptr;
    if (entry.space == static_cast<uint8_t>(space) && entry.key == key) return &entry;
  }
  return nullptr;
}

void InsertLocked(Entry* table, size_t capacity, const Entry& value) {
  size_t mask = capacity - 1;
  for (size_t i = Hash(static_cast<GpuSpace>(value.space), value.key) & mask;; i = (i + 1) & mask) {
    if (table[i].space == kEmpty || table[i].space == kTombstone) {
      table[i] = value;
      return;
    }
  }
}

// Makes room for one more entry: maps the first table, or rehashes into one twice as large (dropping
// tombstones) once live entries and tombstones fill half of it. False if no memory could be mapped.
bool ReserveLocked() {
  if (g_table != nullptr && (g_used + 1) * 2 <= g_capacity) return true;
  if (g_table_failed) return false;
  size_t live = 0;
  for (size_t i = 0; g_table != nullptr && i < g_capacity; ++i) {
    if (g_table[i].space != kEmpty && g_table[i].space != kTombstone) ++live;
  }
  size_t capacity = g_table == nullptr ? kInitialCapacity : g_capacity;
  while ((live + 1) * 4 > capacity) capacity *= 2;  // at most a quarter full after the rehash
  Entry* table = static_cast<Entry*>(MapAnonymous(capacity * sizeof(Entry)));
  if (table == nullptr) {
    g_table_failed = true;
    Log("cannot map memory for the GPU allocation table; GPU allocations made from now on are not counted");
    return false;
  }
  for (size_t i = 0; g_table != nullptr && i < g_capacity; ++i) {
    if (g_table[i].space != kEmpty && g_table[i].space != kTombstone) InsertLocked(table, capacity, g_table[i]);
  }
  if (g_table != nullptr) Unmap(g_table, g_capacity * sizeof(Entry));
  g_table = table;
  g_capacity = capacity;
  g_used = live;
  return true;
}

void AddLocked(int slot, GpuBucket bucket, int64_t bytes) {
  DeviceState& device = g_devices[slot];
  int index = static_cast<int>(bucket);
  device.current[index] += bytes;
  if (bucket == GpuBucket::kArray) device.current[static_cast<int>(GpuBucket::kDevice)] += bytes;
  int64_t device_current = device.current[static_cast<int>(GpuBucket::kDevice)];
  if (device_current > device.device_peak) device.device_peak = device_current;
  int64_t managed = device.current[static_cast<int>(GpuBucket::kManaged)];
  if (managed > device.managed_peak) device.managed_peak = managed;
  int64_t pinned = device.current[static_cast<int>(GpuBucket::kPinnedHost)];
  if (pinned > device.pinned_peak) device.pinned_peak = pinned;
}

void SubtractLocked(int slot, GpuBucket bucket, int64_t bytes) {
  DeviceState& device = g_devices[slot];
  device.current[static_cast<int>(bucket)] -= bytes;
  if (bucket == GpuBucket::kArray) device.current[static_cast<int>(GpuBucket::kDevice)] -= bytes;
}

void FillLocked(const DeviceState& device, SegmentGpuDevice* out) {
  memset(out, 0, sizeof(*out));
  memcpy(out->uuid, device.uuid, sizeof(out->uuid));
  out->ordinal = device.ordinal;
  out->device_current_bytes = device.current[static_cast<int>(GpuBucket::kDevice)];
  out->device_peak_bytes = device.device_peak;
  out->managed_current_bytes = device.current[static_cast<int>(GpuBucket::kManaged)];
  out->managed_peak_bytes = device.managed_peak;
  out->pinned_host_current_bytes = device.current[static_cast<int>(GpuBucket::kPinnedHost)];
  out->pinned_host_peak_bytes = device.pinned_peak;
  out->host_registered_bytes = device.current[static_cast<int>(GpuBucket::kHostRegistered)];
  out->imported_bytes = device.current[static_cast<int>(GpuBucket::kImported)];
  out->array_bytes = device.current[static_cast<int>(GpuBucket::kArray)];
  out->pool_reserved_bytes = device.pool_reserved;
  out->device_used_bytes = device.device_used;
  out->device_total_bytes = device.device_total;
  out->allocations = device.allocations;
  out->frees = device.frees;
  out->unknown_frees = device.unknown_frees;
}

bool ValidSlot(int slot) { return slot >= 0 && slot < kSlots && g_devices[slot].used; }

}  // namespace

bool GpuAccountingActive() { return g_active.load(std::memory_order_acquire); }

int GpuFindSlot(int ordinal) {
  if (ordinal < 0) return -1;
  Locked locked;
  for (int slot = 0; slot < kSlots; ++slot) {
    if (g_devices[slot].used && g_devices[slot].ordinal == ordinal) return slot;
  }
  return -1;
}

int GpuSlotForOrdinal(int ordinal, const uint8_t* uuid) {
  if (ordinal < 0) return -1;
  static bool full_logged = false;
  Locked locked;
  int free_slot = -1;
  for (int slot = 0; slot < kSlots; ++slot) {
    if (g_devices[slot].used && g_devices[slot].ordinal == ordinal) return slot;
    if (!g_devices[slot].used && free_slot < 0) free_slot = slot;
  }
  if (free_slot < 0) {
    if (!full_logged) {
      full_logged = true;
      Log("more than {} GPUs in use; allocations on device {} and later ones are not counted", kSlots, ordinal);
    }
    return -1;
  }
  DeviceState& device = g_devices[free_slot];
  memset(&device, 0, sizeof(device));
  device.used = true;
  device.ordinal = ordinal;
  if (uuid != nullptr) memcpy(device.uuid, uuid, sizeof(device.uuid));
  g_active.store(true, std::memory_order_release);
  return free_slot;
}

void GpuRecordAllocation(GpuSpace space, uint64_t key, uint64_t bytes, GpuBucket bucket, int slot) {
  Locked locked;
  if (!ValidSlot(slot)) return;
  if (Entry* stale = FindLocked(space, key)) {
    // Its free went through a path memtide does not see (a v1 entry point, a destroyed context).
    SubtractLocked(stale->slot, static_cast<GpuBucket>(stale->bucket), static_cast<int64_t>(stale->bytes));
    stale->space = kTombstone;
  }
  if (!ReserveLocked()) return;
  Entry entry{key, bytes, static_cast<uint8_t>(space), static_cast<uint8_t>(bucket), static_cast<int8_t>(slot)};
  InsertLocked(g_table, g_capacity, entry);
  ++g_used;
  if (bucket == GpuBucket::kImported && bytes == 0) g_unsized_imports.fetch_add(1, std::memory_order_relaxed);
  AddLocked(slot, bucket, static_cast<int64_t>(bytes));
  ++g_devices[slot].allocations;
}

GpuTaken GpuTakeAllocation(GpuSpace space, uint64_t key) {
  Locked locked;
  Entry* entry = FindLocked(space, key);
  if (entry == nullptr) return GpuTaken{false, GpuBucket::kDevice, -1, 0};
  GpuTaken taken{true, static_cast<GpuBucket>(entry->bucket), entry->slot, entry->bytes};
  entry->space = kTombstone;
  if (taken.bucket == GpuBucket::kImported && taken.bytes == 0) {
    g_unsized_imports.fetch_sub(1, std::memory_order_relaxed);
  }
  SubtractLocked(taken.slot, taken.bucket, static_cast<int64_t>(taken.bytes));
  ++g_devices[taken.slot].frees;
  return taken;
}

void GpuRestoreAllocation(GpuSpace space, uint64_t key, const GpuTaken& taken) {
  if (!taken.found) return;
  Locked locked;
  --g_devices[taken.slot].frees;
  if (FindLocked(space, key) != nullptr || !ReserveLocked()) return;  // reused meanwhile: the newer one stays
  Entry entry{key, taken.bytes, static_cast<uint8_t>(space), static_cast<uint8_t>(taken.bucket), taken.slot};
  InsertLocked(g_table, g_capacity, entry);
  ++g_used;
  if (taken.bucket == GpuBucket::kImported && taken.bytes == 0) {
    g_unsized_imports.fetch_add(1, std::memory_order_relaxed);
  }
  AddLocked(taken.slot, taken.bucket, static_cast<int64_t>(taken.bytes));
}

void GpuCountUnknownFree(int slot) {
  Locked locked;
  if (ValidSlot(slot)) ++g_devices[slot].unknown_frees;
}

void GpuLearnImportedSize(uint64_t handle, uint64_t bytes) {
  if (g_unsized_imports.load(std::memory_order_relaxed) <= 0) return;
  Locked locked;
  Entry* entry = FindLocked(GpuSpace::kPhysicalHandle, handle);
  if (entry == nullptr || entry->bucket != static_cast<uint8_t>(GpuBucket::kImported) || entry->bytes != 0) return;
  entry->bytes = bytes;
  g_unsized_imports.fetch_sub(1, std::memory_order_relaxed);
  AddLocked(entry->slot, GpuBucket::kImported, static_cast<int64_t>(bytes));
}

void GpuRecordSample(int slot, const GpuSample& sample) {
  Locked locked;
  if (!ValidSlot(slot)) return;
  DeviceState& device = g_devices[slot];
  if (sample.pool_reserved_bytes >= 0) device.pool_reserved = sample.pool_reserved_bytes;
  if (sample.device_used_bytes >= 0) device.device_used = sample.device_used_bytes;
  if (sample.device_total_bytes >= 0) device.device_total = sample.device_total_bytes;
}

uint32_t GpuFillSegment(SegmentGpuDevice* out, uint32_t capacity) {
  if (!GpuAccountingActive()) return 0;
  Locked locked;
  uint32_t count = 0;
  for (int slot = 0; slot < kSlots && count < capacity; ++slot) {
    if (g_devices[slot].used) FillLocked(g_devices[slot], &out[count++]);
  }
  return count;
}

bool GpuReadDevice(int ordinal, SegmentGpuDevice* out) {
  memset(out, 0, sizeof(*out));
  out->ordinal = -1;
  if (!GpuAccountingActive() || ordinal < 0) return false;
  Locked locked;
  for (int slot = 0; slot < kSlots; ++slot) {
    if (!g_devices[slot].used || g_devices[slot].ordinal != ordinal) continue;
    FillLocked(g_devices[slot], out);
    return true;
  }
  return false;
}

void GpuResetPeaks() {
  if (!GpuAccountingActive()) return;
  Locked locked;
  for (DeviceState& device : g_devices) {
    device.device_peak = device.current[static_cast<int>(GpuBucket::kDevice)];
    device.managed_peak = device.current[static_cast<int>(GpuBucket::kManaged)];
    device.pinned_peak = device.current[static_cast<int>(GpuBucket::kPinnedHost)];
  }
}

void GpuResetInChild() {
  // Only this thread exists in the child; the mutex may have been held by one that does not.
  pthread_mutex_init(&g_mutex, nullptr);
  if (g_table != nullptr) Unmap(g_table, g_capacity * sizeof(Entry));
  g_table = nullptr;
  g_capacity = 0;
  g_used = 0;
  g_table_failed = false;
  memset(g_devices, 0, sizeof(g_devices));
  g_unsized_imports.store(0, std::memory_order_relaxed);
  g_active.store(false, std::memory_order_release);
}

}  // namespace memtide::internal
