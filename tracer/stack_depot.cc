// The stack depot (see stack_depot.h). Tracer module: Find on the hot path (lock-free, allocation-free),
// Intern's insert on the slow path (allocates; the segment lock, then one shard lock; module resolution before
// either).
#include "stack_depot.h"

#include <stdlib.h>
#include <string.h>

#include <new>

#include "mix64.h"
#include "module_map.h"

namespace memtide::internal {
namespace {

constexpr size_t kInitialTableCapacity = 64;
constexpr size_t kArenaBlockBytes = size_t{256} << 10;

constexpr size_t kInitialSegmentSlots = 1024;

size_t SegmentBytes(uint32_t count) {
  const size_t bytes = sizeof(StackSegment) + count * (sizeof(uintptr_t) + sizeof(int32_t));
  return (bytes + 7) & ~size_t{7};
}

}  // namespace

StackDepot::StackDepot(ModuleMap* modules) : modules_(modules) {}

StackDepot::~StackDepot() {
  free(segments_.slots);
  for (Shard& shard : shards_) {
    Table* table = shard.table.load(std::memory_order_relaxed);
    while (table != nullptr) {
      Table* retired = table->retired;
      free(table);
      table = retired;
    }
  }
  void* block = arena_blocks_;
  while (block != nullptr) {
    void* next = *static_cast<void**>(block);
    free(block);
    block = next;
  }
}

namespace {

// One odd multiplier per frame position (splitmix64 outputs). The products are independent, so the CPU
// overlaps them; a chained multiply per frame cost several times more on a 10-frame stack.
struct FrameMultipliers {
  uint64_t value[kMaxStackDepth];
  constexpr FrameMultipliers() : value() {
    uint64_t state = 0x243f6a8885a308d3ull;
    for (int i = 0; i < kMaxStackDepth; ++i) {
      uint64_t z = (state += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      value[i] = (z ^ (z >> 31)) | 1;
    }
  }
};
constexpr FrameMultipliers kFrameMultipliers;

}  // namespace

uint64_t StackDepot::Hash(const uintptr_t* frames, uint32_t depth) {
  // Two stacks that differ in one frame differ by (delta * odd multiplier), never zero; the final mix spreads
  // that over every bit the shards, slots and tags use.
  uint64_t sum = depth;
  for (uint32_t i = 0; i < depth; ++i) sum += frames[i] * kFrameMultipliers.value[i];
  return Mix64(sum);
}

const StackRecord* StackDepot::Get(uint32_t id) const {
  const std::atomic<const StackRecord*>* slot = records_.Find(id);
  return slot == nullptr ? nullptr : slot->load(std::memory_order_acquire);
}

void StackDepot::CopyFrames(const StackRecord& record, uintptr_t* frames, int32_t* modules) {
  uint32_t position = 0;
  for (const StackSegment* segment = record.innermost; segment != nullptr && position < record.depth;
       segment = segment->outer) {
    const uint32_t count = segment->count <= record.depth - position ? segment->count : record.depth - position;
    memcpy(frames + position, segment->frames(), count * sizeof(uintptr_t));
    memcpy(modules + position, segment->modules(), count * sizeof(int32_t));
    position += count;
  }
}

bool StackDepot::Matches(const StackRecord& record, const uintptr_t* frames, uint32_t depth) {
  if (record.depth != depth) return false;
  uint32_t position = 0;
  for (const StackSegment* segment = record.innermost; segment != nullptr; segment = segment->outer) {
    if (segment->count > depth - position ||
        memcmp(segment->frames(), frames + position, segment->count * sizeof(uintptr_t)) != 0) {
      return false;
    }
    position += segment->count;
  }
  return position == depth;
}

StackDepot::Table* StackDepot::NewTable(size_t capacity) {
  const size_t bytes = offsetof(Table, slots) + capacity * sizeof(std::atomic<uint64_t>);
  void* memory = calloc(1, bytes);
  if (memory == nullptr) return nullptr;
  Table* table = static_cast<Table*>(memory);
  table->mask = capacity - 1;
  return table;
}

bool StackDepot::StillResolved(const StackRecord& record, const uintptr_t* frames, uint32_t depth,
                               bool recheck) const {
  if (modules_ == nullptr) return true;
  const uint32_t epoch = modules_->unload_epoch();
  uint32_t checked = record.checked_epoch.load(std::memory_order_relaxed);
  if (checked == epoch) return true;
  if (checked == StackRecord::kStale || !recheck) return false;
  if (modules_->UnloadedSince(checked, frames, depth)) {
    record.checked_epoch.store(StackRecord::kStale, std::memory_order_relaxed);
    return false;
  }
  // Another thread may have found it stale meanwhile: that verdict stands.
  record.checked_epoch.compare_exchange_strong(checked, epoch, std::memory_order_relaxed);
  return true;
}

uint32_t StackDepot::FindIn(const Table* table, const uintptr_t* frames, uint32_t depth, uint64_t hash,
                            bool recheck) const {
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (size_t i = hash & table->mask;; i = (i + 1) & table->mask) {
    const uint64_t slot = table->slots[i].load(std::memory_order_acquire);
    if (slot == 0) return 0;
    if (static_cast<uint32_t>(slot >> 32) != tag) continue;
    const uint32_t id = static_cast<uint32_t>(slot);
    const StackRecord* record = Get(id);
    if (record != nullptr && record->hash == hash && Matches(*record, frames, depth) &&
        StillResolved(*record, frames, depth, recheck)) {
      return id;
    }
  }
}

uint32_t StackDepot::Find(const uintptr_t* frames, uint32_t depth, uint64_t hash) const {
  const Table* table = shards_[hash >> (64 - kShardBits)].table.load(std::memory_order_acquire);
  return table == nullptr ? 0 : FindIn(table, frames, depth, hash, /*recheck=*/true);
}

void* StackDepot::AllocateFromArena(size_t bytes) {
  SpinLockHolder hold(arena_lock_);
  if (static_cast<size_t>(arena_end_ - arena_next_) < bytes) {
    char* block = static_cast<char*>(malloc(kArenaBlockBytes));
    if (block == nullptr) return nullptr;
    *reinterpret_cast<void**>(block) = arena_blocks_;
    arena_blocks_ = block;
    arena_bytes_.fetch_add(kArenaBlockBytes, std::memory_order_relaxed);
    arena_next_ = block + 16;
    arena_end_ = block + kArenaBlockBytes;
  }
  void* allocated = arena_next_;
  arena_next_ += bytes;
  return allocated;
}

bool StackDepot::GrowSegmentIndex() {
  const size_t capacity = segments_.slots == nullptr ? kInitialSegmentSlots : (segments_.mask + 1) * 2;
  auto** slots = static_cast<const StackSegment**>(calloc(capacity, sizeof(StackSegment*)));
  if (slots == nullptr) return false;
  const size_t mask = capacity - 1;
  for (size_t i = 0; segments_.slots != nullptr && i <= segments_.mask; ++i) {
    const StackSegment* segment = segments_.slots[i];
    if (segment == nullptr) continue;
    size_t j = segment->hash & mask;
    while (slots[j] != nullptr) j = (j + 1) & mask;
    slots[j] = segment;
  }
  free(segments_.slots);
  segments_.slots = slots;
  segments_.mask = mask;
  segment_index_bytes_.store(capacity * sizeof(StackSegment*), std::memory_order_relaxed);
  return true;
}

uint64_t StackDepot::SegmentHash(const StackSegment* outer, const uintptr_t* frames, uint32_t count) {
  return Mix64(Hash(frames, count) + reinterpret_cast<uintptr_t>(outer) * 0x9e3779b97f4a7c15ull);
}

const StackSegment* StackDepot::FindSegment(const StackSegment* outer, const uintptr_t* frames,
                                            const int32_t* modules, uint32_t count, uint64_t hash) const {
  if (segments_.slots == nullptr) return nullptr;
  for (size_t i = hash & segments_.mask;; i = (i + 1) & segments_.mask) {
    const StackSegment* segment = segments_.slots[i];
    if (segment == nullptr) return nullptr;
    if (segment->hash == hash && segment->outer == outer && segment->count == count &&
        memcmp(segment->frames(), frames, count * sizeof(uintptr_t)) == 0 &&
        (modules == nullptr || memcmp(segment->modules(), modules, count * sizeof(int32_t)) == 0)) {
      return segment;
    }
  }
}

const StackSegment* StackDepot::FindOrAddSegment(const StackSegment* outer, const uintptr_t* frames,
                                                 const int32_t* modules, uint32_t count) {
  const uint64_t hash = SegmentHash(outer, frames, count);
  if (const StackSegment* found = FindSegment(outer, frames, modules, count, hash)) return found;
  if ((segments_.used + 1) * 2 > segments_.mask + 1 && !GrowSegmentIndex()) return nullptr;
  auto* segment = static_cast<StackSegment*>(AllocateFromArena(SegmentBytes(count)));
  if (segment == nullptr) return nullptr;
  segment->outer = outer;
  segment->hash = hash;
  segment->count = count;
  segment->unused = 0;
  memcpy(const_cast<uintptr_t*>(segment->frames()), frames, count * sizeof(uintptr_t));
  memcpy(const_cast<int32_t*>(segment->modules()), modules, count * sizeof(int32_t));
  size_t i = hash & segments_.mask;
  while (segments_.slots[i] != nullptr) i = (i + 1) & segments_.mask;
  segments_.slots[i] = segment;
  ++segments_.used;
  return segment;
}

StackDepot::SegmentWalk StackDepot::FindStoredSegments(const uintptr_t* frames, const int32_t* modules,
                                                       uint32_t depth) {
  SpinLockHolder hold(segment_lock_);
  SegmentWalk walk{nullptr, depth};
  while (walk.end > 0) {
    const uint32_t count = walk.end < kSegmentFrames ? walk.end : kSegmentFrames;
    const uintptr_t* run = frames + walk.end - count;
    const int32_t* run_modules = modules == nullptr ? nullptr : modules + walk.end - count;
    const StackSegment* segment =
        FindSegment(walk.segment, run, run_modules, count, SegmentHash(walk.segment, run, count));
    if (segment == nullptr) break;
    walk = {segment, walk.end - count};
  }
  return walk;
}

const StackSegment* StackDepot::InternSegments(const uintptr_t* frames, const int32_t* modules, SegmentWalk walk,
                                               bool* failed) {
  *failed = false;
  SpinLockHolder hold(segment_lock_);
  // Outermost first, from where FindStoredSegments stopped: frames [end - count, end), the last segment taking
  // what is left down to frame 0.
  while (walk.end > 0) {
    const uint32_t count = walk.end < kSegmentFrames ? walk.end : kSegmentFrames;
    const StackSegment* segment =
        FindOrAddSegment(walk.segment, frames + walk.end - count, modules + walk.end - count, count);
    if (segment == nullptr) {
      *failed = true;
      return nullptr;
    }
    walk = {segment, walk.end - count};
  }
  return walk.segment;
}

bool StackDepot::InsertSlot(Shard& shard, uint64_t hash, uint32_t id) {
  Table* table = shard.table.load(std::memory_order_relaxed);
  if (table == nullptr || (table->used + 1) * 2 > table->mask + 1) {
    const size_t capacity = table == nullptr ? kInitialTableCapacity : (table->mask + 1) * 2;
    Table* grown = NewTable(capacity);
    if (grown == nullptr) return false;
    table_bytes_.fetch_add(offsetof(Table, slots) + capacity * sizeof(uint64_t), std::memory_order_relaxed);
    if (table != nullptr) {
      for (size_t i = 0; i <= table->mask; ++i) {
        const uint64_t slot = table->slots[i].load(std::memory_order_relaxed);
        if (slot == 0) continue;
        const StackRecord* record = Get(static_cast<uint32_t>(slot));
        size_t j = record->hash & grown->mask;
        while (grown->slots[j].load(std::memory_order_relaxed) != 0) j = (j + 1) & grown->mask;
        grown->slots[j].store(slot, std::memory_order_relaxed);
      }
      grown->used = table->used;
    }
    grown->retired = table;
    shard.table.store(grown, std::memory_order_release);
    table = grown;
  }
  size_t i = hash & table->mask;
  while (table->slots[i].load(std::memory_order_relaxed) != 0) i = (i + 1) & table->mask;
  table->slots[i].store((hash >> 32) << 32 | id, std::memory_order_release);
  ++table->used;
  return true;
}

uint32_t StackDepot::Intern(const uintptr_t* frames, uint32_t depth, uint64_t hash, bool* inserted) {
  if (inserted != nullptr) *inserted = false;
  if (depth > kMaxStackDepth) depth = kMaxStackDepth;
  uint32_t id = Find(frames, depth, hash);
  if (id != 0) return id;

  // Before any lock of ours: resolution may enter the loader (module_map.h). While no code was ever unloaded,
  // only the frames of segments not stored yet need it (segments are never removed, so those found now are
  // still there below): a new stack mostly adds one or two segments to outer ones other stacks already have.
  // After an unload every frame is resolved and segments must match on modules too (see the top). The epoch
  // is read before resolving: an unload seen later makes the next Find check this record again.
  int32_t modules[kMaxStackDepth];
  const uint32_t epoch = modules_ != nullptr ? modules_->unload_epoch() : 0;
  SegmentWalk stored;
  if (epoch != 0) {
    modules_->Resolve(frames, depth, modules);
    stored = FindStoredSegments(frames, modules, depth);
  } else {
    stored = FindStoredSegments(frames, nullptr, depth);
    if (modules_ != nullptr && stored.end > 0) {
      modules_->Resolve(frames, stored.end, modules);
    } else {
      for (uint32_t i = 0; i < stored.end; ++i) modules[i] = -1;
    }
  }

  // Segments before the record: a published record's segments are all there. A stack another thread is
  // inserting at the same time finds the same segments here.
  bool failed = false;
  const StackSegment* innermost = InternSegments(frames, modules, stored, &failed);
  if (failed) return 0;

  Shard& shard = shards_[hash >> (64 - kShardBits)];
  SpinLockHolder hold(shard.lock);
  Table* table = shard.table.load(std::memory_order_relaxed);
  if (table != nullptr && (id = FindIn(table, frames, depth, hash, /*recheck=*/false)) != 0) return id;

  void* memory = AllocateFromArena(sizeof(StackRecord));
  if (memory == nullptr) return 0;
  id = next_id_.fetch_add(1, std::memory_order_acq_rel);
  std::atomic<const StackRecord*>* slot = records_.Ensure(id);
  if (slot == nullptr) return 0;
  auto* record = new (memory) StackRecord;
  record->hash = hash;
  record->id = id;
  record->depth = depth;
  record->innermost = innermost;
  record->checked_epoch.store(epoch, std::memory_order_relaxed);
  slot->store(record, std::memory_order_release);
  // A failed slot insert leaves the record reachable by id only: this block is still attributed correctly,
  // and the next sighting of the stack tries the insert again.
  InsertSlot(shard, hash, id);
  if (inserted != nullptr) *inserted = true;
  return id;
}

size_t StackDepot::MemoryBytes() const {
  return sizeof(*this) + records_.MemoryBytes() + arena_bytes_.load(std::memory_order_relaxed) +
         table_bytes_.load(std::memory_order_relaxed) + segment_index_bytes_.load(std::memory_order_relaxed);
}

void StackDepot::LockAll() {
  for (Shard& shard : shards_) shard.lock.Lock();
  segment_lock_.Lock();
  arena_lock_.Lock();
  records_.grow_lock().Lock();
}

void StackDepot::UnlockAll() {
  records_.grow_lock().Unlock();
  arena_lock_.Unlock();
  segment_lock_.Unlock();
  for (Shard& shard : shards_) shard.lock.Unlock();
}

void StackDepot::ResetLocksAfterFork() {
  for (Shard& shard : shards_) shard.lock.ResetAfterFork();
  segment_lock_.ResetAfterFork();
  arena_lock_.ResetAfterFork();
  records_.grow_lock().ResetAfterFork();
}

}  // namespace memtide::internal
