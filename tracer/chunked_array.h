// An index-addressed array that grows by whole chunks and never moves what it holds, for the tables keyed by
// stack id (the depot's records, the per-site counters). Readers find an element with two acquire loads and
// no lock (hot path, under the preload's guard); a missing chunk is allocated once, behind a small lock, by
// whichever thread needs it first. Chunks live as long as the process: the tracer is never torn down, because
// other threads may still allocate while the process exits.
#ifndef MEMTIDE_TRACER_CHUNKED_ARRAY_H_
#define MEMTIDE_TRACER_CHUNKED_ARRAY_H_

#include <stddef.h>

#include <atomic>
#include <new>

#include "spin_lock.h"

namespace memtide::internal {

// T must be default-constructible; new chunks are value-initialized (zeroed for plain structs and atomics).
template <typename T, size_t kChunkBits = 12, size_t kChunks = 4096>
class ChunkedArray {
 public:
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;
  static constexpr size_t kCapacity = kChunkSize * kChunks;

  ChunkedArray() {
    for (auto& chunk : chunks_) chunk.store(nullptr, std::memory_order_relaxed);
  }
  ChunkedArray(const ChunkedArray&) = delete;
  ChunkedArray& operator=(const ChunkedArray&) = delete;
  // Never runs in the tracer module (its tables outlive exit); tests destroy theirs.
  ~ChunkedArray() {
    for (auto& chunk : chunks_) delete[] chunk.load(std::memory_order_relaxed);
  }

  // nullptr if the element's chunk does not exist yet. Lock-free, allocation-free.
  T* Find(size_t index) const {
    if (index >= kCapacity) return nullptr;
    T* chunk = chunks_[index >> kChunkBits].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[index & (kChunkSize - 1)];
  }

  // Find, allocating the chunk when missing (takes grow_lock_, allocates). nullptr when the index is beyond
  // the capacity or the allocation failed.
  T* Ensure(size_t index) {
    T* element = Find(index);
    return element != nullptr ? element : EnsureSlow(index);
  }

  size_t MemoryBytes() const {
    size_t bytes = sizeof(*this);
    for (const auto& chunk : chunks_) {
      if (chunk.load(std::memory_order_relaxed) != nullptr) bytes += kChunkSize * sizeof(T);
    }
    return bytes;
  }

  SpinLock& grow_lock() { return grow_lock_; }

 private:
  T* EnsureSlow(size_t index) {
    if (index >= kCapacity) return nullptr;
    std::atomic<T*>& slot = chunks_[index >> kChunkBits];
    SpinLockHolder hold(grow_lock_);
    T* chunk = slot.load(std::memory_order_acquire);
    if (chunk == nullptr) {
      chunk = new (std::nothrow) T[kChunkSize]();
      if (chunk == nullptr) return nullptr;
      slot.store(chunk, std::memory_order_release);
    }
    return &chunk[index & (kChunkSize - 1)];
  }

  std::atomic<T*> chunks_[kChunks];
  SpinLock grow_lock_;
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_CHUNKED_ARRAY_H_
