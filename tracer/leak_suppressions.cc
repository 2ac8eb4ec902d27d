// See leak_suppressions.h. Runs in the CLI, or in a traced program at exit.
#include "leak_suppressions.h"

#include <errno.h>
#include <string.h>

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace memtide {
namespace {

constexpr size_t kMaxSuppressionsFileBytes = 1 << 20;

absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

bool InLibcOrLoader(const Frame& frame) {
  absl::string_view name = Basename(frame.module_path.empty() ? frame.module : frame.module_path);
  for (absl::string_view prefix : {"libc.so", "libc-", "ld-linux", "ld.so", "ld64.so"}) {
    if (absl::StartsWith(name, prefix)) return true;
  }
  return false;
}

// Rule 1 of IsCRuntimeBlock: functions of libc and the loader whose blocks libc's freeres releases at exit.
constexpr absl::string_view kFreedAtExit[] = {
    "_IO_file_doallocate",              // stdio buffers
    "_IO_wfile_doallocate",             // wide stdio buffers
    "_dl_find_object_update",           // the loader's object table for _dl_find_object (the unwinder)
    "_dlfo_mappings_segment_allocate",  //   (its segments)
    "_dl_map_object_deps",              // the init/fini order lists of loaded objects
};
// ...and a thread's TLS (IsThreadTablesBlockFrames).
constexpr absl::string_view kThreadTables[] = {"_dl_allocate_tls", "allocate_dtv"};

// The function without a " [module changed]" mark.
absl::string_view FunctionName(const Frame& frame) {
  absl::string_view name = frame.function;
  absl::ConsumeSuffix(&name, kModuleChangedSuffix);
  return name;
}

// A function of `names` among the innermost frames while they stay in libc or the loader.
template <size_t N>
bool AllocatedByRuntimeFunction(absl::Span<const Frame* const> frames, const absl::string_view (&names)[N]) {
  for (const Frame* frame : frames) {
    if (!InLibcOrLoader(*frame)) return false;
    absl::string_view function = FunctionName(*frame);
    for (absl::string_view name : names) {
      if (function == name) return true;
    }
  }
  return false;
}

}  // namespace

bool SuppressionPatternMatches(absl::string_view pattern, absl::string_view text) {
  if (text.empty()) return false;
  bool anchored = false;
  if (!pattern.empty() && pattern[0] == '^') {
    anchored = true;
    pattern.remove_prefix(1);
  }
  bool asterisk = false;
  while (!pattern.empty()) {
    if (pattern[0] == '*') {
      pattern.remove_prefix(1);
      anchored = false;
      asterisk = true;
      continue;
    }
    if (pattern[0] == '$') return text.empty() || asterisk;
    if (text.empty()) return false;
    size_t end = pattern.find_first_of("*$");
    absl::string_view piece = pattern.substr(0, end);
    // The last piece before a final `$` must end the text: LSan takes the first occurrence here and so misses
    // "abc$" in "abcabc"; looking at the end instead matches everything LSan matches, and that too.
    if (end != absl::string_view::npos && pattern[end] == '$' && end + 1 == pattern.size()) {
      if (anchored) return text == piece;
      return absl::EndsWith(text, piece);
    }
    size_t found = text.find(piece);
    if (found == absl::string_view::npos) return false;
    if (anchored && found != 0) return false;
    text.remove_prefix(found + piece.size());
    pattern = end == absl::string_view::npos ? absl::string_view() : pattern.substr(end);
    anchored = false;
    asterisk = false;
  }
  return true;
}

absl::StatusOr<LeakSuppressions> LeakSuppressions::Parse(absl::string_view text, const std::string& origin) {
  LeakSuppressions suppressions;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    absl::string_view type = colon == absl::string_view::npos ? line : line.substr(0, colon);
    if (colon == absl::string_view::npos || type != "leak") {
      return absl::InvalidArgumentError(absl::StrCat(
          SafeText(origin), ":", line_number, ": '", SafeText(std::string(line.substr(0, 80))),
          "' is not a suppression; the format is leak:PATTERN (LeakSanitizer's), # comments and blank lines"));
    }
    absl::string_view pattern = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (pattern.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(SafeText(origin), ":", line_number, ": leak: without a pattern"));
    }
    suppressions.patterns_.emplace_back(pattern);
  }
  return suppressions;
}

absl::StatusOr<LeakSuppressions> LeakSuppressions::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the suppressions file ", SafeText(path), ": ", strerror(errno)));
  }
  std::string text;
  char buffer[8192];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxSuppressionsFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat("the suppressions file ", SafeText(path), " is larger than ",
                                                     kMaxSuppressionsFileBytes >> 20, " MiB"));
    }
  }
  return Parse(text, path);
}

int LeakSuppressions::Match(const Stack& stack) const { return MatchFrames(FramesOf(stack)); }

int LeakSuppressions::MatchFrames(absl::Span<const Frame* const> frames) const {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const std::string& pattern = patterns_[i];
    for (const Frame* frame_pointer : frames) {
      const Frame& frame = *frame_pointer;
      if (SuppressionPatternMatches(pattern, FunctionName(frame)) || SuppressionPatternMatches(pattern, frame.file) ||
          SuppressionPatternMatches(pattern, frame.module_path) || SuppressionPatternMatches(pattern, frame.module)) {
        return static_cast<int>(i);
      }
    }
  }
  return -1;
}

