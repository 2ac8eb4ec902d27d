// The live-allocation table: block address -> what the tracer knows about the block (stack id, requested size,
// sample weight). Runs on the hot path: every traced allocation inserts, every free of a possibly traced block
// removes, on any thread, inside the program's malloc/free under the preload's reentrancy guard.
//
// 64 shards chosen by a hash of the address's 2 MiB region, each a flat open-addressing table (linear probing,
// backward-shift deletion, so no tombstones accumulate under malloc/free churn) behind its own spin lock. No global
// lock: two threads contend only when their blocks' regions hash to the same shard. Region, not address: allocators
// give each thread its own arena, heap segment or runs of pages (glibc: a 64 MiB heap per arena), so a
// thread's blocks fall in few regions and its calls keep hitting the same few shard locks, which stay in its
// core's cache instead of bouncing between cores as 64 randomly chosen locks would. 2 MiB, not less: with 64 KiB
// regions a thread holding more than 4 MiB already spread over every shard, and two threads of the malloc
// micro-benchmark (11 MiB live each) passed every shard's lock line back and forth. Entries are {address, value}; with
// the full mode value (8 bytes) an entry is 16 bytes and the table stays between 5/16 and 5/8 full, i.e. 26 to 51 bytes
// per live block (measured in live_allocations_test). 5/8, not 3/4: a free shifts back the rest of its probe run,
// and those runs grow fast with the load; at 3/4 full mode was 5 to 10% slower on the malloc micro-benchmark. Growth allocates (calloc, under the shard lock; allocation is
// fine there, unwinding is not) and reports failure instead of crashing.
//
// Each shard can also carry an `Extra` that the caller updates under the shard's lock through the callbacks of
// Insert and Remove (the tracer keeps its pending site changes there, site_stats.h): one lock per traced call.
//
// In sample mode most frees never reach this table: the preload offers only those that hit its own counting
// filter of sampled addresses (preload/trace_hooks.h).
#ifndef MEMTIDE_TRACER_LIVE_ALLOCATIONS_H_
#define MEMTIDE_TRACER_LIVE_ALLOCATIONS_H_

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <atomic>

#include "site_stats.h"
#include "spin_lock.h"

namespace memtide::internal {

// Full mode: 8 bytes. Requested sizes of 4 GiB - 1 and more are stored as kHugeSize and their true size kept
// in a second table (LiveAllocations<uint64_t>), so the common entry stays 16 bytes.
inline constexpr uint32_t kHugeSize = 0xffffffffu;
struct FullLiveValue {
  uint32_t stack;
  uint32_t size;
};

// Sample mode: sampled blocks are few (one per sample_mean_bytes allocated), so the entry keeps the exact
// weight instead of recomputing it at free: the amounts subtracted at free are bit-identical to those added.
struct SampleLiveValue {
  uint32_t stack;
  uint32_t unused;
  double inverse_probability;  // 1 / p(usable)
  uint64_t requested;
};

// A block's home slot in a table of 2^(64 - shift) slots: Fibonacci hashing, the top bits of the address times
// 2^64 / golden ratio. One multiply and one shift, which matters because a free's backward shift recomputes
// the home of every entry after the hole (murmur3's finalizer, used before, cost 33 more instructions per
// malloc/free pair under callgrind). The top bits depend on every address bit, so blocks on 4 KiB or 64 KiB
// boundaries spread as well as 16-byte neighbours do (live_allocations_test checks the probe lengths).
inline constexpr uint64_t kGoldenMultiplier = 0x9e3779b97f4a7c15ull;
inline size_t HomeSlot(uintptr_t address, int shift) {
  return static_cast<size_t>((address * kGoldenMultiplier) >> shift);
}

struct NoShardExtra {};

template <typename Value, typename Extra = NoShardExtra>
class LiveAllocations {
 public:
  static constexpr int kShardBits = 6;
  static constexpr size_t kShards = size_t{1} << kShardBits;
  static constexpr int kRegionBits = 21;
  static constexpr size_t kMinCapacity = 64;

  enum class InsertResult { kInserted, kReplaced, kNoMemory };

  LiveAllocations() = default;
  LiveAllocations(const LiveAllocations&) = delete;
  LiveAllocations& operator=(const LiveAllocations&) = delete;
  // Never runs in the tracer module (its tables outlive exit); tests destroy theirs.
  ~LiveAllocations() {
    for (Shard& shard : shards_) free(shard.slots);
  }

