// See report_render.h. Runs in the CLI, or in a traced program at exit.
#include "report_render.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "byte_format.h"
#include "fmt/format.h"
#include "folded_stacks.h"
#include "leak_suppressions.h"

namespace memtide {
namespace {

std::string BytesText(int64_t bytes) { return bytes == 1 ? "1 byte" : GroupedCount(bytes) + " bytes"; }

std::string StacksText(size_t count) {
  return count == 1 ? "1 stack" : GroupedCount(static_cast<int64_t>(count)) + " stacks";
}

std::string SizesText(const std::vector<int64_t>& sizes) {
  if (sizes.empty()) return "";
  std::vector<std::string> texts;
  for (int64_t size : sizes) texts.push_back(std::to_string(size));
  return fmt::format(" (sizes {})", absl::StrJoin(texts, ", "));
}

std::string FramesText(const Stack& stack) {
  if (stack.empty()) return "    (no stack recorded)\n";
  std::string text;
  for (size_t i = 0; i < stack.size(); ++i) text += "    " + FrameText(stack[i], i) + "\n";
  return text;
}

size_t Shown(size_t available, int top) { return top <= 0 ? available : std::min<size_t>(available, top); }

// "...and 3 more stacks: 1,234 bytes in 5 blocks" for what a --top cut off.
std::string MoreText(const std::vector<StackTotal>& list, size_t shown) {
  if (shown >= list.size()) return "";
  int64_t bytes = 0, count = 0;
  for (size_t i = shown; i < list.size(); ++i) {
    bytes += list[i].bytes;
    count += list[i].count;
  }
  size_t more = list.size() - shown;
  return fmt::format("...and {} more stack{}: {} in {}\n\n", GroupedCount(static_cast<int64_t>(more)),
                     more == 1 ? "" : "s", BytesText(bytes), Blocks(count));
}

std::string CommandText(const TraceReport& report) {
  std::vector<std::string> command = report.trace.command;
  if (command.empty() && report.run_report.is_object() && report.run_report.contains("command") &&
      report.run_report["command"].is_array()) {
    for (const nlohmann::json& argument : report.run_report["command"]) {
      if (argument.is_string()) command.push_back(SafeText(argument.get<std::string>()));
    }
  }
  for (std::string& argument : command) argument = SafeText(argument);
  return command.empty() ? "(command unknown)" : absl::StrJoin(command, " ");
}

int64_t Pid(const TraceReport& report) {
  if (report.trace.pid != 0) return report.trace.pid;
  if (report.run_report.is_object() && report.run_report.contains("pid") &&
      report.run_report["pid"].is_number_integer()) {
    return report.run_report["pid"].get<int64_t>();
  }
  return 0;
}

std::string ModeText(const TraceInfo& trace) {
  if (trace.mode == "sample") {
    return fmt::format("sampled trace (one sample per {} on average: every figure is an estimate)",
                       HumanBytes(trace.sample_mean_bytes));
  }
  return "full trace";
}

std::string HeaderText(const TraceReport& report) {
  const TraceInfo& trace = report.trace;
  std::string text;
  int64_t pid = Pid(report);
  std::string who = pid != 0 ? fmt::format("{} (pid {})", CommandText(report), pid) : CommandText(report);
  if (trace.kind == TraceKind::kSnapshot) {
    text += fmt::format("memtide snapshot of {} at {:.2f} s: {}\n", who, trace.time_s, ModeText(trace));
  } else {
    text += fmt::format("memtide leak report of {}: {}{}\n", who, ModeText(trace),
                        trace.exit_code.has_value() ? fmt::format(", exit code {}", *trace.exit_code) : "");
  }
  if (!trace.complete) {
    text += "warning: the trace is incomplete: some blocks could not be traced (the tracer ran out of room)\n";
  }
  text += fmt::format("Traced: {} allocations, {} frees, {} allocated; peak {}; {} in {} {} (bytes {})\n",
                      GroupedCount(trace.allocations), GroupedCount(trace.frees), HumanBytes(trace.allocated_bytes),
                      HumanBytes(trace.peak_bytes), BytesText(trace.live_bytes), Blocks(trace.live_blocks),
                      trace.kind == TraceKind::kSnapshot ? "live" : "live at exit", SafeText(trace.byte_unit));
  return text;
}

std::string LiveText(const TraceReport& report, int top) {
  std::string text;
  size_t shown = Shown(report.live_sites.size(), top);
  int64_t bytes = 0, count = 0;
  for (const StackTotal& site : report.live_sites) {
    bytes += site.bytes;
    count += site.count;
  }
  for (size_t i = 0; i < shown; ++i) {
    const StackTotal& site = report.live_sites[i];
    text += fmt::format("Live: {} in {}{}\n", BytesText(site.bytes), Blocks(site.count), SizesText(site.sizes));
    text += FramesText(site.stack) + "\n";
  }
  text += MoreText(report.live_sites, shown);
  text += fmt::format("TOTAL: {} live in {} from {}.\n", BytesText(bytes), Blocks(count),
                      StacksText(report.live_sites.size()));
  return text;
}

nlohmann::json TotalJson(const StackTotal& total, bool with_sizes) {
  nlohmann::json json = {{"bytes", total.bytes}, {"count", total.count}};
  if (with_sizes) json["sizes"] = total.sizes;
  json["stack"] = StackJson(total.stack);
  return json;
}

void AddList(const std::vector<StackTotal>& list, const char* key, bool with_sizes, int max_stacks,
             nlohmann::json* out) {
  size_t shown = Shown(list.size(), max_stacks);
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < shown; ++i) items.push_back(TotalJson(list[i], with_sizes));
  (*out)[key] = std::move(items);
  if (shown < list.size()) {
    int64_t bytes = 0, count = 0;
    for (size_t i = shown; i < list.size(); ++i) {
      bytes += list[i].bytes;
      count += list[i].count;
    }
    (*out)[std::string(key) + "_not_listed"] = {{"stacks", list.size() - shown}, {"bytes", bytes}, {"count", count}};
  }
}

std::string FoldedFrame(const Frame& frame) {
  std::string name = frame.function.compare(0, 2, kUnknownFunction) == 0 ? FrameModuleOffset(frame) : frame.function;
  // ';' separates frames and the last ' ' the weight: neither may appear inside one.
  std::replace(name.begin(), name.end(), ';', ':');
  return name;
}

}  // namespace

