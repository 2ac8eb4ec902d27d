// The tracer module's lock: a one-byte test-and-test-and-set spin lock. Runs on the hot path (inside the
// program's malloc/free, under the preload's reentrancy guard) around a few loads and stores, so it must not
// allocate or enter the kernel unless it waits. Chosen over std::mutex because fork() must be able to reset
// every lock in the child (tracer_module.h: after_fork_child), which a plain store does here and which is
// undefined for a pthread mutex held by a thread that no longer exists.
#ifndef MEMTIDE_TRACER_SPIN_LOCK_H_
#define MEMTIDE_TRACER_SPIN_LOCK_H_

#include <sched.h>

#include <atomic>

namespace memtide::internal {

// One step of waiting for another thread: a pause instruction for the first 64 steps, then the CPU is given
// up (sched_yield), since on a machine with fewer cores than threads the other one may be descheduled.
inline void SpinWaitStep(int step) {
  if (step < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
  }
}

class SpinLock {
 public:
  constexpr SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  // Acquire on success; allocation-free; yields the CPU (sched_yield) after a short spin, since on a machine
  // with fewer cores than threads the holder may be descheduled.
  void Lock() {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    LockSlow();
  }
  void Unlock() { locked_.store(false, std::memory_order_release); }
  // Only in a fork child, where the thread that held the lock does not exist.
  void ResetAfterFork() { locked_.store(false, std::memory_order_relaxed); }

 private:
  void LockSlow();

  std::atomic<bool> locked_{false};
};

class SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock& lock) : lock_(lock) { lock_.Lock(); }
  ~SpinLockHolder() { lock_.Unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock& lock_;
};

inline void SpinLock::LockSlow() {
  for (int spins = 0;; ++spins) {
    if (!locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire)) return;
    SpinWaitStep(spins);
  }
}

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_SPIN_LOCK_H_