  // Hot path: one shard lock; allocates only to grow. An address already present (its free was never seen)
  // gets the new value; the old one is returned in *replaced so the caller can retire it. key must not be 0.
  // Unless out of memory, calls on_locked(extra, replaced_or_null) under the shard's lock after the insert.
  template <typename OnLocked>
  InsertResult Insert(uintptr_t key, const Value& value, Value* replaced, OnLocked&& on_locked) {
    Shard& shard = shards_[ShardOf(key)];
    SpinLockHolder hold(shard.lock);
    if (shard.size >= shard.grow_at && !Grow(shard)) return InsertResult::kNoMemory;
    for (size_t i = HomeSlot(key, shard.shift);; i = (i + 1) & shard.mask) {
      Entry& entry = shard.slots[i];
      if (entry.key == key) {
        *replaced = entry.value;
        entry.value = value;
        on_locked(shard.extra, static_cast<const Value*>(replaced));
        return InsertResult::kReplaced;
      }
      if (entry.key == 0) {
        entry.key = key;
        entry.value = value;
        ++shard.size;
        on_locked(shard.extra, static_cast<const Value*>(nullptr));
        return InsertResult::kInserted;
      }
    }
  }
  InsertResult Insert(uintptr_t key, const Value& value, Value* replaced) {
    return Insert(key, value, replaced, [](Extra&, const Value*) {});
  }

  // A hint before Insert of `key`, taken without the lock: starts loading the key's home slot while the caller
  // does other work (the stack walk), since with a large heap the table's lines are mostly out of cache. Never
  // faults: from a table that was just replaced it is only a wasted prefetch.
  void Prefetch(uintptr_t key) const {
    const Shard& shard = shards_[ShardOf(key)];
    const Entry* slots = shard.prefetch_slots.load(std::memory_order_relaxed);
    const int shift = shard.prefetch_shift.load(std::memory_order_relaxed);
    __builtin_prefetch(slots + HomeSlot(key, shift), 1);
  }

  // Hot path: one shard lock.
  // Allocation-free. When the key was there, calls on_locked(extra, removed value) under the shard's lock.
  template <typename OnLocked>
  bool Remove(uintptr_t key, Value* removed, OnLocked&& on_locked) {
    Shard& shard = shards_[ShardOf(key)];
    SpinLockHolder hold(shard.lock);
    if (shard.slots == nullptr) return false;
    size_t i = HomeSlot(key, shard.shift);
    for (;; i = (i + 1) & shard.mask) {
      const uintptr_t k = shard.slots[i].key;
      if (k == key) break;
      if (k == 0) return false;
    }
    *removed = shard.slots[i].value;
    // Backward-shift deletion: pull later members of the probe run into the hole when their home slot allows.
    for (size_t j = (i + 1) & shard.mask;; j = (j + 1) & shard.mask) {
      const uintptr_t k = shard.slots[j].key;
      if (k == 0) break;
      const size_t home = HomeSlot(k, shard.shift);
      if (((j - home) & shard.mask) >= ((j - i) & shard.mask)) {
        shard.slots[i] = shard.slots[j];
        i = j;
      }
    }
    shard.slots[i].key = 0;
    --shard.size;
    on_locked(shard.extra, static_cast<const Value&>(*removed));
    return true;
  }
  bool Remove(uintptr_t key, Value* removed) {
    return Remove(key, removed, [](Extra&, const Value&) {});
  }

  // Calls visit(extra) for every shard, under its lock, one shard at a time.
  template <typename Visit>
  void ForEachExtra(Visit&& visit) {
    for (Shard& shard : shards_) {
      SpinLockHolder hold(shard.lock);
      visit(shard.extra);
    }
  }

  // Test and snapshot helper: calls visit(key, value) for every entry, one shard lock at a time.
  template <typename Visit>
  void ForEach(Visit&& visit) {
    for (Shard& shard : shards_) {
      SpinLockHolder hold(shard.lock);
      for (size_t i = 0; shard.slots != nullptr && i <= shard.mask; ++i) {
        if (shard.slots[i].key != 0) visit(shard.slots[i].key, shard.slots[i].value);
      }
    }
  }