std::string Blocks(int64_t count) { return count == 1 ? "1 block" : GroupedCount(count) + " blocks"; }

std::string FrameText(const Frame& frame, size_t index) {
  std::string text = fmt::format("#{} {}", index, frame.function);
  if (frame.file.empty()) return text + " (" + FrameModuleOffset(frame) + ")";
  text += " " + frame.file;
  if (frame.line > 0) text += fmt::format(":{}", frame.line);
  if (!frame.module.empty()) text += " (" + frame.module + ")";
  return text;
}

const Frame* TopProgramFrame(const Stack& stack) {
  for (const Frame& frame : stack) {
    if (!InCRuntimeModule(frame)) return &frame;
  }
  return stack.empty() ? nullptr : &stack.front();
}

std::string RenderLeakText(const TraceReport& report, int top) {
  std::string text;
  if (!report.has_leaks) return "No leak data: the trace was not taken at exit.\n";
  size_t shown = Shown(report.leaks.size(), top);
  for (size_t i = 0; i < shown; ++i) {
    const StackTotal& leak = report.leaks[i];
    text += fmt::format("Leak of {} in {}{}\n", BytesText(leak.bytes), Blocks(leak.count), SizesText(leak.sizes));
    text += FramesText(leak.stack) + "\n";
  }
  text += MoreText(report.leaks, shown);
  const char* estimate = report.trace.mode == "sample" ? " (estimated from samples)" : "";
  if (report.leaks.empty()) {
    text += "No leaks: every block the program allocated was freed.\n";
  } else {
    text += fmt::format("SUMMARY: {} leaked in {} from {}{}.\n", BytesText(report.leaked_bytes),
                        Blocks(report.leaked_blocks), StacksText(report.leaks.size()), estimate);
  }
  std::vector<std::string> not_counted;
  if (!report.runtime_leaks.empty()) {
    int64_t bytes = 0, count = 0;
    for (const StackTotal& leak : report.runtime_leaks) {
      bytes += leak.bytes;
      count += leak.count;
    }
    not_counted.push_back(
        fmt::format("{} in {} the C runtime frees at exit (stdio, locale, NSS, loader tables)", BytesText(bytes),
                    Blocks(count)));
  }
  if (report.suppressed_count > 0 || report.suppressed_bytes > 0) {
    not_counted.push_back(
        fmt::format("{} in {} suppressed", BytesText(report.suppressed_bytes), Blocks(report.suppressed_count)));
  }
  if (!not_counted.empty()) text += "Not counted: " + absl::StrJoin(not_counted, "; ") + ".\n";
  if (!report.suppression_hits.empty()) {
    text += "\nSuppressions used:\n  count      bytes template\n";
    for (const SuppressionHit& hit : report.suppression_hits) {
      text += fmt::format("{:>7} {:>10} {}\n", hit.count, hit.bytes, SafeText(hit.pattern));
    }
  }
  return text;
}

