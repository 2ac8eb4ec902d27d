// See trace_diff.h. Runs in the CLI.
#include "trace_diff.h"

#include <algorithm>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "byte_format.h"
#include "fmt/format.h"
#include "report_render.h"

namespace memtide {
namespace {

absl::StatusOr<const std::vector<StackTotal>*> Figures(const TraceReport& report, DiffMetric metric) {
  if (!report.has_trace) {
    return absl::FailedPreconditionError(absl::StrCat(SafeText(report.path), " has no trace (the run was not ",
                                                      "traced: memtide run --leaks or --trace)"));
  }
  if (metric == DiffMetric::kPeak) return &report.peak_sites;
  if (report.trace.kind == TraceKind::kSnapshot) return &report.live_sites;
  return &report.leaks;
}

std::string Signed(int64_t value) { return value > 0 ? "+" + GroupedCount(value) : GroupedCount(value); }

std::string SignedBytes(int64_t value) { return Signed(value) + (value == 1 || value == -1 ? " byte" : " bytes"); }

std::string SignedBlocks(int64_t value) { return Signed(value) + (value == 1 || value == -1 ? " block" : " blocks"); }

std::string Amount(int64_t bytes, int64_t count) {
  return fmt::format("{} {} in {}", GroupedCount(bytes), bytes == 1 ? "byte" : "bytes", Blocks(count));
}

const char* MetricName(DiffMetric metric, TraceKind kind) {
  if (metric == DiffMetric::kPeak) return "held at the peak";
  return kind == TraceKind::kSnapshot ? "live" : "leaked";
}

size_t Shown(size_t available, int top) { return top <= 0 ? available : std::min<size_t>(available, top); }

}  // namespace

absl::StatusOr<TraceDiff> CompareTraces(const TraceReport& a, const TraceReport& b, DiffMetric metric) {
  absl::StatusOr<const std::vector<StackTotal>*> a_list = Figures(a, metric);
  if (!a_list.ok()) return a_list.status();
  absl::StatusOr<const std::vector<StackTotal>*> b_list = Figures(b, metric);
  if (!b_list.ok()) return b_list.status();
  TraceDiff diff;
  diff.a_path = a.path;
  diff.b_path = b.path;
  diff.a_kind = a.trace.kind;
  diff.b_kind = b.trace.kind;
  diff.metric = metric;
  // Lists read back from reports may hold equal stacks twice (suppressions applied later): merge first.
  std::vector<StackTotal> a_totals = MergeStackTotals(**a_list);
  std::vector<StackTotal> b_totals = MergeStackTotals(**b_list);
  std::unordered_map<std::string, size_t> index;
  for (const StackTotal& total : b_totals) {
    index.emplace(StackKey(total.stack), diff.stacks.size());
    diff.stacks.push_back(StackDiff{total.stack, total.bytes, total.bytes, total.count, total.count});
    diff.b_bytes += total.bytes;
    diff.b_count += total.count;
  }
  for (const StackTotal& total : a_totals) {
    diff.a_bytes += total.bytes;
    diff.a_count += total.count;
    auto found = index.find(StackKey(total.stack));
    if (found == index.end()) {
      diff.stacks.push_back(StackDiff{total.stack, 0, -total.bytes, 0, -total.count});
    } else {
      diff.stacks[found->second].size_diff -= total.bytes;
      diff.stacks[found->second].count_diff -= total.count;
    }
  }
  std::vector<std::string> keys;
  std::vector<size_t> order(diff.stacks.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
    keys.push_back(StackKey(diff.stacks[i].stack));
  }
  auto magnitude = [](int64_t value) {
    return value < 0 ? -static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  };
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const StackDiff& p = diff.stacks[x];
    const StackDiff& q = diff.stacks[y];
    if (magnitude(p.size_diff) != magnitude(q.size_diff)) return magnitude(p.size_diff) > magnitude(q.size_diff);
    if (magnitude(p.count_diff) != magnitude(q.count_diff)) return magnitude(p.count_diff) > magnitude(q.count_diff);
    if (p.size != q.size) return p.size > q.size;
    return keys[x] < keys[y];
  });
  std::vector<StackDiff> sorted;
  sorted.reserve(order.size());
  for (size_t i : order) sorted.push_back(std::move(diff.stacks[i]));
  diff.stacks = std::move(sorted);
  return diff;
}

std::string RenderDiffText(const TraceDiff& diff, int top) {
  std::string text = fmt::format("memtide diff: {} ({}) -> {} ({}), {}: {} -> {} ({}, {})\n", SafeText(diff.a_path),
                                 TraceKindName(diff.a_kind), SafeText(diff.b_path), TraceKindName(diff.b_kind),
                                 MetricName(diff.metric, diff.b_kind), Amount(diff.a_bytes, diff.a_count),
                                 Amount(diff.b_bytes, diff.b_count), SignedBytes(diff.b_bytes - diff.a_bytes),
                                 SignedBlocks(diff.b_count - diff.a_count));
  std::vector<const StackDiff*> changed;
  size_t unchanged = 0;
  for (const StackDiff& stack : diff.stacks) {
    if (stack.size_diff == 0 && stack.count_diff == 0) {
      ++unchanged;
    } else {
      changed.push_back(&stack);
    }
  }
  size_t shown = Shown(changed.size(), top);
  for (size_t i = 0; i < shown; ++i) {
    const StackDiff& stack = *changed[i];
    std::string now = stack.size == 0 && stack.count == 0 ? "gone" : "now " + Amount(stack.size, stack.count);
    if (stack.size == stack.size_diff && stack.count == stack.count_diff) now = "new, " + now;
    text += fmt::format("\n{} ({}): {}\n", SignedBytes(stack.size_diff), SignedBlocks(stack.count_diff), now);
    if (stack.stack.empty()) text += "    (no stack recorded)\n";
    for (size_t j = 0; j < stack.stack.size(); ++j) text += "    " + FrameText(stack.stack[j], j) + "\n";
  }
  if (changed.empty()) text += "\nNo stack changed.\n";
  std::string rest;
  if (shown < changed.size()) rest = fmt::format("{} more changed", changed.size() - shown);
  if (unchanged > 0) rest += fmt::format("{}{} unchanged", rest.empty() ? "" : "; ", unchanged);
  if (!rest.empty()) text += fmt::format("\n...{} stack{}\n", rest, changed.size() - shown + unchanged == 1 ? "" : "s");
  return text;
}

nlohmann::json RenderDiffJson(const TraceDiff& diff, int top) {
  nlohmann::json stacks = nlohmann::json::array();
  size_t shown = Shown(diff.stacks.size(), top);
  for (size_t i = 0; i < shown; ++i) {
    const StackDiff& stack = diff.stacks[i];
    stacks.push_back({{"size", stack.size},
                      {"size_diff", stack.size_diff},
                      {"count", stack.count},
                      {"count_diff", stack.count_diff},
                      {"stack", StackJson(stack.stack)}});
  }
  return {
      {"a",
       {{"path", diff.a_path}, {"kind", TraceKindName(diff.a_kind)}, {"bytes", diff.a_bytes}, {"count", diff.a_count}}},
      {"b",
       {{"path", diff.b_path}, {"kind", TraceKindName(diff.b_kind)}, {"bytes", diff.b_bytes}, {"count", diff.b_count}}},
      {"metric", diff.metric == DiffMetric::kPeak ? "peak" : "live"},
      {"size_diff", diff.b_bytes - diff.a_bytes},
      {"count_diff", diff.b_count - diff.a_count},
      {"stacks", stacks},
  };
}

}  // namespace memtide
