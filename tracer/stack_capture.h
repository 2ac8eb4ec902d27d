// Stack capture for the tracer module: the cached-rule walk of cfa_unwinder.h, or libunwind's unw_backtrace
// (with its per-thread caches) for the stacks that walk refuses, minus memtide's own inner frames. Runs on the
// hot path of every traced allocation, on the allocating thread, with no lock of the tracer held (libunwind may
// enter the loader through dl_iterate_phdr on a cache miss; holding one of our locks there would order it
// against the loader lock the other way round from dlopen's mallocs).
#ifndef MEMTIDE_TRACER_STACK_CAPTURE_H_
#define MEMTIDE_TRACER_STACK_CAPTURE_H_

#include <stdint.h>
#include <string.h>

#include <string>

#include "cfa_unwinder.h"
#include "stack_depot.h"

// unw_backtrace without <libunwind.h>, which would need UNW_LOCAL_ONLY defined before every include of this
// header; libunwind.so.8 exports it under this plain name.
extern "C" int unw_backtrace(void** buffer, int size);

namespace memtide::internal {

class StackCapture {
 public:
  // Inner frames dropped when they sit in any of these code ranges (memtide's own) before the first frame
  // that does not: libmemtide.so (given), this module and libunwind (found from a code address of each).
  static constexpr int kMaxSkipRanges = 4;
  // Return addresses captured beyond max_frames so that memtide's own inner frames do not cost the program's
  // outer ones: unw_backtrace itself (libunwind only), this module's entry, the preload's slow path and its
  // hook are 4 (5 when realloc moves a bootstrap block). Every frame asked for beyond that is unwound for
  // nothing on deep stacks (measured: 16 here cost g++ under full tracing 2.5 s of 9.3 s, at about 19 ns per
  // frame with libunwind).
  static constexpr int kInnerAllowance = 6;

  // Once, at module start (allocation-free apart from what libunwind does; enters the loader). Sets libunwind's
  // per-thread caching and checks that unw_backtrace works. False with *error set if it does not. The cached-
  // rule walk is used when `fast_unwind` and it agrees with libunwind on this call's own stack; otherwise
  // *note says why not (tracing goes on with libunwind alone).
  bool Init(uintptr_t skip_begin, uintptr_t skip_end, int max_frames, bool fast_unwind, std::string* error,
            std::string* note);

  // Hot path: no lock, no allocation of ours (libunwind mmaps its per-thread cache on a thread's first use).
  // Writes at most max_frames return addresses, innermost first, frames[0] being the code that called the
  // allocator; returns how many. Always inlined: every frame of ours between the program and unw_backtrace
  // is one more frame to unwind (about 15 ns each here), so the module's hot entry is a single frame.
  // With a memo (the calling thread's, cfa_unwinder.h): kRemembered and *remembered when the stack is the
  // one the memo was made for; otherwise the caller sets memo->result for the stack it derives from frames.
  static constexpr int kRemembered = CfaUnwinder::kRemembered;
  __attribute__((always_inline)) int Capture(uintptr_t* frames, WalkMemo* memo = nullptr,
                                             uint32_t* remembered = nullptr) const {
    void* raw[kMaxStackDepth + kInnerAllowance];
    int captured = -1;
    if (fast_ != nullptr) {
      captured =
          fast_->Capture(reinterpret_cast<uintptr_t*>(raw), max_frames_ + kInnerAllowance, memo, remembered);
      if (captured == kRemembered) return kRemembered;
    }
    if (captured < 0) captured = unw_backtrace(raw, max_frames_ + kInnerAllowance);
    int first = 0;
    while (first < captured && IsOwn(reinterpret_cast<uintptr_t>(raw[first]))) ++first;
    int depth = captured - first;
    if (depth > max_frames_) depth = max_frames_;
    if (depth <= 0) return 0;
    memcpy(frames, raw + first, static_cast<size_t>(depth) * sizeof(uintptr_t));
    return depth;
  }

  int max_frames() const { return max_frames_; }
  bool fast_unwind() const { return fast_ != nullptr; }
  // An object was unloaded: cached rules may describe code that is gone.
  void ForgetUnwindRules() const {
    if (fast_ != nullptr) fast_->Invalidate();
  }

  // The [begin, end) of the code range holding `address` (this module, for instance), or false.
  static bool CodeRangeOf(const void* address, uintptr_t* begin, uintptr_t* end);

 private:
  bool IsOwn(uintptr_t address) const {
    for (int i = 0; i < skip_count_; ++i) {
      if (address - skip_begin_[i] < skip_end_[i] - skip_begin_[i]) return true;
    }
    return false;
  }

  CfaUnwinder* fast_ = nullptr;  // the module's one instance (static storage), or null: libunwind alone
  int max_frames_ = 0;
  int skip_count_ = 0;
  uintptr_t skip_begin_[kMaxSkipRanges] = {};
  uintptr_t skip_end_[kMaxSkipRanges] = {};
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_STACK_CAPTURE_H_