bool InCRuntimeModule(const Frame& frame) {
  absl::string_view name = Basename(frame.module_path.empty() ? frame.module : frame.module_path);
  for (absl::string_view prefix :
       {"libc.so", "libc-", "ld-linux", "ld.so", "ld64.so", "libstdc++.so", "libgcc_s.so", "libmemtide"}) {
    if (absl::StartsWith(name, prefix)) return true;
  }
  return false;
}

bool IsCRuntimeBlock(const Stack& stack) { return IsCRuntimeBlockFrames(FramesOf(stack)); }

bool IsThreadTablesBlockFrames(absl::Span<const Frame* const> frames) {
  return AllocatedByRuntimeFunction(frames, kThreadTables);
}

bool IsCRuntimeBlockFrames(absl::Span<const Frame* const> frames) {
  if (frames.empty()) return false;
  // 1. what freeres releases: the innermost frames while they stay in libc or the loader.
  if (AllocatedByRuntimeFunction(frames, kFreedAtExit) || IsThreadTablesBlockFrames(frames)) return true;
  // 2. nothing but the runtime on the whole stack.
  for (const Frame* frame : frames) {
    if (!InCRuntimeModule(*frame)) return false;
  }
  return true;
}

void ClassifyLeaks(const LeakSuppressions& suppressions, TraceReport* report, size_t named_entries) {
  if (report->trace.kind != TraceKind::kExit) return;
  std::vector<SuppressionHit> hits(suppressions.patterns().size());
  for (size_t i = 0; i < hits.size(); ++i) hits[i].pattern = suppressions.patterns()[i];
  auto suppress = [&](int index, int64_t bytes, int64_t count) {
    hits[static_cast<size_t>(index)].bytes += bytes;
    hits[static_cast<size_t>(index)].count += count;
    report->suppressed_bytes += bytes;
    report->suppressed_count += count;
  };

  if (report->has_sites) {
    std::vector<const Site*> leaks, runtime;
    report->suppressed_bytes = report->suppressed_count = 0;
    for (Site& site : report->sites) {
      site.leaked_bytes = site.leaked_blocks = 0;
      if (site.live_blocks == 0 && site.live_bytes == 0) continue;
      const std::vector<const Frame*> frames = SiteFrames(*report, site);
      // The probe saw what the runtime's cleanup frees, which leaves out a thread still running at exit: its
      // TLS is still not the program's. Without the probe, a site is the runtime's by its stack.
      const bool all_runtime =
          report->exit_cleanup_probed
              ? (site.runtime_bytes != site.live_bytes || site.runtime_blocks != site.live_blocks) &&
                    IsThreadTablesBlockFrames(frames)
              : IsCRuntimeBlockFrames(frames);
      if (all_runtime) {
        site.runtime_bytes = site.live_bytes;
        site.runtime_blocks = site.live_blocks;
      } else if (!report->exit_cleanup_probed) {
        site.runtime_bytes = site.runtime_blocks = 0;
      }
      const int64_t rest_bytes = site.live_bytes - site.runtime_bytes;
      const int64_t rest_blocks = site.live_blocks - site.runtime_blocks;
      if (site.runtime_bytes != 0 || site.runtime_blocks != 0) runtime.push_back(&site);
      if (rest_bytes == 0 && rest_blocks == 0) continue;
      if (int index = suppressions.MatchFrames(frames); index >= 0) {
        suppress(index, rest_bytes, rest_blocks);
      } else {
        site.leaked_bytes = rest_bytes;
        site.leaked_blocks = rest_blocks;
        leaks.push_back(&site);
      }
    }
    report->leaks = GroupSites(leaks, &Site::leaked_bytes, &Site::leaked_blocks, report, named_entries);
    report->runtime_leaks = GroupSites(runtime, &Site::runtime_bytes, &Site::runtime_blocks, report, named_entries);
    report->leaked_bytes = report->leaked_blocks = 0;
    for (const StackTotal& leak : report->leaks) {
      report->leaked_bytes += leak.bytes;
      report->leaked_blocks += leak.count;
    }
  } else if (report->has_leaks && !suppressions.empty()) {
    // A report: its lists were classified when it was written; new suppressions take more out.
    std::vector<StackTotal> kept;
    for (StackTotal& leak : report->leaks) {
      if (int index = suppressions.Match(leak.stack); index >= 0) {
        suppress(index, leak.bytes, leak.count);
        report->leaked_bytes = std::max<int64_t>(0, report->leaked_bytes - leak.bytes);
        report->leaked_blocks = std::max<int64_t>(0, report->leaked_blocks - leak.count);
      } else {
        kept.push_back(std::move(leak));
      }
    }
    report->leaks = std::move(kept);
  } else {
    return;
  }
  report->has_leaks = true;
  report->suppression_hits.clear();
  for (SuppressionHit& hit : hits) {
    if (hit.count > 0 || hit.bytes > 0) report->suppression_hits.push_back(std::move(hit));
  }
}

}  // namespace memtide