  // Live entries, summed shard by shard (no global counter: it would be one more contended cache line).
  size_t Size() {
    size_t size = 0;
    for (Shard& shard : shards_) {
      SpinLockHolder hold(shard.lock);
      size += shard.size;
    }
    return size;
  }

  // Bytes held by the tables (taken shard by shard; approximate while others insert).
  size_t MemoryBytes() {
    size_t bytes = sizeof(*this);
    for (Shard& shard : shards_) {
      SpinLockHolder hold(shard.lock);
      if (shard.slots != nullptr) bytes += (shard.mask + 1) * sizeof(Entry);
    }
    return bytes;
  }

  // Test helper: the longest distance of an entry from its home slot, over all shards.
  size_t LongestProbe() {
    size_t longest = 0;
    for (Shard& shard : shards_) {
      SpinLockHolder hold(shard.lock);
      for (size_t i = 0; shard.slots != nullptr && i <= shard.mask; ++i) {
        if (shard.slots[i].key == 0) continue;
        const size_t distance = (i - HomeSlot(shard.slots[i].key, shard.shift)) & shard.mask;
        if (distance > longest) longest = distance;
      }
    }
    return longest;
  }

  // fork(): prepare takes every shard lock, the parent releases them, the child resets them.
  void LockAll() {
    for (Shard& shard : shards_) shard.lock.Lock();
  }
  void UnlockAll() {
    for (Shard& shard : shards_) shard.lock.Unlock();
  }
  void ResetLocksAfterFork() {
    for (Shard& shard : shards_) shard.lock.ResetAfterFork();
  }

 private:
  struct Entry {
    uintptr_t key;  // 0: empty
    Value value;
  };

  struct alignas(64) Shard {
    SpinLock lock;
    Entry* slots = nullptr;
    size_t mask = 0;  // capacity - 1 once slots exist; the first insert allocates kMinCapacity
    int shift = 63;   // 64 - log2(capacity), for HomeSlot
    size_t size = 0;
    size_t grow_at = 0;  // 5/8 of the capacity; 0 before the first insert, which allocates
    // slots and shift for Prefetch, which reads them without the lock (with no table yet: a prefetch of an
    // address near 0, which is harmless).
    std::atomic<const Entry*> prefetch_slots{nullptr};
    std::atomic<int> prefetch_shift{63};
    Extra extra;
  };

  // Fibonacci hashing of the region number: one multiply.
  static size_t ShardOf(uintptr_t key) {
    return static_cast<size_t>(((key >> kRegionBits) * kGoldenMultiplier) >> (64 - kShardBits));
  }

  // Under the shard's lock. calloc: a large table comes zeroed from fresh pages, no memset.
  static bool Grow(Shard& shard) {
    const size_t capacity = shard.slots == nullptr ? kMinCapacity : (shard.mask + 1) * 2;
    Entry* slots = static_cast<Entry*>(calloc(capacity, sizeof(Entry)));
    if (slots == nullptr) return false;
    const size_t mask = capacity - 1;
    const int shift = __builtin_clzll(mask);
    if (shard.slots != nullptr) {
      for (size_t i = 0; i <= shard.mask; ++i) {
        const Entry& entry = shard.slots[i];
        if (entry.key == 0) continue;
        size_t j = HomeSlot(entry.key, shift);
        while (slots[j].key != 0) j = (j + 1) & mask;
        slots[j] = entry;
      }
      free(shard.slots);
    }
    shard.slots = slots;
    shard.mask = mask;
    shard.shift = shift;
    shard.grow_at = capacity / 8 * 5;
    shard.prefetch_slots.store(slots, std::memory_order_relaxed);
    shard.prefetch_shift.store(shift, std::memory_order_relaxed);
    return true;
  }

  Shard shards_[kShards];
};

// Instantiated once, in live_allocations.cc (the tracer's tables, and the plain ones its tests use).
extern template class LiveAllocations<FullLiveValue, PendingSiteChanges>;
extern template class LiveAllocations<SampleLiveValue, PendingSiteChanges>;
extern template class LiveAllocations<FullLiveValue>;
extern template class LiveAllocations<SampleLiveValue>;
extern template class LiveAllocations<uint64_t>;

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_LIVE_ALLOCATIONS_H_
