// The stack depot: every distinct stack (array of return addresses) stored once, under a stable uint32 id
// (1, 2, ...; 0 is "none"). Runs on the hot path of every traced allocation, on any thread.
//
// A known stack is found without any lock: 64 shards, chosen by the stack's hash, each an open-addressing table
// of 64-bit words (hash tag << 32 | id) published with release stores; a reader probes it with acquire loads and
// confirms a candidate by comparing the full frame array with the immutable record, so a hash collision can
// never attribute a block to the wrong stack. A table that grows is replaced by a copy and the old one is kept
// (readers may still be probing it); a reader that misses on the old copy falls back to the locked path.
//
// Storage: a stack's frames are cut, from the outermost, into segments of kSegmentFrames (the innermost one
// holds the rest), and each segment is stored once with a pointer to the segment outward of it: stacks that
// share their outer frames share those segments. A PyTorch import makes 600,000 stacks of 49 frames on
// average, almost all of them differing only near the allocation: stored whole they took 406 MB, as 844,000
// segments 147 MB with the lookup tables (README). A record holds the stack's hash, depth and innermost
// segment; confirming a candidate compares one segment after another (8 frames per step: verifying a
// 49-frame stack follows 7 pointers, where a tree of single frames would follow 49).
//
// A new stack's frames that no stored segment holds yet are first resolved against the module map (which may
// enter the loader: no lock of ours held), then its missing segments are added under the segment lock, then the record is inserted under its shard's
// lock: segments and records allocated from an append-only arena (never moved or freed), id taken from a
// global counter, record published, slot published.
//
// Unloaded code. Addresses identify code only until a library is unloaded: another one may be loaded at the
// same addresses. So once the module map has seen an unload (its unload epoch is not 0), a new stack has every
// frame resolved and shares a stored segment only if the module indices match too; and a record found by its
// frames is handed out only if none of them lies in code unloaded since the record was resolved
// (ModuleMap::UnloadedSince, checked once per record and epoch). A record that fails is stale for good: Find
// passes over it and Intern stores the stack again, named after the code now at those addresses.
#ifndef MEMTIDE_TRACER_STACK_DEPOT_H_
#define MEMTIDE_TRACER_STACK_DEPOT_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "chunked_array.h"
#include "spin_lock.h"

namespace memtide::internal {

class ModuleMap;

inline constexpr int kMaxStackDepth = 64;

inline constexpr uint32_t kSegmentFrames = 8;

// Up to kSegmentFrames consecutive frames of stacks (innermost first, like the stacks) with the module index
// each had when first seen (-1: none known). Immutable once published; followed in memory by uintptr_t
// frames[count], then int32_t modules[count].
struct StackSegment {
  const StackSegment* outer;  // the frames outward of these; null for the outermost segment
  uint64_t hash;              // of (outer, frames): finds the segment when another stack shares it
  uint32_t count;
  uint32_t unused;

  const uintptr_t* frames() const { return reinterpret_cast<const uintptr_t*>(this + 1); }
  const int32_t* modules() const { return reinterpret_cast<const int32_t*>(frames() + count); }
};

// Immutable once published, but for checked_epoch.
struct StackRecord {
  static constexpr uint32_t kStale = UINT32_MAX;

  uint64_t hash;
  uint32_t id;
  uint32_t depth;
  const StackSegment* innermost;  // null for a stack of no frame
  // The module map's unload epoch at which the frames' module indices were last known right, or kStale.
  mutable std::atomic<uint32_t> checked_epoch;
};

class StackDepot {
 public:
  static constexpr int kShardBits = 6;
  static constexpr size_t kShards = size_t{1} << kShardBits;

  // `modules` may be null (tests): frames then resolve to -1.
  explicit StackDepot(ModuleMap* modules);
  StackDepot(const StackDepot&) = delete;
  StackDepot& operator=(const StackDepot&) = delete;
  ~StackDepot();

  // Hot path; lock-free and allocation-free when the stack is known. Hash must be Hash(frames, depth).
  uint32_t Find(const uintptr_t* frames, uint32_t depth, uint64_t hash) const;

  // Find, or insert (slow path: resolves modules, takes one shard lock, allocates). Returns 0 when the depot
  // is out of memory or ids. depth <= kMaxStackDepth. Sets *inserted when this call added the stack.
  uint32_t Intern(const uintptr_t* frames, uint32_t depth, uint64_t hash, bool* inserted = nullptr);