std::string RenderPeakText(const TraceReport& report, int top) {
  std::string text = fmt::format("At the peak ({} traced):\n", HumanBytes(report.trace.peak_bytes));
  if (report.peak_sites.empty()) return text + "No stack held memory at the peak.\n";
  size_t shown = Shown(report.peak_sites.size(), top);
  for (size_t i = 0; i < shown; ++i) {
    const StackTotal& site = report.peak_sites[i];
    std::string share;
    if (report.trace.peak_bytes > 0) {
      double percent = 100.0 * static_cast<double>(site.bytes) / static_cast<double>(report.trace.peak_bytes);
      share = percent < 0.05 ? ", <0.1%" : fmt::format(", {:.1f}%", percent);
    }
    // No example sizes here: a site's sizes are those of its blocks live at the end, not at the peak.
    text += fmt::format("Held {} in {}{}\n", BytesText(site.bytes), Blocks(site.count), share);
    text += FramesText(site.stack) + "\n";
  }
  text += MoreText(report.peak_sites, shown);
  return text;
}

std::string RenderText(const TraceReport& report, const TextOptions& options) {
  std::string text = HeaderText(report) + "\n";
  if (report.trace.kind == TraceKind::kSnapshot) {
    text += LiveText(report, options.top);
  } else {
    text += RenderLeakText(report, options.top);
  }
  if (options.peak_sites) text += "\n" + RenderPeakText(report, options.top);
  // One trailing newline, whatever the last section ended with.
  while (text.size() >= 2 && text[text.size() - 1] == '\n' && text[text.size() - 2] == '\n') text.pop_back();
  return text;
}

nlohmann::json StackJson(const Stack& stack) {
  nlohmann::json frames = nlohmann::json::array();
  for (const Frame& frame : stack) {
    frames.push_back({{"function", frame.function},
                      {"file", frame.file},
                      {"line", frame.line},
                      {"module", frame.module},
                      {"address", fmt::format("0x{:x}", frame.address)}});
  }
  return frames;
}

