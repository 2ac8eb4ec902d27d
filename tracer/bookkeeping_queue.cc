// See bookkeeping_queue.h. The slow paths: claiming, revoking, making room, draining.
#include "bookkeeping_queue.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

namespace memtide::internal {

BookkeepingQueue::~BookkeepingQueue() {
  if (ring_ != nullptr) munmap(ring_, kCapacity * sizeof(BookkeepingRecord));
}

bool BookkeepingQueue::Enable(ApplyBookkeepingRecords apply, void* context, std::string* why) {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) {
    *why = std::string("membarrier is not available (") + strerror(errno) + ")";
    return false;
  }
  void* ring = mmap(nullptr, kCapacity * sizeof(BookkeepingRecord), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ring == MAP_FAILED) {
    *why = std::string("cannot map its queue (") + strerror(errno) + ")";
    return false;
  }
  ring_ = static_cast<BookkeepingRecord*>(ring);
  apply_ = apply;
  context_ = context;
  drained_.store(false, std::memory_order_relaxed);
  owner_.store(kNobody, std::memory_order_release);
  return true;
}

bool BookkeepingQueue::PushSlow(const void* thread, const BookkeepingRecord& record) {
  const uintptr_t me = reinterpret_cast<uintptr_t>(thread);
  for (;;) {
    uintptr_t owner = owner_.load(std::memory_order_acquire);
    if (owner == kInPlace) {
      WaitUntilDrained();
      return false;
    }
    if (owner == me) return Push(thread, record);
    if (owner == kNobody) {
      // Acquire: the previous owner's records and its tail_seen_ come before ours.
      if (owner_.compare_exchange_strong(owner, me, std::memory_order_acquire, std::memory_order_relaxed)) {
        return Push(thread, record);
      }
      continue;
    }
    Revoke();
    return false;
  }
}

// The owner, with pushing_ set: the ring looked full. Applies it here rather than wait for anyone.
void BookkeepingQueue::MakeRoom(uint64_t head) {
  tail_seen_ = tail_.load(std::memory_order_acquire);
  if (head - tail_seen_ < kCapacity) return;
  {
    SpinLockHolder hold(consume_lock_);
    ApplyPublished(kCapacity);
  }
  tail_seen_ = tail_.load(std::memory_order_acquire);
}

void BookkeepingQueue::Revoke() {
  SpinLockHolder hold(revoke_lock_);
  if (drained_.load(std::memory_order_acquire)) return;  // another thread revoked it meanwhile
  owner_.store(kInPlace, std::memory_order_seq_cst);
  // The owner read owner_ after marking pushing_, with only a compiler barrier between: this makes that a full
  // fence on every thread of the process, so either we see its mark or it sees kInPlace.
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
    // Refused after the registration worked (a seccomp filter installed since): wait far longer than any
    // store stays in a core's store buffer (nanoseconds), so the owner's mark is visible by then.
    timespec pause{0, 10 * 1000 * 1000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
  }
  // The owner may be descheduled between its mark and its publish.
  for (int spins = 0; pushing_.load(std::memory_order_acquire); ++spins) SpinWaitStep(spins);
  {
    SpinLockHolder consume(consume_lock_);
    ApplyPublished(SIZE_MAX);
  }
  drained_.store(true, std::memory_order_release);
}

// kInPlace is only ever stored under revoke_lock_, which the revoker holds until drained_ is set.
void BookkeepingQueue::WaitUntilDrained() {
  if (drained_.load(std::memory_order_acquire)) return;
  SpinLockHolder hold(revoke_lock_);
}

size_t BookkeepingQueue::ApplyPublished(size_t limit) {
  const uint64_t head = head_.load(std::memory_order_acquire);
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const size_t count = static_cast<size_t>(std::min<uint64_t>(head - tail, limit));
  for (size_t done = 0; done < count;) {
    const size_t index = static_cast<size_t>((tail + done) & kMask);
    const size_t run = std::min(count - done, kCapacity - index);
    apply_(context_, ring_ + index, run);
    done += run;
  }
  // Release: the owner reuses these slots only after reading this.
  tail_.store(tail + count, std::memory_order_release);
  return count;
}

int64_t BookkeepingQueue::Drain(size_t limit) {
  SpinLockHolder hold(consume_lock_);
  const size_t applied = ring_ != nullptr ? ApplyPublished(limit) : 0;
  if (applied == 0 && owner_.load(std::memory_order_acquire) == kInPlace && drained_.load(std::memory_order_acquire)) {
    return -1;
  }
  return static_cast<int64_t>(applied);
}

void BookkeepingQueue::ResetAfterFork() {
  consume_lock_.ResetAfterFork();
  revoke_lock_.ResetAfterFork();
  pushing_.store(false, std::memory_order_relaxed);  // the owner may have been another thread, mid-push
  if (owner_.load(std::memory_order_relaxed) == kInPlace) return;
  owner_.store(kInPlace, std::memory_order_relaxed);
  ApplyPublished(SIZE_MAX);
  drained_.store(true, std::memory_order_release);
}

}  // namespace memtide::internal
