// See control_mailbox.h. Monitor thread, under the guard. The requester cannot be trusted to have written
// sensible values (any process of the same user can write the file): kinds are checked, the argument is
// bounded, and nothing from the mailbox is used as a length or an index.
#include "control_mailbox.h"

#include <errno.h>
#include <string.h>

#include "fmt/format.h"
#include "gpu_accounting.h"
#include "heap_counters.h"
#include "memory_policy.h"
#include "memtide/segment.h"
#include "mmap_accounting.h"
#include "segment_writer.h"
#include "tracer_loader.h"
#include "trim_mechanism.h"

namespace memtide::internal {
namespace {

uint64_t g_answered = 0;  // the last request_sequence answered

template <typename... Args>
void Respond(SegmentControl* control, uint64_t sequence, int status, fmt::format_string<Args...> format,
             Args&&... args) {
  auto result = fmt::format_to_n(control->response_message, sizeof(control->response_message) - 1, format,
                                 std::forward<Args>(args)...);
  *result.out = '\0';
  control->response_status = status;
  __atomic_store_n(&control->response_sequence, sequence, __ATOMIC_RELEASE);
  g_answered = sequence;
}

}  // namespace

bool AnswerControlRequest() {
  SegmentControl* control = SharedControl();
  if (control == nullptr) return false;
  uint64_t sequence = __atomic_load_n(&control->request_sequence, __ATOMIC_ACQUIRE);
  if (sequence == g_answered) return false;
  uint32_t kind = __atomic_load_n(&control->request_kind, __ATOMIC_RELAXED);
  memset(control->response_values, 0, sizeof(control->response_values));
  switch (kind) {
    case kControlTrim: {
      if (DetectAllocator() == kAllocatorMimalloc) {
        Respond(control, sequence, ENOTSUP,
                "mimalloc collects only the calling thread's heap: call memtide_trim() from the program, or run "
                "it with memtide run --allocator mimalloc (eager decommit)");
        break;
      }
      TrimResult result = TrimNow(TrimReason::kRequested);
      control->response_values[0] = result.rss_before_bytes;
      control->response_values[1] = result.rss_after_bytes;
      control->response_values[2] = result.rss_before_bytes - result.rss_after_bytes;
      control->response_values[3] = result.duration_ns;
      if (!result.supported) {
        Respond(control, sequence, ENOTSUP, "this process's allocator has no way to release memory");
      } else {
        Respond(control, sequence, 0, "trimmed");
      }
      break;
    }
    case kControlResetPeak: {
      ResetHeapPeak();
      ResetMmapPeak();
      GpuResetPeaks();
      HeapTotals heap = ReadHeapTotals();
      control->response_values[0] = heap.current_bytes;
      control->response_values[1] = heap.peak_bytes;
      Respond(control, sequence, 0, "peak reset");
      break;
    }
    case kControlSnapshot: {
      // The file goes into this process's segment folder, which the requester sees too (it found the segment
      // there, even from outside a container); the requester copies it where it wants and removes it.
      char name[MEMTIDE_SEGMENT_CONTROL_MESSAGE_BYTES];
      char message[MEMTIDE_SEGMENT_CONTROL_MESSAGE_BYTES];
      int status = TracerSnapshot(nullptr, name, sizeof(name), message, sizeof(message));
      if (status == 0) {
        Respond(control, sequence, 0, "{}", name);
      } else {
        Respond(control, sequence, status, "{}", message);
      }
      break;
    }
    default:
      Respond(control, sequence, EINVAL, "unknown request kind {}", kind);
      break;
  }
  return true;
}

}  // namespace memtide::internal
