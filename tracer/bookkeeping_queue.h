// Full mode's hand-off of the live-table and site bookkeeping to memtide's bookkeeping thread
// (preload/bookkeeping_thread.h), so that a program allocating from one thread pays for the stack capture and
// one 24-byte record per call, and the table work runs on another core, as heaptrack's runs in its second
// process. Runs on the hot path (Push: inside the program's malloc/free, under the preload's guard).
//
// One producer at a time. The tables must see a block's allocation before its free, and a free before its
// address is reused. One thread's records keep its own order; between threads that order is only known to
// the allocator. So records are queued only while a single thread traces, the owner:
//   - the first thread to trace claims the queue; a thread that ends releases it (Release), and the next
//     thread to trace claims it again;
//   - any other thread that traces while it is owned revokes it, for good. It publishes the revocation, waits
//     until the owner is not between its ownership check and its publish (an asymmetric fence: the owner's
//     side is a compiler barrier, the revoker's a membarrier), then applies everything queued. From then on
//     every thread applies its own changes in place, as without the queue.
//
// Nothing ever waits for the bookkeeping thread. When the ring is full the owner applies it itself; readers
// (snapshots, the exit trace, fork) apply what is queued before they read (Drain). So with the thread paused
// (a credential change) or absent (a fork child) everything still works, in place.
// Without membarrier (an old kernel, a seccomp filter) Enable fails and the queue stays unused.
#ifndef MEMTIDE_TRACER_BOOKKEEPING_QUEUE_H_
#define MEMTIDE_TRACER_BOOKKEEPING_QUEUE_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <string>

#include "spin_lock.h"

namespace memtide::internal {

// An allocation (stack != 0) or a free (stack == 0) of the block at `key`.
struct BookkeepingRecord {
  uintptr_t key;
  uint64_t requested;  // allocation: the requested size
  uint32_t stack;      // allocation: the stack's depot id
  uint32_t unused;
};

// Applies `count` records in order. Called with the queue's consume lock held, from whichever thread drains.
using ApplyBookkeepingRecords = void (*)(void* context, const BookkeepingRecord* records, size_t count);

class BookkeepingQueue {
 public:
  // Records: 192 KiB, several times what the busiest program queues while the bookkeeping thread sleeps its
  // shortest (50 us). Small on purpose: the ring is written through the program's caches, and at 1.5 MiB the
  // malloc micro-benchmark ran 10% slower (0.37 s against 0.34 s); at 24 KiB the owner had to apply it itself.
  static constexpr size_t kCapacity = size_t{1} << 13;
  // What the bookkeeping thread applies per call, so that a reader waits at most that long for the lock.
  static constexpr size_t kBatch = 4096;

  BookkeepingQueue() = default;
  ~BookkeepingQueue();  // the tracer's is never destroyed; tests destroy theirs
  BookkeepingQueue(const BookkeepingQueue&) = delete;
  BookkeepingQueue& operator=(const BookkeepingQueue&) = delete;

  // Maps the ring and registers the process for membarrier. False, with *why set, if either fails: the queue
  // then stays unused (every Push returns false). Once, before any Push.
  bool Enable(ApplyBookkeepingRecords apply, void* context, std::string* why);

  // Whether records may still be queued (false once revoked, after a fork, or never enabled). A hint only.
  bool MayQueue() const { return owner_.load(std::memory_order_relaxed) != kInPlace; }

  // Hot path. True when the record was queued. False when the caller must apply it in place; everything
  // queued before has been applied by then. `thread` identifies the calling thread (its MemtideTracerThread).
  bool Push(const void* thread, const BookkeepingRecord& record) {
    const uintptr_t me = reinterpret_cast<uintptr_t>(thread);
    const uintptr_t owner = owner_.load(std::memory_order_relaxed);
    if (owner != me) {
      if (owner == kInPlace && drained_.load(std::memory_order_acquire)) return false;
      return PushSlow(thread, record);  // claim, revoke, or wait for a revocation to finish
    }
    // Only the owner writes pushing_: a thread that merely tried would clear the owner's mark.
    pushing_.store(true, std::memory_order_relaxed);
    // Only a compiler barrier: Revoke's membarrier makes it a full fence whenever that matters (see the top).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (__builtin_expect(owner_.load(std::memory_order_relaxed) != me, 0)) {
      pushing_.store(false, std::memory_order_release);
      return PushSlow(thread, record);
    }
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (__builtin_expect(head - tail_seen_ >= kCapacity, 0)) MakeRoom(head);
    ring_[head & kMask] = record;
    head_.store(head + 1, std::memory_order_release);
    pushing_.store(false, std::memory_order_release);
    return true;
  }

  // The calling thread ends: if it owns the queue, the next thread to trace may claim it.
  void Release(const void* thread) {
    uintptr_t me = reinterpret_cast<uintptr_t>(thread);
    owner_.compare_exchange_strong(me, kNobody, std::memory_order_release, std::memory_order_relaxed);
  }

  // Applies what is queued, at most `limit` records. Returns how many, or -1 when nothing was left and nothing
  // can be queued any more (the bookkeeping thread may end).
  int64_t Drain(size_t limit);

  // fork() and the exit-cleanup probe's clone: prepare takes the queue's locks (before the tables'); the parent
  // releases them; the child, whose only thread is the caller, applies what is queued (after the tables'
  // locks were reset) and works in place from then on.
  void LockForFork() {
    revoke_lock_.Lock();
    consume_lock_.Lock();
  }
  void UnlockAfterFork() {
    consume_lock_.Unlock();
    revoke_lock_.Unlock();
  }
  void ResetAfterFork();

 private:
  static constexpr uintptr_t kNobody = 0;
  static constexpr uintptr_t kInPlace = 1;
  static constexpr size_t kMask = kCapacity - 1;

  bool PushSlow(const void* thread, const BookkeepingRecord& record);
  void MakeRoom(uint64_t head);
  void Revoke();
  void WaitUntilDrained();
  size_t ApplyPublished(size_t limit);  // under consume_lock_

  ApplyBookkeepingRecords apply_ = nullptr;
  void* context_ = nullptr;
  BookkeepingRecord* ring_ = nullptr;

  // Read on every Push: the owner's thread, kNobody or kInPlace (for good). Starts in place until Enable.
  alignas(64) std::atomic<uintptr_t> owner_{kInPlace};
  std::atomic<bool> drained_{true};  // in place, and what was queued before has been applied
  // Written by the owner only.
  alignas(64) std::atomic<bool> pushing_{false};
  std::atomic<uint64_t> head_{0};
  uint64_t tail_seen_ = 0;  // the owner's last read of tail_
  // Written under consume_lock_ only.
  alignas(64) std::atomic<uint64_t> tail_{0};
  SpinLock consume_lock_;
  SpinLock revoke_lock_;  // one revocation at a time; held until it has drained
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_BOOKKEEPING_QUEUE_H_