  // Hash of a frame array: a sum of per-position products, then a finalizer. Quality only affects speed (ids
  // are confirmed by a full comparison), so it is built for a few nanoseconds on a 10-frame stack.
  static uint64_t Hash(const uintptr_t* frames, uint32_t depth);

  // The record of an id, or null if unknown (or an insert in flight). Lock-free.
  const StackRecord* Get(uint32_t id) const;

  // Copies a stack's frames and their module indices (innermost first) into arrays of record->depth. Lock-free.
  static void CopyFrames(const StackRecord& record, uintptr_t* frames, int32_t* modules);

  // Highest id handed out so far (ids 1..MaxId(); one may still be unpublished).
  uint32_t MaxId() const { return next_id_.load(std::memory_order_acquire) - 1; }

  size_t MemoryBytes() const;

  // fork(): every shard lock, the segment lock, then the arena's and the id array's.
  void LockAll();
  void UnlockAll();
  void ResetLocksAfterFork();

 private:
  struct Table {
    size_t mask;
    size_t used;
    Table* retired;                  // the copy it replaced, kept for readers still probing it
    std::atomic<uint64_t> slots[1];  // mask + 1 of them: hash tag << 32 | id, 0 = empty
  };

  struct alignas(64) Shard {
    SpinLock lock;
    std::atomic<Table*> table{nullptr};
  };

  // The segments of every stack, by hash: open addressing, grown at half full; only the insert path uses it.
  struct SegmentIndex {
    const StackSegment** slots = nullptr;
    size_t mask = 0;
    size_t used = 0;
  };

  static Table* NewTable(size_t capacity);
  static bool Matches(const StackRecord& record, const uintptr_t* frames, uint32_t depth);
  // Whether the record's module indices still hold (see the top). recheck: may consult the module map (takes
  // its lock: callers holding none of the depot's locks); otherwise only a record checked at the current
  // epoch passes.
  bool StillResolved(const StackRecord& record, const uintptr_t* frames, uint32_t depth, bool recheck) const;
  uint32_t FindIn(const Table* table, const uintptr_t* frames, uint32_t depth, uint64_t hash, bool recheck) const;
  // Under the shard lock.
  bool InsertSlot(Shard& shard, uint64_t hash, uint32_t id);
  // How far a stack's segments are stored, from the outermost: the innermost stored one (null: none) and the
  // frames [0, end) it leaves.
  struct SegmentWalk {
    const StackSegment* segment;
    uint32_t end;
  };
  // Takes segment_lock_. modules: null to match segments on their frames alone (no unload ever seen).
  SegmentWalk FindStoredSegments(const uintptr_t* frames, const int32_t* modules, uint32_t depth);
  // Adds the segments for frames [0, walk.end) below walk.segment (those another thread added meanwhile are
  // found, not added again); returns the stack's innermost segment (null for depth 0, or when out of memory:
  // *failed). Segments are never removed, so a walk stays valid after the lock is dropped. Takes segment_lock_.
  const StackSegment* InternSegments(const uintptr_t* frames, const int32_t* modules, SegmentWalk walk,
                                     bool* failed);
  static uint64_t SegmentHash(const StackSegment* outer, const uintptr_t* frames, uint32_t count);
  // Under segment_lock_.
  const StackSegment* FindSegment(const StackSegment* outer, const uintptr_t* frames, const int32_t* modules,
                                  uint32_t count, uint64_t hash) const;
  const StackSegment* FindOrAddSegment(const StackSegment* outer, const uintptr_t* frames, const int32_t* modules,
                                       uint32_t count);
  bool GrowSegmentIndex();
  void* AllocateFromArena(size_t bytes);

  ModuleMap* modules_;
  Shard shards_[kShards];
  ChunkedArray<std::atomic<const StackRecord*>> records_;
  std::atomic<uint32_t> next_id_{1};

  SpinLock segment_lock_;
  SegmentIndex segments_;
  std::atomic<size_t> segment_index_bytes_{0};

  // Append-only arena for records: big blocks carved with a bump pointer.
  SpinLock arena_lock_;
  char* arena_next_ = nullptr;
  char* arena_end_ = nullptr;
  void* arena_blocks_ = nullptr;  // singly linked through each block's first word
  std::atomic<size_t> arena_bytes_{0};
  std::atomic<size_t> table_bytes_{0};
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_STACK_DEPOT_H_
