// The stack depot (see stack_depot.h). Tracer module: Find on the hot path (lock-free, allocation-free),
// Intern's insert on the slow path (allocates, one shard lock; module resolution before the lock).
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

size_t RecordBytes(uint32_t depth) {
  const size_t bytes = sizeof(StackRecord) + depth * (sizeof(uintptr_t) + sizeof(int32_t));
  return (bytes + 7) & ~size_t{7};
}

}  // namespace

StackDepot::StackDepot(ModuleMap* modules) : modules_(modules) {}

StackDepot::~StackDepot() {
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

StackDepot::Table* StackDepot::NewTable(size_t capacity) {
  const size_t bytes = offsetof(Table, slots) + capacity * sizeof(std::atomic<uint64_t>);
  void* memory = calloc(1, bytes);
  if (memory == nullptr) return nullptr;
  Table* table = static_cast<Table*>(memory);
  table->mask = capacity - 1;
  return table;
}

uint32_t StackDepot::FindIn(const Table* table, const uintptr_t* frames, uint32_t depth, uint64_t hash) const {
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (size_t i = hash & table->mask;; i = (i + 1) & table->mask) {
    const uint64_t slot = table->slots[i].load(std::memory_order_acquire);
    if (slot == 0) return 0;
    if (static_cast<uint32_t>(slot >> 32) != tag) continue;
    const uint32_t id = static_cast<uint32_t>(slot);
    const StackRecord* record = Get(id);
    if (record != nullptr && record->hash == hash && record->depth == depth &&
        (depth == 0 || memcmp(record->frames(), frames, depth * sizeof(uintptr_t)) == 0)) {
      return id;
    }
  }
}

uint32_t StackDepot::Find(const uintptr_t* frames, uint32_t depth, uint64_t hash) const {
  const Table* table = shards_[hash >> (64 - kShardBits)].table.load(std::memory_order_acquire);
  return table == nullptr ? 0 : FindIn(table, frames, depth, hash);
}

StackRecord* StackDepot::AllocateRecord(uint32_t depth) {
  const size_t bytes = RecordBytes(depth);
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
  StackRecord* record = reinterpret_cast<StackRecord*>(arena_next_);
  arena_next_ += bytes;
  return record;
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

  // Before the shard lock: resolution may enter the loader (module_map.h).
  int32_t modules[kMaxStackDepth];
  if (modules_ != nullptr) {
    modules_->Resolve(frames, depth, modules);
  } else {
    for (uint32_t i = 0; i < depth; ++i) modules[i] = -1;
  }

  Shard& shard = shards_[hash >> (64 - kShardBits)];
  SpinLockHolder hold(shard.lock);
  Table* table = shard.table.load(std::memory_order_relaxed);
  if (table != nullptr && (id = FindIn(table, frames, depth, hash)) != 0) return id;

  StackRecord* record = AllocateRecord(depth);
  if (record == nullptr) return 0;
  id = next_id_.fetch_add(1, std::memory_order_acq_rel);
  std::atomic<const StackRecord*>* slot = records_.Ensure(id);
  if (slot == nullptr) return 0;
  record->hash = hash;
  record->id = id;
  record->depth = depth;
  if (depth > 0) {
    memcpy(const_cast<uintptr_t*>(record->frames()), frames, depth * sizeof(uintptr_t));
    memcpy(const_cast<int32_t*>(record->modules()), modules, depth * sizeof(int32_t));
  }
  slot->store(record, std::memory_order_release);
  // A failed slot insert leaves the record reachable by id only: this block is still attributed correctly,
  // and the next sighting of the stack tries the insert again.
  InsertSlot(shard, hash, id);
  if (inserted != nullptr) *inserted = true;
  return id;
}

size_t StackDepot::MemoryBytes() const {
  return sizeof(*this) + records_.MemoryBytes() + arena_bytes_.load(std::memory_order_relaxed) +
         table_bytes_.load(std::memory_order_relaxed);
}

void StackDepot::LockAll() {
  for (Shard& shard : shards_) shard.lock.Lock();
  arena_lock_.Lock();
  records_.grow_lock().Lock();
}

void StackDepot::UnlockAll() {
  records_.grow_lock().Unlock();
  arena_lock_.Unlock();
  for (Shard& shard : shards_) shard.lock.Unlock();
}

void StackDepot::ResetLocksAfterFork() {
  for (Shard& shard : shards_) shard.lock.ResetAfterFork();
  arena_lock_.ResetAfterFork();
  records_.grow_lock().ResetAfterFork();
}

}  // namespace memtide::internal
