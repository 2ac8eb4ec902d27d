// See leak_text_child.h.
#include "leak_text_child.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <atomic>
#include <new>

#include "large_stack.h"
#include "throwaway_child.h"

namespace memtide::internal {
namespace {

// The child's output, in order: records of a 4-byte header (the length, with kLogLine set for a log line or
// kReason for why the module did not load) and the bytes. Reserved, not committed: only the pages written take
// memory.
constexpr size_t kCaptureBytes = size_t{64} << 20;
constexpr uint32_t kLogLine = 0x80000000u;
constexpr uint32_t kReason = 0x40000000u;  // why the module could not be loaded (then the child exits with 3)
constexpr uint32_t kKinds = kLogLine | kReason;
constexpr int kNoModuleStatus = 3;
struct Capture {
  std::atomic<uint64_t> used;  // bytes of records after this header
  std::atomic<uint32_t> cut;   // a record did not fit: the rest was dropped
  std::atomic<uint32_t> done;  // every record is written
};
constexpr size_t kRecordsOffset = 64;

Capture* g_capture = nullptr;  // in the child

char* Records(Capture* capture) { return reinterpret_cast<char*>(capture) + kRecordsOffset; }

void Append(uint32_t flags, const char* bytes, size_t length) {
  Capture* capture = g_capture;
  const uint64_t used = capture->used.load(std::memory_order_relaxed);
  if (length >= kReason || used + 4 + length > kCaptureBytes - kRecordsOffset) {
    capture->cut.store(1, std::memory_order_relaxed);
    return;
  }
  const uint32_t header = static_cast<uint32_t>(length) | flags;
  memcpy(Records(capture) + used, &header, 4);
  memcpy(Records(capture) + used + 4, bytes, length);
  capture->used.store(used + 4 + length, std::memory_order_release);
}

void CaptureLogLine(const char* line) { Append(kLogLine, line, strlen(line)); }
void CaptureWriteText(const char* text, size_t length) { Append(0, text, length); }

[[noreturn]] void RunChildHere(const LeakTextCall& call, Capture* capture) {
  g_capture = capture;
  std::string reason;
  const MemtideLeakTextFunction leak_text = call.load(&reason);
  if (leak_text == nullptr) {
    Append(kReason, reason.data(), reason.size());
    MarkThrowawayChildDone(&capture->done);
    ExitThrowawayChild(kNoModuleStatus);
  }
  // With no text writer the module prints the one-line summary instead: the child offers what the parent has.
  leak_text(call.trace->data(), call.trace->size(), call.trace_path.c_str(), call.suppressions.c_str(),
            call.top_stacks, CaptureLogLine, call.write_text != nullptr ? CaptureWriteText : nullptr);
  MarkThrowawayChildDone(&capture->done);
  ExitThrowawayChild(0);
}

// On a stack of its own (large_stack.h): the child is a copy of whichever thread runs the exit, maybe one
// with a small stack.
[[noreturn]] void RunChild(const LeakTextCall& call, Capture* capture) {
  auto run = [&call, capture] { RunChildHere(call, capture); };
  CallOnLargeStack(run);
  __builtin_unreachable();  // RunChildHere ends the child
}

}  // namespace

LeakTextOutcome PrintLeakTextFromChild(const LeakTextCall& call, int stall_ms, std::string* why) {
  if (!ThrowawayChildAllowed()) {
    *why = "a seccomp filter does not let this process start a child process";
    return LeakTextOutcome::kNotTried;
  }
  void* mapping = mmap(nullptr, kCaptureBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
  if (mapping == MAP_FAILED) {
    *why = std::string("cannot map the child's output: ") + strerror(errno);
    return LeakTextOutcome::kNotTried;
  }
  auto* capture = new (mapping) Capture{};
  const pid_t child = StartThrowawayChild();
  if (child == 0) RunChild(call, capture);
  if (child < 0) {
    *why = std::string("cannot start a child: ") + strerror(errno);
    munmap(mapping, kCaptureBytes);
    return LeakTextOutcome::kNotTried;
  }
  bool stalled = false;
  int exit_status = -1;
  const std::string ended = WaitForComputingChild(child, &capture->done, stall_ms, &stalled, &exit_status);
  LeakTextOutcome outcome = LeakTextOutcome::kPrinted;
  if (stalled) {
    *why = ended;
    outcome = LeakTextOutcome::kNotTried;
  } else if (exit_status != 0 && exit_status != kNoModuleStatus) {
    *why = "the child that symbolizes it " + ended.substr(ended.rfind("it ", 0) == 0 ? 3 : 0);
    outcome = LeakTextOutcome::kFailed;
  } else {
    const char* records = Records(capture);
    const uint64_t used = capture->used.load(std::memory_order_acquire);
    for (uint64_t at = 0; at + 4 <= used;) {
      uint32_t header = 0;
      memcpy(&header, records + at, 4);
      const size_t length = header & ~kKinds;
      if (at + 4 + length > used) break;
      const char* bytes = records + at + 4;
      if ((header & kReason) != 0) {
        why->assign(bytes, length);
        outcome = LeakTextOutcome::kFailed;
      } else if ((header & kLogLine) != 0) {
        call.log_line(std::string(bytes, length).c_str());
      } else {
        call.write_text(bytes, length);
      }
      at += 4 + length;
    }
    if (capture->cut.load(std::memory_order_relaxed) != 0) {
      call.log_line("the leak report was cut: it is longer than 64 MiB");
    }
  }
  munmap(mapping, kCaptureBytes);
  return outcome;
}

}  // namespace memtide::internal
