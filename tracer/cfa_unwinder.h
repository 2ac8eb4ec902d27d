// Stack capture without libunwind for the common frame, on x86-64: each frame's caller is found from a rule
// per code address (CFA = RSP or RBP + offset, return address at CFA - 8, RBP saved at CFA + n or unchanged),
// read once from the module's .eh_frame (located with glibc's _dl_find_object, lock-free) and cached in a
// table shared by all threads. A cached frame costs a table probe and one or two loads from the stack: 9 frames
// in 46 ns here, against 76 ns for libunwind's unw_backtrace (which also caches per address, behind more
// set-up and bookkeeping). A WalkMemo skips even that when a thread's stack is the one it walked last.
//
// Anything the rules cannot express makes Capture return -1 and the caller uses libunwind for that stack:
// signal frames ('S' CIEs), DWARF expressions (PLT stubs), code with no unwind tables (JIT, stripped asm),
// registers other than RSP/RBP as the CFA, a stack pointer outside the thread's stack (an alternate signal
// stack, a coroutine), a CFA or saved RBP beyond the top of the stack. So this path never guesses, and every
// address it reads lies between the current stack pointer and the top of the thread's stack: glibc puts a
// thread's descriptor (the thread pointer) at the top of its stack block; the main thread's top is
// __libc_stack_end's page. Rules are keyed by code address: Invalidate() drops them all when the loader has
// unloaded an object (the tracer calls it when its module map sees the loader's counters move).
//
// Lives in static storage (the table is 1 MiB of zeroes: left untouched until used) and is shared by threads.
#ifndef MEMTIDE_TRACER_CFA_UNWINDER_H_
#define MEMTIDE_TRACER_CFA_UNWINDER_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace memtide::internal {

struct CfaRule {
  enum Kind : uint8_t {
    kUnsupported = 0,  // libunwind must do this frame
    kFromSp,           // CFA = RSP + cfa_offset
    kFromBp,           // CFA = RBP + cfa_offset
    kOutermost,        // the return address is undefined: the stack ends here (_start, clone)
  };
  Kind kind = kUnsupported;
  int32_t cfa_offset = 0;
  int32_t saved_bp_offset = 0;  // the caller's RBP is at CFA + this; 0: RBP is unchanged
};

// The rule for code address `pc` from the .eh_frame_hdr section at `eh_frame_hdr` (its binary-search table
// and the FDE it points to). kUnsupported when no FDE covers pc or the FDE says something the rules cannot.
CfaRule RuleFromEhFrameHeader(const uint8_t* eh_frame_hdr, uintptr_t pc);

// The same for any loaded code address (_dl_find_object, then the above).
CfaRule RuleForAddress(uintptr_t pc);

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
inline constexpr bool kCfaUnwinderAvailable = true;
#else
inline constexpr bool kCfaUnwinderAvailable = false;
#endif

// What one thread's last walk read, so that the same stack is recognized without walking it again: a walk is
// a function of its start registers, the stack words it reads (return addresses, saved RBPs) and the cached
// rules. When the registers, the words at the same addresses and the rules are unchanged, so is the result;
// checking that costs a load and a compare per word, with no dependent chain. The caller keeps what it
// derived from the stack (the depot id) in `result`. One per thread, owned by the tracer (not shared).
struct WalkMemo {
  static constexpr int kMaxReads = 2 * 72;  // a return address and a saved RBP per frame, 64 + 6 frames
  int reads = -1;                           // words recorded; -1: nothing to recall
  uint32_t result = 0;                      // 0: nothing remembered for this walk yet
  uint64_t rule_epoch = 0;
  uintptr_t sp = 0;
  uintptr_t bp = 0;
  bool uses_start_bp = false;  // a frame's CFA came from RBP before any saved RBP was read: bp must match
  uintptr_t stack_top = 0;
  uintptr_t address[kMaxReads];
  uintptr_t value[kMaxReads];
};

