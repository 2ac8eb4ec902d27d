// Stack capture with libunwind (see stack_capture.h). Tracer module: Init at start, Capture on the hot path.
#define UNW_LOCAL_ONLY
#include "stack_capture.h"

#include <libunwind.h>

#include "module_map.h"

namespace memtide::internal {
namespace {

// A function of this module, to find the module's own code range.
__attribute__((noinline)) int OwnCodeMarker() { return 1; }

}  // namespace

bool StackCapture::CodeRangeOf(const void* address, uintptr_t* begin, uintptr_t* end) {
  return FindExecutableRange(reinterpret_cast<uintptr_t>(address), begin, end);
}

bool StackCapture::Init(uintptr_t skip_begin, uintptr_t skip_end, int max_frames, std::string* error) {
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

  uintptr_t frames[kMaxStackDepth];
  if (Capture(frames) <= 0) {
    *error = "libunwind: unw_backtrace returned no frame";
    return false;
  }
  return true;
}

}  // namespace memtide::internal