nlohmann::json RenderJson(const TraceReport& report, int max_stacks) {
  const TraceInfo& trace = report.trace;
  nlohmann::json json = nlohmann::json::object();
  json["trace"] = {{"kind", TraceKindName(trace.kind)},
                   {"mode", trace.mode},
                   {"sample_mean_bytes", trace.sample_mean_bytes},
                   {"complete", trace.complete},
                   {"byte_unit", trace.byte_unit},
                   {"live_bytes", trace.live_bytes},
                   {"live_blocks", trace.live_blocks},
                   {"peak_bytes", trace.peak_bytes},
                   {"allocations", trace.allocations},
                   {"frees", trace.frees},
                   {"allocated_bytes", trace.allocated_bytes},
                   {"time_s", trace.time_s}};
  if (trace.kind == TraceKind::kSnapshot) {
    AddList(report.live_sites, "sites", true, max_stacks, &json);
  } else {
    AddList(report.leaks, "leaks", true, max_stacks, &json);
    AddList(report.runtime_leaks, "runtime_leaks", true, max_stacks, &json);
    nlohmann::json patterns = nlohmann::json::array();
    for (const SuppressionHit& hit : report.suppression_hits) {
      patterns.push_back({{"pattern", hit.pattern}, {"bytes", hit.bytes}, {"count", hit.count}});
    }
    json["suppressed"] = {
        {"bytes", report.suppressed_bytes}, {"count", report.suppressed_count}, {"patterns", patterns}};
    json["leaked_bytes"] = report.leaked_bytes;
    json["leaked_blocks"] = report.leaked_blocks;
  }
  AddList(report.peak_sites, "peak_sites", false, max_stacks, &json);
  return json;
}

absl::StatusOr<Weight> ParseWeight(absl::string_view text) {
  if (text.empty() || text == "default") return Weight::kDefault;
  if (text == "leaked") return Weight::kLeaked;
  if (text == "live") return Weight::kLive;
  if (text == "peak") return Weight::kPeak;
  if (text == "allocated") return Weight::kAllocated;
  return absl::InvalidArgumentError(
      absl::StrCat("--weight ", SafeText(std::string(text)), " is not one of leaked, live, peak, allocated"));
}

absl::Status WriteCollapsed(const TraceReport& report, Weight weight,
                            const std::function<void(std::string_view chunk)>& write) {
  if (weight == Weight::kDefault) weight = report.trace.kind == TraceKind::kSnapshot ? Weight::kLive : Weight::kLeaked;
  FoldedStacks folded;
  const uint32_t no_stack = folded.NameId("[no stack]");
  absl::flat_hash_map<const Frame*, uint32_t> name_of;  // a site's frames are shared (TraceReport::frame_names)
  std::vector<uint32_t> names;
  auto add = [&](const std::vector<const Frame*>& frames, int64_t bytes) {
    if (bytes <= 0) return;
    names.clear();
    for (auto frame = frames.rbegin(); frame != frames.rend(); ++frame) {
      auto [it, inserted] = name_of.try_emplace(*frame, 0);
      if (inserted) it->second = folded.NameId(FoldedFrame(**frame));
      names.push_back(it->second);
    }
    if (names.empty()) names.push_back(no_stack);
    folded.Add(names, bytes);
  };
  auto add_list = [&](const std::vector<StackTotal>& list) {
    for (const StackTotal& total : list) add(EntryFrames(report, total), total.bytes);
  };
  switch (weight) {
    case Weight::kLeaked:
      if (!report.has_leaks) return absl::FailedPreconditionError("--weight leaked needs a trace taken at exit");
      add_list(report.leaks);
      break;
    case Weight::kLive:
      if (report.has_sites) {
        for (const Site& site : report.sites) add(SiteFrames(report, site), site.live_bytes);
      } else if (report.trace.kind == TraceKind::kSnapshot) {
        add_list(report.live_sites);
      } else {
        return absl::FailedPreconditionError("--weight live needs the trace file (a report keeps only the leaks)");
      }
      break;
    case Weight::kPeak:
      add_list(report.peak_sites);
      break;
    case Weight::kAllocated:
      if (!report.has_sites) {
        return absl::FailedPreconditionError("--weight allocated needs the trace file (a report keeps no allocations)");
      }
      for (const Site& site : report.sites) add(SiteFrames(report, site), site.allocated_bytes);
      break;
    case Weight::kDefault:
      break;
  }
  folded.Write(write);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderCollapsed(const TraceReport& report, Weight weight) {
  std::string text;
  absl::Status status = WriteCollapsed(report, weight, [&text](std::string_view chunk) { text += chunk; });
  if (!status.ok()) return status;
  return text;
}

}  // namespace memtide
