// See budget_check.h. Runs in the CLI.
#include "budget_check.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "byte_format.h"
#include "fmt/format.h"
#include "report_render.h"

namespace memtide {
namespace {

using Json = nlohmann::json;

std::optional<int64_t> IntAt(const Json& json, const char* key, const char* member = nullptr) {
  if (!json.is_object()) return std::nullopt;
  auto found = json.find(key);
  if (found == json.end()) return std::nullopt;
  const Json* value = &*found;
  if (member != nullptr) {
    if (!value->is_object()) return std::nullopt;
    auto inner = value->find(member);
    if (inner == value->end()) return std::nullopt;
    value = &*inner;
  }
  if (!value->is_number_integer()) return std::nullopt;
  if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return value->get<int64_t>();
}

std::string StringAt(const Json& json, const char* key) {
  if (!json.is_object()) return "";
  auto found = json.find(key);
  return found != json.end() && found->is_string() ? SafeText(found->get<std::string>()) : "";
}

// The run report's counters, when memtide data reached it (a report of a run whose segment was never
// written has "status": "no_segment" and no heap).
std::optional<int64_t> Counters(const TraceReport& report) {
  if (StringAt(report.run_report, "status") == "no_segment") return std::nullopt;
  return IntAt(report.run_report, "heap", "peak_bytes");
}

// The program's malloc was not memtide's (disabled_features "heap_hooks"): its heap figures and its leak
// check describe memtide's view, not the program's heap.
bool HeapHooksBypassed(const TraceReport& report) {
  if (!report.run_report.is_object()) return false;
  auto features = report.run_report.find("disabled_features");
  if (features == report.run_report.end() || !features->is_array()) return false;
  return std::find(features->begin(), features->end(), Json("heap_hooks")) != features->end();
}
constexpr const char* kHeapHooksBypassed =
    "the program's malloc is not memtide's (its executable, or a library preloaded first, defines malloc; "
    "disabled_features: heap_hooks)";

std::optional<int64_t> HeapPeak(const TraceReport& report) {
  return HeapHooksBypassed(report) ? std::nullopt : Counters(report);
}

struct Gpu {
  int64_t index;
  int64_t peak_bytes;
  int64_t current_bytes;
};

std::vector<Gpu> Gpus(const TraceReport& report) {
  std::vector<Gpu> gpus;
  if (!report.run_report.is_object()) return gpus;
  auto found = report.run_report.find("gpu");
  if (found == report.run_report.end() || !found->is_array()) return gpus;
  for (const Json& device : *found) {
    std::optional<int64_t> index = IntAt(device, "index");
    std::optional<int64_t> peak = IntAt(device, "peak_bytes");
    if (!index || !peak) continue;
    gpus.push_back(Gpu{*index, *peak, IntAt(device, "current_bytes").value_or(0)});
  }
  return gpus;
}

// "12.0 MiB (12582912 bytes)", as `memtide run` has always said it.
std::string Exact(int64_t bytes) { return fmt::format("{} ({} bytes)", HumanBytes(bytes), bytes); }

std::string NoLeakCheckReason(const TraceReport& report) {
  std::string why = StringAt(report.run_report, "trace_error");
  if (!why.empty()) return why;
  if (report.has_trace && report.trace.kind == TraceKind::kSnapshot) return "a snapshot has no leak check";
  return "the report has no leak check (memtide run --leaks)";
}

std::string PercentText(double percent) { return fmt::format("{:+.1f}%", percent); }

// The growth from `old_value` to `new_value` in percent; "new" when there was nothing before.
std::string Growth(int64_t old_value, int64_t new_value) {
  if (old_value == new_value) return "0.0%";
  if (old_value == 0) return "new";
  return PercentText(100.0 * (static_cast<double>(new_value) - static_cast<double>(old_value)) /
                     static_cast<double>(old_value));
}

// The most a value may reach: old + old * percent / 100, rounded down (multiplied before dividing so that
// whole percentages of whole numbers are exact: 5% of 100000 allows 105000, not 104999.99…).
int64_t Limit(int64_t old_value, double percent) {
  long double limit = static_cast<long double>(old_value) +
                      static_cast<long double>(old_value) * static_cast<long double>(percent) / 100.0L;
  return static_cast<int64_t>(limit + 1e-6L);
}

bool Exceeds(int64_t old_value, int64_t new_value, double percent) { return new_value > Limit(old_value, percent); }

std::string PercentLimit(double percent) { return fmt::format("{:g}%", percent); }

// Inline code for a Markdown table cell: backticks cannot be escaped inside a span, so a longer fence is used
// when the text has some; `|` must be escaped even inside code in a GFM table.
std::string MarkdownCode(const std::string& text) {
  std::string escaped;
  for (char c : text) {
    if (c == '|') escaped += '\\';
    escaped += c;
  }
  bool has_backtick = escaped.find('`') != std::string::npos;
  return has_backtick ? "`` " + escaped + " ``" : "`" + escaped + "`";
}

std::string FrameMarkdown(const Frame* frame) {
  if (frame == nullptr) return "(no stack)";
  std::string where;
  if (!frame->file.empty()) {
    size_t slash = frame->file.rfind('/');
    where = frame->file.substr(slash == std::string::npos ? 0 : slash + 1);
    if (frame->line > 0) where += fmt::format(":{}", frame->line);
  } else {
    where = FrameModuleOffset(*frame);
  }
  return MarkdownCode(frame->function) + " " + MarkdownCode(where);
}

BudgetCheck Row(std::string name, std::string value, std::string limit) {
  BudgetCheck check;
  check.name = std::move(name);
  check.value = std::move(value);
  check.limit = std::move(limit);
  return check;
}

}  // namespace

bool BudgetResult::passed() const {
  return std::all_of(checks.begin(), checks.end(), [](const BudgetCheck& check) { return check.passed; });
}

std::vector<std::string> BudgetResult::Violations() const {
  std::vector<std::string> lines;
  for (const BudgetCheck& check : checks) {
    if (!check.passed) lines.push_back(check.violation);
  }
  return lines;
}

namespace {

// Why a heap or GPU budget has nothing to be checked against: a trace file holds no counters at all; a
// report has none when the program ended before memtide could publish them.
std::string NoCountersViolation(const TraceReport& report, const char* flag) {
  if (HeapHooksBypassed(report) && Counters(report)) return fmt::format("{} cannot be checked: {}", flag, kHeapHooksBypassed);
  if (!report.run_report.is_object()) {
    return fmt::format("{} cannot be checked on a trace file, which holds no heap or GPU counters (check the "
                       "report of `memtide run --report FILE`)", flag);
  }
  return fmt::format("{} cannot be checked without memtide data", flag);
}

}  // namespace

BudgetResult CheckBudgets(const TraceReport& report, const TraceReport* baseline, const Budgets& budgets) {
  BudgetResult result;
  std::optional<int64_t> heap_peak = HeapPeak(report);
  const bool has_counters = Counters(report).has_value();  // GPU figures stand without the heap hooks
  const bool has_leaks = report.has_leaks && !HeapHooksBypassed(report);
  if (budgets.max_peak_bytes) {
    BudgetCheck check =
        Row("heap peak (--max-peak)", heap_peak ? HumanBytes(*heap_peak) : "-", HumanBytes(*budgets.max_peak_bytes));
    if (!heap_peak) {
      check.passed = false;
      check.violation = NoCountersViolation(report, "--max-peak");
    } else if (*heap_peak > *budgets.max_peak_bytes) {
      check.passed = false;
      check.violation =
          fmt::format("heap peak {} exceeds --max-peak {}", Exact(*heap_peak), Exact(*budgets.max_peak_bytes));
    }
    result.checks.push_back(std::move(check));
  }
  if (budgets.max_gpu_peak_bytes) {
    const std::string limit = HumanBytes(*budgets.max_gpu_peak_bytes);
    std::vector<Gpu> gpus = Gpus(report);
    if (!has_counters) {
      BudgetCheck check = Row("GPU peak (--max-gpu-peak)", "-", limit);
      check.passed = false;
      check.violation = NoCountersViolation(report, "--max-gpu-peak");
      result.checks.push_back(std::move(check));
    } else if (gpus.empty()) {
      // A program that never allocated GPU memory has a GPU peak of zero.
      result.checks.push_back(Row("GPU peak (--max-gpu-peak)", HumanBytes(0), limit));
    }
    for (const Gpu& gpu : has_counters ? gpus : std::vector<Gpu>()) {
      BudgetCheck check = Row(fmt::format("GPU {} peak (--max-gpu-peak)", gpu.index), HumanBytes(gpu.peak_bytes), limit);
      if (gpu.peak_bytes > *budgets.max_gpu_peak_bytes) {
        check.passed = false;
        check.violation = fmt::format("GPU {} device-memory peak {} exceeds --max-gpu-peak {}", gpu.index,
                                      Exact(gpu.peak_bytes), Exact(*budgets.max_gpu_peak_bytes));
      }
      result.checks.push_back(std::move(check));
    }
  }
  if (budgets.max_leak_bytes) {
    BudgetCheck check = Row("leaked (--max-leak)", has_leaks ? HumanBytes(report.leaked_bytes) : "-",
                            HumanBytes(*budgets.max_leak_bytes));
    if (!has_leaks) {
      check.passed = false;
      check.violation = "--max-leak cannot be checked: " +
                        (HeapHooksBypassed(report) ? std::string(kHeapHooksBypassed) : NoLeakCheckReason(report));
    } else if (report.leaked_bytes > *budgets.max_leak_bytes) {
      check.passed = false;
      check.violation = fmt::format("leaked {} in {} exceeds --max-leak {}", Exact(report.leaked_bytes),
                                    Blocks(report.leaked_blocks), Exact(*budgets.max_leak_bytes));
    }
    result.checks.push_back(std::move(check));
  }
  if (baseline != nullptr) {
    const double percent = budgets.max_increase_percent.value_or(kDefaultMaxIncreasePercent);
    const std::string name = SafeText(baseline->path);
    std::optional<int64_t> old_peak = HeapPeak(*baseline);
    bool compared = false;
    if (old_peak && heap_peak) {
      compared = true;
      BudgetCheck check = Row("heap peak vs baseline (--max-increase)", HumanBytes(*heap_peak),
                              fmt::format("{} + {}", HumanBytes(*old_peak), PercentLimit(percent)));
      if (Exceeds(*old_peak, *heap_peak, percent)) {
        check.passed = false;
        check.violation = fmt::format("heap peak {} exceeds the baseline's {} + {} = {} bytes ({}; {})",
                                      Exact(*heap_peak), Exact(*old_peak), PercentLimit(percent),
                                      Limit(*old_peak, percent), Growth(*old_peak, *heap_peak), name);
      }
      result.checks.push_back(std::move(check));
    }
    if (baseline->has_leaks && !HeapHooksBypassed(*baseline) && has_leaks) {
      compared = true;
      BudgetCheck check = Row("leaked vs baseline (--max-increase)", HumanBytes(report.leaked_bytes),
                              fmt::format("{} + {}", HumanBytes(baseline->leaked_bytes), PercentLimit(percent)));
      if (Exceeds(baseline->leaked_bytes, report.leaked_bytes, percent)) {
        check.passed = false;
        check.violation =
            fmt::format("leaked {} exceeds the baseline's {} + {} = {} bytes ({}; {})", Exact(report.leaked_bytes),
                        Exact(baseline->leaked_bytes), PercentLimit(percent), Limit(baseline->leaked_bytes, percent),
                        Growth(baseline->leaked_bytes, report.leaked_bytes), name);
      }
      result.checks.push_back(std::move(check));
    }
    if (!compared) {
      BudgetCheck check = Row("baseline (--baseline)", "-", name);
      check.passed = false;
      check.violation =
          fmt::format("--baseline {} cannot be compared: {}", name,
                      HeapHooksBypassed(report) ? std::string(kHeapHooksBypassed)
                      : !heap_peak && !has_leaks ? std::string("this run has neither memtide data nor a leak check")
                                                 : std::string("the two have neither a heap peak nor a leak check in common"));
      result.checks.push_back(std::move(check));
    }
  }
  return result;
}

std::string SummaryMarkdown(const TraceReport& report, const TraceReport* baseline, const Budgets& budgets,
                            const BudgetResult& result, int top_leaks) {
  const Json& run = report.run_report;
  std::string command;
  if (run.is_object() && run.contains("command") && run["command"].is_array()) {
    std::vector<std::string> arguments;
    for (const Json& argument : run["command"]) {
      if (argument.is_string()) arguments.push_back(SafeText(argument.get<std::string>()));
    }
    command = absl::StrJoin(arguments, " ");
  } else {
    std::vector<std::string> arguments;
    for (const std::string& argument : report.trace.command) arguments.push_back(SafeText(argument));
    command = arguments.empty() ? SafeText(report.path) : absl::StrJoin(arguments, " ");
  }
  std::vector<std::string> violations = result.Violations();
  std::string text = fmt::format("### memtide: {} — {}\n\n", MarkdownCode(command),
                                 result.passed() ? "✅ passed"
                                                 : fmt::format("❌ failed ({} budget{} exceeded)", violations.size(),
                                                               violations.size() == 1 ? "" : "s"));
  if (std::optional<int64_t> exit_code = IntAt(run, "exit_code")) {
    std::optional<int64_t> signal = IntAt(run, "signal");
    std::string end =
        signal ? fmt::format("was killed by signal {}", *signal) : fmt::format("exited with {}", *exit_code);
    if (Json::const_iterator d = run.find("duration_s"); d != run.end() && d->is_number()) {
      end += fmt::format(" after {:.2f} s", d->get<double>());
    }
    text += fmt::format("The program {}.\n\n", end);
  }

  std::optional<int64_t> heap_peak = HeapPeak(report);
  std::vector<std::string> rows;
  if (heap_peak) {
    rows.push_back(fmt::format("| heap | {} | {} |", HumanBytes(*heap_peak),
                               HumanBytes(IntAt(run, "heap", "current_bytes").value_or(0))));
  }
  for (const Gpu& gpu : Gpus(report)) {
    rows.push_back(
        fmt::format("| GPU {} | {} | {} |", gpu.index, HumanBytes(gpu.peak_bytes), HumanBytes(gpu.current_bytes)));
  }
  if (std::optional<int64_t> rss = IntAt(run, "rss", "peak_bytes")) {
    std::optional<int64_t> final_rss = IntAt(run, "rss", "final_bytes");
    rows.push_back(fmt::format("| RSS | {} | {} |", HumanBytes(*rss), final_rss ? HumanBytes(*final_rss) : ""));
  }
  if (report.has_trace) {
    rows.push_back(fmt::format("| traced heap ({}) | {} | {} |", SafeText(report.trace.byte_unit),
                               HumanBytes(report.trace.peak_bytes), HumanBytes(report.trace.live_bytes)));
  }
  if (!rows.empty()) text += "| memory | peak | at exit |\n|---|--:|--:|\n" + absl::StrJoin(rows, "\n") + "\n\n";
  if (!heap_peak && run.is_object()) {
    std::string why = StringAt(run, "error");
    text += fmt::format("No memtide data{}.\n\n", why.empty() ? "" : ": " + why);
  }

  if (!result.checks.empty()) {
    text += "#### Budgets\n\n| budget | value | limit | result |\n|---|--:|--:|---|\n";
    for (const BudgetCheck& check : result.checks) {
      text += fmt::format("| {} | {} | {} | {} |\n", check.name, check.value, check.limit,
                          check.passed ? "✅ pass" : "❌ fail");
    }
    text += "\n";
    if (!violations.empty()) {
      text += "```\n";
      for (const std::string& line : violations) text += "memtide: " + line + "\n";
      text += "```\n\n";
    }
  }

  if (report.has_leaks) {
    text += fmt::format("#### Leaks: {} in {} from {} stack{}\n\n", HumanBytes(report.leaked_bytes),
                        Blocks(report.leaked_blocks), report.leaks.size(), report.leaks.size() == 1 ? "" : "s");
    if (!report.leaks.empty()) {
      text += "| bytes | blocks | allocated at |\n|--:|--:|---|\n";
      size_t shown = top_leaks <= 0 ? report.leaks.size() : std::min<size_t>(report.leaks.size(), top_leaks);
      for (size_t i = 0; i < shown; ++i) {
        const StackTotal& leak = report.leaks[i];
        text += fmt::format("| {} | {} | {} |\n", GroupedCount(leak.bytes), GroupedCount(leak.count),
                            FrameMarkdown(TopProgramFrame(leak.stack)));
      }
      if (shown < report.leaks.size()) text += fmt::format("\n…and {} more stacks.\n", report.leaks.size() - shown);
      text += "\n";
    }
    int64_t runtime_bytes = 0;
    for (const StackTotal& leak : report.runtime_leaks) runtime_bytes += leak.bytes;
    if (runtime_bytes > 0 || report.suppressed_bytes > 0) {
      text += fmt::format("Not counted: {} of the C runtime, {} suppressed.\n\n", HumanBytes(runtime_bytes),
                          HumanBytes(report.suppressed_bytes));
    }
  } else if (budgets.max_leak_bytes) {
    text += fmt::format("#### Leaks\n\nNo leak check: {}.\n\n", NoLeakCheckReason(report));
  }

  if (baseline != nullptr) {
    const double percent = budgets.max_increase_percent.value_or(kDefaultMaxIncreasePercent);
    text += fmt::format("#### Compared with the baseline {} (allowed {})\n\n", MarkdownCode(SafeText(baseline->path)),
                        PercentText(percent));
    text += "| | baseline | this run | change |\n|---|--:|--:|--:|\n";
    std::optional<int64_t> old_peak = HeapPeak(*baseline);
    auto cell = [](const std::optional<int64_t>& value) { return value ? HumanBytes(*value) : std::string("-"); };
    text += fmt::format("| heap peak | {} | {} | {} |\n", cell(old_peak), cell(heap_peak),
                        old_peak && heap_peak ? Growth(*old_peak, *heap_peak) : "-");
    std::optional<int64_t> old_leaked, new_leaked;
    if (baseline->has_leaks) old_leaked = baseline->leaked_bytes;
    if (report.has_leaks) new_leaked = report.leaked_bytes;
    text += fmt::format("| leaked | {} | {} | {} |\n", cell(old_leaked), cell(new_leaked),
                        old_leaked && new_leaked ? Growth(*old_leaked, *new_leaked) : "-");
    text += "\n";
  }
  return text;
}

}  // namespace memtide