class CfaUnwinder {
 public:
  // Capture's answer when a memo recognized the stack: nothing was written to frames; *remembered is the
  // memo's result.
  static constexpr int kRemembered = -2;

  // 2^16 entries of 16 bytes: zero pages until used; a program's allocation stacks pass through far fewer
  // distinct return addresses (g++ compiling a 2,000-line file: about 20,000).
  static constexpr int kTableBits = 16;
  static constexpr int kProbes = 8;

  constexpr CfaUnwinder() = default;
  CfaUnwinder(const CfaUnwinder&) = delete;
  CfaUnwinder& operator=(const CfaUnwinder&) = delete;

  // Return addresses, innermost first: frames[0] is the return address into the caller of the function this
  // is inlined into. At most `max` of them. -1: a frame needs libunwind (nothing written is meaningful).
  // With a memo (the calling thread's, for this call site and `max` only): kRemembered when it recognizes the
  // stack; otherwise the walk records what it reads there, for the caller to set memo->result.
  // Always inlined, so that the first frame is the caller's own (its registers are read right here).
  __attribute__((always_inline)) int Capture(uintptr_t* frames, int max, WalkMemo* memo = nullptr,
                                             uint32_t* remembered = nullptr) {
    if constexpr (!kCfaUnwinderAvailable) {
      return -1;
    } else {
      uintptr_t pc;
      uintptr_t sp;
      uintptr_t bp;
      asm volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
      if (memo != nullptr && Recall(*memo, sp, bp)) {
        *remembered = memo->result;
        return kRemembered;
      }
      return Walk(frames, max, pc, sp, bp, memo);
    }
  }

  // Drops every cached rule (an object was unloaded: its addresses may now hold other code), and with them
  // every memo.
  void Invalidate();

  // Test hook: how many rules were read from .eh_frame (cache misses that found a rule).
  uint64_t rules_read() const { return rules_read_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::atomic<uintptr_t> pc{0};  // 0: empty; kBusy: being written
    std::atomic<uint64_t> rule{0};
  };
  static constexpr uintptr_t kBusy = 1;
  static constexpr size_t kSlotMask = (size_t{1} << kTableBits) - 1;

  int Walk(uintptr_t* frames, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp, WalkMemo* memo);
  bool Recall(const WalkMemo& memo, uintptr_t sp, uintptr_t bp) const;
  // The packed rule for pc: the cached one, else Miss's.
  __attribute__((always_inline)) uint64_t Lookup(uintptr_t pc) {
    size_t slot = Slot(pc);
    for (int probe = 0; probe < kProbes; ++probe, slot = (slot + 1) & kSlotMask) {
      Entry& entry = table_[slot];
      const uintptr_t seen = entry.pc.load(std::memory_order_acquire);
      if (seen == pc) {
        const uint64_t packed = entry.rule.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        // Invalidate (or a rewrite of this slot) changes pc first: re-check it, seqlock-style.
        if (__builtin_expect(entry.pc.load(std::memory_order_relaxed) == pc && packed != 0, 1)) return packed;
        break;
      }
      if (seen == 0) break;
    }
    return Miss(pc);
  }
  uint64_t Miss(uintptr_t pc);

  // kind in bits 0-7, cfa_offset in 8-39, saved_bp_offset (16 bits) in 40-55, bit 63 set (never 0).
  static uint64_t Pack(const CfaRule& rule);
  // No multiply: the slot is on the walk's critical path (each frame's lookup waits for the return address
  // loaded by the one before). Code addresses differ in their low bits; the shift folds in the module's.
  static size_t Slot(uintptr_t pc) { return static_cast<size_t>(pc ^ (pc >> kTableBits)) & kSlotMask; }

  Entry table_[size_t{1} << kTableBits];
  std::atomic<uint64_t> rule_epoch_{1};  // moved by Invalidate; a memo of another epoch is stale
  std::atomic<uint64_t> rules_read_{0};
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_CFA_UNWINDER_H_
