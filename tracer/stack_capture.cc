// Stack capture with libunwind (see stack_capture.h). Tracer module: Init at start, Capture on the hot path.
#define UNW_LOCAL_ONLY
#include "stack_capture.h"

#include <libunwind.h>

#include <algorithm>

#include "module_map.h"

namespace memtide::internal {
namespace {

// A function of this module, to find the module's own code range.
__attribute__((noinline)) int OwnCodeMarker() { return 1; }

CfaUnwinder g_cfa_unwinder;  // constant-initialized: its table stays untouched zero pages until used

// Both walks from this one frame: the cached-rule walk's frames must be libunwind's from the same return
// address on. Empty when they agree (or the walk declines this stack, which Capture handles per stack).
__attribute__((noinline)) std::string CompareWalks() {
  constexpr int kFrames = 32;
  uintptr_t fast[kFrames];
  void* slow[kFrames + 1];
  const int fast_depth = g_cfa_unwinder.Capture(fast, kFrames);
  const int slow_depth = unw_backtrace(slow, kFrames + 1);
  if (fast_depth < 0) return "";
  int offset = 0;
  while (offset < slow_depth && reinterpret_cast<uintptr_t>(slow[offset]) != fast[0]) ++offset;
  if (fast_depth == 0 || offset == slow_depth) return "its first frame is not among libunwind's";
  const int compared = std::min(fast_depth, slow_depth - offset);
  for (int i = 0; i < compared; ++i) {
    if (reinterpret_cast<uintptr_t>(slow[offset + i]) != fast[i]) {
      return "frame " + std::to_string(i) + " differs from libunwind's";
    }
  }
  if (fast_depth < std::min(kFrames, slow_depth - offset) - 1) return "it stopped before libunwind did";
  return "";
}

}  // namespace

bool StackCapture::CodeRangeOf(const void* address, uintptr_t* begin, uintptr_t* end) {
  return FindExecutableRange(reinterpret_cast<uintptr_t>(address), begin, end);
}

bool StackCapture::Init(uintptr_t skip_begin, uintptr_t skip_end, int max_frames, bool fast_unwind,
                        std::string* error, std::string* note) {
  max_frames_ = max_frames < 1 ? 1 : (max_frames > kMaxStackDepth ? kMaxStackDepth : max_frames);
  skip_count_ = 0;
  auto add_range = [this](uintptr_t begin, uintptr_t end) {
    if (begin < end && skip_count_ < kMaxSkipRanges) {
      skip_begin_[skip_count_] = begin;
      skip_end_[skip_count_] = end;
      ++skip_count_;
    }
  };
  add_range(skip_begin, skip_end);
  uintptr_t begin = 0;
  uintptr_t end = 0;
  if (CodeRangeOf(reinterpret_cast<const void*>(&OwnCodeMarker), &begin, &end)) add_range(begin, end);
  if (CodeRangeOf(reinterpret_cast<const void*>(&unw_backtrace), &begin, &end)) add_range(begin, end);

  if (unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD) != 0) {
    *error = "libunwind: cannot set the per-thread caching policy";
    return false;
  }
  // Not fatal: the default cache size works, only slower.
  unw_set_cache_size(unw_local_addr_space, 1024, 0);

  fast_ = nullptr;
  uintptr_t frames[kMaxStackDepth];
  if (Capture(frames) <= 0) {
    *error = "libunwind: unw_backtrace returned no frame";
    return false;
  }
  if (fast_unwind && kCfaUnwinderAvailable) {
    const std::string disagreement = CompareWalks();
    if (disagreement.empty()) {
      fast_ = &g_cfa_unwinder;
    } else {
      *note = "the fast stack walk is off (" + disagreement + "); stacks come from libunwind alone";
    }
  }
  return true;
}

}  // namespace memtide::internal
