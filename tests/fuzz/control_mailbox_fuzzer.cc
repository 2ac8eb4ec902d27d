// libFuzzer target: the traced process's side of the control mailbox (preload/control_mailbox.cc). Any
// process of the same user can write the mailbox, so every field — kind, argument, sequences, the previous
// response — is fuzzed, and the answer must be bounded: a NUL-terminated message, a known status, the
// response sequence equal to the request's. The preload functions it calls are stubbed here (when the mailbox
// calls something new, the ordinary build's fuzz.control_mailbox fails to link: add the stub).
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_mailbox.h"
#include "heap_counters.h"
#include "memory_policy.h"
#include "memtide/segment.h"
#include "mmap_accounting.h"
#include "segment_writer.h"
#include "tracer_loader.h"
#include "trim_mechanism.h"

namespace {
memtide::SegmentControl g_control;
uint32_t g_allocator;  // what DetectAllocator answers: from the input, so every branch is reached
}  // namespace

namespace memtide::internal {
SegmentControl* SharedControl() { return &g_control; }
HeapTotals ReadHeapTotals() { return HeapTotals{}; }
void ResetHeapPeak() {}
void ResetMmapPeak() {}
TrimResult TrimNow(TrimReason) { return TrimResult{}; }
uint32_t DetectAllocator() { return g_allocator; }
void GpuResetPeaks() {}
// Tracing on or off by the input, like the allocator: a snapshot answers a file name or ENOTSUP.
int TracerSnapshot(const char*, char* name, size_t name_size, char* message, size_t message_size) {
  if (g_allocator % 2 == 0) {
    snprintf(message, message_size, "tracing is off in this process");
    return ENOTSUP;
  }
  snprintf(name, name_size, "memtide-snapshot.1.1.json");
  return 0;
}
}  // namespace memtide::internal

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  memset(&g_control, 0, sizeof(g_control));
  g_allocator = size > sizeof(g_control) ? data[sizeof(g_control)] % 5 : memtide::kAllocatorGlibc;
  memcpy(&g_control, data, size < sizeof(g_control) ? size : sizeof(g_control));
  uint64_t sequence = g_control.request_sequence;
  bool answered = memtide::internal::AnswerControlRequest();
  if (answered) {
    if (g_control.response_sequence != sequence) abort();
    if (memchr(g_control.response_message, '\0', sizeof(g_control.response_message)) == nullptr) abort();
    if (g_control.response_status != 0 && g_control.response_status != EINVAL && g_control.response_status != ENOTSUP) {
      abort();
    }
  }
  // A second call with nothing new answers nothing.
  if (memtide::internal::AnswerControlRequest()) abort();
  return 0;
}
