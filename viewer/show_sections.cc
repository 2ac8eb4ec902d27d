// See show_sections.h. Runs in the CLI.
#include "show_sections.h"

#include <string.h>

#include <algorithm>

#include "byte_format.h"
#include "fmt/format.h"
#include "printable.h"
#include "process_table.h"

namespace memtide {
namespace {

constexpr int kBarWidth = 20;

std::string SignedBytes(int64_t bytes) { return bytes > 0 ? "+" + HumanBytes(bytes) : HumanBytes(bytes); }

}  // namespace

std::string MarksTimelineText(const Segment& segment) {
  uint64_t total = segment.counters.marks_total;
  if (total == 0) return "";
  uint64_t first = total > MEMTIDE_SEGMENT_MARKS ? total - MEMTIDE_SEGMENT_MARKS : 0;
  int64_t scale = 0;
  for (uint64_t i = first; i < total; ++i) {
    scale = std::max(scale, segment.marks[i % MEMTIDE_SEGMENT_MARKS].heap_peak_bytes);
  }
  std::string text = fmt::format("  marks   {}{}: time, label, heap at the mark, change since the mark before, peak\n",
                                 total, total - first < total ? fmt::format(" (the last {} kept)", total - first) : "");
  const SegmentMark* previous = nullptr;
  for (uint64_t i = first; i < total; ++i) {
    const SegmentMark& mark = segment.marks[i % MEMTIDE_SEGMENT_MARKS];
    std::string label = Printable(absl::string_view(mark.label, strnlen(mark.label, sizeof(mark.label))));
    int bar = 0;
    if (scale > 0 && mark.heap_current_bytes > 0) {
      bar = static_cast<int>(std::min<double>(
          kBarWidth, static_cast<double>(mark.heap_current_bytes) / static_cast<double>(scale) * kBarWidth + 0.5));
    }
    std::string change = previous == nullptr ? "" : SignedBytes(mark.heap_current_bytes - previous->heap_current_bytes);
    text += fmt::format("    {:>9.3f} s  {:<24} {:>10} {:>11}   peak {:>10}", static_cast<double>(mark.time_ns) / 1e9,
                        label, HumanBytes(mark.heap_current_bytes), change, HumanBytes(mark.heap_peak_bytes));
    if (bar > 0) text += "  " + std::string(static_cast<size_t>(bar), '#');
    text += "\n";
    previous = &mark;
  }
  return text;
}

std::string GpuBucketsText(const Segment& segment) {
  std::string text;
  uint32_t count = std::min<uint32_t>(segment.gpu_device_count, MEMTIDE_SEGMENT_GPU_DEVICES);
  for (uint32_t i = 0; i < count; ++i) {
    const SegmentGpuDevice& g = segment.gpu[i];
    if (g.ordinal < 0) continue;
    text += fmt::format("  gpu {}   {}", g.ordinal, GpuUuidText(g.uuid));
    if (g.device_total_bytes > 0) {
      text += fmt::format("   device {} of {} used by all processes", HumanBytes(g.device_used_bytes),
                          HumanBytes(g.device_total_bytes));
    }
    text += "\n";
    text += fmt::format("          device  current {:>10}   peak {:>10}   allocations {}   frees {}\n",
                        HumanBytes(g.device_current_bytes), HumanBytes(g.device_peak_bytes),
                        GroupedCount(static_cast<int64_t>(g.allocations)), GroupedCount(static_cast<int64_t>(g.frees)));
    text += fmt::format("          managed current {:>10}   peak {:>10}\n", HumanBytes(g.managed_current_bytes),
                        HumanBytes(g.managed_peak_bytes));
    text += fmt::format("          pinned  current {:>10}   peak {:>10}\n", HumanBytes(g.pinned_host_current_bytes),
                        HumanBytes(g.pinned_host_peak_bytes));
    std::string other;
    if (g.array_bytes != 0) other += fmt::format("   arrays {}", HumanBytes(g.array_bytes));
    if (g.pool_reserved_bytes != 0) other += fmt::format("   pools reserve {}", HumanBytes(g.pool_reserved_bytes));
    if (g.host_registered_bytes != 0)
      other += fmt::format("   host registered {}", HumanBytes(g.host_registered_bytes));
    if (g.imported_bytes != 0) other += fmt::format("   imported {}", HumanBytes(g.imported_bytes));
    if (g.unknown_frees != 0) other += fmt::format("   frees of unknown pointers {}", g.unknown_frees);
    if (!other.empty()) text += "        " + other + "\n";
  }
  return text;
}

}  // namespace memtide
