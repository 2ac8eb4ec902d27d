// See trace_report.h. Runs in the CLI, or in a traced program at exit.
//
// Everything in a file is untrusted: a trace sits in a temporary folder and a report is whatever a CI job
// archived. Every member is type-checked, every count and index bounded, before it is used; the first
// problem is the error, named by its JSON path ("stacks[3].frames[2]").
#include "trace_report.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "trace_file.h"

namespace memtide {
namespace {

using Json = nlohmann::json;

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxSizesPerSite = 64;

// Reads one document's fields, naming the file and the JSON path of the first problem.
class Reader {
 public:
  explicit Reader(const std::string& origin) : origin_(origin) {}

  absl::Status Error(const std::string& where, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(SafeText(origin_), ": ", where.empty() ? "" : where + ": ", what));
  }

  // The member `key` of `object` at `where`: null when absent and not required.
  absl::StatusOr<const Json*> Member(const Json& object, const char* key, const std::string& where,
                                     bool required) const {
    if (!object.is_object()) return Error(where, absl::StrCat("is ", Describe(object), ", not an object"));
    auto found = object.find(key);
    if (found == object.end() || (found->is_null() && !required)) {
      if (required) return Error(where, absl::StrCat("\"", key, "\" is missing"));
      return nullptr;
    }
    return &*found;
  }

  absl::StatusOr<int64_t> Int(const Json& value, const std::string& where, int64_t minimum, int64_t maximum) const {
    int64_t result;
    if (value.is_number_unsigned()) {
      uint64_t unsigned_value = value.get<uint64_t>();
      if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error(where, absl::StrCat(unsigned_value, " is out of range"));
      }
      result = static_cast<int64_t>(unsigned_value);
    } else if (value.is_number_integer()) {
      result = value.get<int64_t>();
    } else {
      return Error(where, absl::StrCat("is ", Describe(value), ", not an integer"));
    }
    if (result < minimum || result > maximum) {
      return Error(where, result < 0 && minimum >= 0 ? absl::StrCat(result, " is negative")
                                                     : absl::StrCat(result, " is out of range"));
    }
    return result;
  }

  // Int for the elements of big lists: `where()` builds the path only when the value is refused (building it
  // for every element was a tenth of reading a large trace).
  template <typename Where>
  absl::StatusOr<int64_t> IntAt(const Json& value, const Where& where, int64_t minimum, int64_t maximum) const {
    if (value.is_number_unsigned()) {
      const uint64_t unsigned_value = value.get<uint64_t>();
      if (unsigned_value <= static_cast<uint64_t>(maximum) && maximum >= 0 &&
          static_cast<int64_t>(unsigned_value) >= minimum) {
        return static_cast<int64_t>(unsigned_value);
      }
    } else if (value.is_number_integer()) {
      const int64_t signed_value = value.get<int64_t>();
      if (signed_value >= minimum && signed_value <= maximum) return signed_value;
    }
    return Int(value, where(), minimum, maximum);
  }

  absl::StatusOr<uint64_t> Unsigned(const Json& value, const std::string& where) const {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer()) return Error(where, absl::StrCat(value.get<int64_t>(), " is negative"));
    return Error(where, absl::StrCat("is ", Describe(value), ", not an integer"));
  }

  // An optional non-negative integer member (0 when absent).
  absl::Status Count(const Json& object, const char* key, const std::string& where, int64_t* out) const {
    absl::StatusOr<const Json*> member = Member(object, key, where, false);
    if (!member.ok()) return member.status();
    if (*member == nullptr) return absl::OkStatus();
    absl::StatusOr<int64_t> value = Int(**member, Path(where, key), 0, std::numeric_limits<int64_t>::max());
    if (!value.ok()) return value.status();
    *out = *value;
    return absl::OkStatus();
  }

  absl::Status String(const Json& object, const char* key, const std::string& where, bool required,
                      std::string* out) const {
    absl::StatusOr<const Json*> member = Member(object, key, where, required);
    if (!member.ok()) return member.status();
    if (*member == nullptr) return absl::OkStatus();
    if (!(*member)->is_string()) {
      return Error(Path(where, key), absl::StrCat("is ", Describe(**member), ", not a string"));
    }
    *out = (*member)->get<std::string>();
    return absl::OkStatus();
  }

  absl::Status Bool(const Json& object, const char* key, const std::string& where, bool* out) const {
    absl::StatusOr<const Json*> member = Member(object, key, where, false);
    if (!member.ok()) return member.status();
    if (*member == nullptr) return absl::OkStatus();
    if (!(*member)->is_boolean()) {
      return Error(Path(where, key), absl::StrCat("is ", Describe(**member), ", not true or false"));
    }
    *out = (*member)->get<bool>();
    return absl::OkStatus();
  }

  absl::StatusOr<const Json*> Array(const Json& object, const char* key, const std::string& where,
                                    bool required) const {
    absl::StatusOr<const Json*> member = Member(object, key, where, required);
    if (!member.ok() || *member == nullptr) return member;
    if (!(*member)->is_array()) return Error(Path(where, key), absl::StrCat("is ", Describe(**member), ", not a list"));
    return member;
  }

  static std::string Path(const std::string& where, const char* key) {
    return where.empty() ? std::string(key) : absl::StrCat(where, ".", key);
  }
  static std::string Index(const std::string& where, size_t index) { return absl::StrCat(where, "[", index, "]"); }

  static std::string Describe(const Json& value) {
    if (value.is_number_float()) return absl::StrCat("the number ", value.dump());
    if (value.is_object()) return "an object";
    if (value.is_array()) return "a list";
    if (value.is_null()) return "null";
    return std::string("a ") + value.type_name();
  }

 private:
  std::string origin_;
};

// Brackets nested deeper than any memtide document: refused before parsing, so no recursion downstream
// (nlohmann's dump, our readers) meets a hostile depth.
bool TooDeep(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

absl::Status ParseTraceInfo(const Reader& reader, const Json& json, const std::string& where, bool raw,
                            TraceInfo* info) {
  std::string kind = raw ? "" : "exit";
  if (absl::Status s = reader.String(json, "kind", where, raw, &kind); !s.ok()) return s;
  if (kind == "exit") {
    info->kind = TraceKind::kExit;
  } else if (kind == "snapshot") {
    info->kind = TraceKind::kSnapshot;
  } else {
    return reader.Error(Reader::Path(where, "kind"), absl::StrCat("\"", SafeText(kind), "\" is not exit or snapshot"));
  }
  if (absl::Status s = reader.String(json, "mode", where, raw, &info->mode); !s.ok()) return s;
  if (info->mode != "full" && info->mode != "sample") {
    return reader.Error(Reader::Path(where, "mode"),
                        absl::StrCat("\"", SafeText(info->mode), "\" is not full or sample"));
  }
  if (absl::Status s = reader.Count(json, "sample_mean_bytes", where, &info->sample_mean_bytes); !s.ok()) return s;
  if (absl::Status s = reader.String(json, "byte_unit", where, false, &info->byte_unit); !s.ok()) return s;
  if (absl::Status s = reader.Bool(json, "complete", where, &info->complete); !s.ok()) return s;
  if (absl::Status s = reader.Count(json, "pid", where, &info->pid); !s.ok()) return s;
  absl::StatusOr<const Json*> command = reader.Array(json, "command", where, false);
  if (!command.ok()) return command.status();
  if (*command != nullptr) {
    for (size_t i = 0; i < (*command)->size(); ++i) {
      const Json& argument = (**command)[i];
      if (!argument.is_string()) {
        return reader.Error(Reader::Index(Reader::Path(where, "command"), i),
                            absl::StrCat("is ", Reader::Describe(argument), ", not a string"));
      }
      info->command.push_back(argument.get<std::string>());
    }
  }
  absl::StatusOr<const Json*> time = reader.Member(json, "time_s", where, false);
  if (!time.ok()) return time.status();
  if (*time != nullptr) {
    if (!(*time)->is_number() || (*time)->get<double>() < 0) {
      return reader.Error(Reader::Path(where, "time_s"), "is not a number of seconds");
    }
    info->time_s = (*time)->get<double>();
  }
  absl::StatusOr<const Json*> exit_code = reader.Member(json, "exit_code", where, false);
  if (!exit_code.ok()) return exit_code.status();
  if (*exit_code != nullptr) {
    absl::StatusOr<int64_t> code = reader.Int(**exit_code, Reader::Path(where, "exit_code"), -1, 255);
    if (!code.ok()) return code.status();
    info->exit_code = *code;
  }
  // Raw traces keep the totals in their own object; reports flatten them into "trace".
  const Json* totals = &json;
  std::string totals_where = where;
  if (raw) {
    absl::StatusOr<const Json*> member = reader.Member(json, "totals", where, true);
    if (!member.ok()) return member.status();
    totals = *member;
    totals_where = Reader::Path(where, "totals");
    if (!totals->is_object()) return reader.Error(totals_where, "is not an object");
  }
  struct Field {
    const char* key;
    int64_t* value;
  };
  for (const Field& field : {Field{"live_bytes", &info->live_bytes}, Field{"live_blocks", &info->live_blocks},
                             Field{"peak_bytes", &info->peak_bytes}, Field{"allocations", &info->allocations},
                             Field{"frees", &info->frees}, Field{"allocated_bytes", &info->allocated_bytes}}) {
    if (absl::Status s = reader.Count(*totals, field.key, totals_where, field.value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

struct RawModule {
  std::string path;
  std::string build_id;
};

absl::StatusOr<Frame> ParseFrame(const Reader& reader, const Json& json, const std::string& where) {
  Frame frame;
  if (!json.is_object()) return reader.Error(where, absl::StrCat("is ", Reader::Describe(json), ", not a frame"));
  if (absl::Status s = reader.String(json, "function", where, true, &frame.function); !s.ok()) return s;
  if (absl::Status s = reader.String(json, "file", where, false, &frame.file); !s.ok()) return s;
  if (absl::Status s = reader.String(json, "module", where, false, &frame.module); !s.ok()) return s;
  frame.module_path = frame.module;
  int64_t line = 0;
  if (absl::Status s = reader.Count(json, "line", where, &line); !s.ok()) return s;
  if (line > std::numeric_limits<int>::max()) return reader.Error(Reader::Path(where, "line"), "is out of range");
  frame.line = static_cast<int>(line);
  absl::StatusOr<const Json*> address = reader.Member(json, "address", where, false);
  if (!address.ok()) return address.status();
  if (*address != nullptr) {
    if ((*address)->is_string()) {
      // "0x1234", as the renderers write it.
      std::string text = (*address)->get<std::string>();
      char* end = nullptr;
      errno = 0;
      unsigned long long value = text.size() > 2 ? strtoull(text.c_str(), &end, 16) : 0;
      if (text.size() <= 2 || text.compare(0, 2, "0x") != 0 || errno != 0 || end == nullptr || *end != '\0') {
        return reader.Error(Reader::Path(where, "address"),
                            absl::StrCat("\"", SafeText(text), "\" is not a hexadecimal address"));
      }
      frame.address = value;
    } else {
      absl::StatusOr<uint64_t> value = reader.Unsigned(**address, Reader::Path(where, "address"));
      if (!value.ok()) return value.status();
      frame.address = *value;
    }
  }
  return frame;
}

// An entry's optional "sizes": at most kMaxSizesPerSite non-negative integers.
absl::Status ReadSizes(const Reader& reader, const Json& item, const std::string& where, std::vector<int64_t>* out) {
  absl::StatusOr<const Json*> sizes = reader.Array(item, "sizes", where, false);
  if (!sizes.ok()) return sizes.status();
  if (*sizes == nullptr) return absl::OkStatus();
  if ((*sizes)->size() > kMaxSizesPerSite) return reader.Error(Reader::Path(where, "sizes"), "has too many sizes");
  for (size_t j = 0; j < (*sizes)->size(); ++j) {
    absl::StatusOr<int64_t> size = reader.Int((**sizes)[j], Reader::Index(Reader::Path(where, "sizes"), j), 0,
                                              std::numeric_limits<int64_t>::max());
    if (!size.ok()) return size.status();
    out->push_back(*size);
  }
  return absl::OkStatus();
}

absl::Status ParseStackTotals(const Reader& reader, const Json& report, const char* key, std::vector<StackTotal>* out) {
  absl::StatusOr<const Json*> list = reader.Array(report, key, "", false);
  if (!list.ok()) return list.status();
  if (*list == nullptr) return absl::OkStatus();
  for (size_t i = 0; i < (*list)->size(); ++i) {
    const Json& item = (**list)[i];
    std::string where = Reader::Index(key, i);
    StackTotal total;
    if (absl::Status s = reader.Count(item, "bytes", where, &total.bytes); !s.ok()) return s;
    if (absl::Status s = reader.Count(item, "count", where, &total.count); !s.ok()) return s;
    if (absl::Status s = ReadSizes(reader, item, where, &total.sizes); !s.ok()) return s;
    absl::StatusOr<const Json*> frames = reader.Array(item, "stack", where, true);
    if (!frames.ok()) return frames.status();
    if ((*frames)->size() > kMaxFramesPerStack * 4) return reader.Error(Reader::Path(where, "stack"), "is too deep");
    for (size_t j = 0; j < (*frames)->size(); ++j) {
      absl::StatusOr<Frame> frame = ParseFrame(reader, (**frames)[j], Reader::Index(Reader::Path(where, "stack"), j));
      if (!frame.ok()) return frame.status();
      total.stack.push_back(std::move(*frame));
    }
    out->push_back(std::move(total));
  }
  return absl::OkStatus();
}

void AddSizes(const std::vector<int64_t>& sizes, std::vector<int64_t>* into) {
  for (int64_t size : sizes) {
    if (std::find(into->begin(), into->end(), size) == into->end()) into->push_back(size);
  }
}

void SortTotals(std::vector<StackTotal>* totals) {
  // Bytes, then blocks, descending; equal ones in stack-key order so output never depends on file order.
  std::vector<std::string> key_of(totals->size());
  for (size_t i = 0; i < totals->size(); ++i) key_of[i] = StackKey((*totals)[i].stack);
  std::vector<size_t> order(totals->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const StackTotal& x = (*totals)[a];
    const StackTotal& y = (*totals)[b];
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    if (x.count != y.count) return x.count > y.count;
    return key_of[a] < key_of[b];
  });
  std::vector<StackTotal> sorted;
  sorted.reserve(totals->size());
  for (size_t i : order) sorted.push_back(std::move((*totals)[i]));
  *totals = std::move(sorted);
}

void FinishSizes(StackTotal* total) {
  std::sort(total->sizes.begin(), total->sizes.end());
  if (total->sizes.size() > kMaxSizesShown) total->sizes.resize(kMaxSizesShown);
}

}  // namespace

const char* TraceKindName(TraceKind kind) { return kind == TraceKind::kSnapshot ? "snapshot" : "exit"; }

std::string SafeText(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = bytes[i];
    if (c < 0x80) {
      out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
      ++i;
      continue;
    }
    size_t length = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    bool valid = length > 0 && i + length <= n;
    uint32_t code_point = length == 2 ? c & 0x1f : length == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (bytes[i + k] & 0xc0) == 0x80;
      code_point = (code_point << 6) | (bytes[i + k] & 0x3f);
    }
    // Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls.
    if (valid &&
        ((length == 3 && (code_point < 0x800 || (code_point >= 0xd800 && code_point <= 0xdfff))) ||
         (length == 4 && (code_point < 0x10000 || code_point > 0x10ffff)) || (length == 2 && code_point < 0xa0))) {
      valid = false;
    }
    if (!valid) {
      out += '?';
      ++i;
      continue;
    }
    out.append(text, i, length);
    i += length;
  }
  return out;
}

namespace {

// One frame's part of StackKey. Its characters are all above '\x1e' (SafeText leaves no control character), so
// comparing stacks frame key by frame key orders them as comparing their StackKeys does.
void AppendFrameKey(const Frame& frame, std::string* key) {
  if (frame.function.compare(0, 2, kUnknownFunction) == 0) {
    *key += FrameModuleOffset(frame);
  } else {
    absl::StrAppend(key, frame.function, "\x1f", frame.file, ":", frame.line, "\x1f", frame.module);
  }
}

}  // namespace

std::string StackKey(const Stack& stack) {
  std::string key;
  for (const Frame& frame : stack) {
    AppendFrameKey(frame, &key);
    key += '\x1e';
  }
  return key;
}

std::vector<StackTotal> MergeStackTotals(std::vector<StackTotal> entries) {
  std::unordered_map<std::string, size_t> index;
  std::vector<StackTotal> merged;
  for (StackTotal& entry : entries) {
    auto [it, inserted] = index.emplace(StackKey(entry.stack), merged.size());
    if (inserted) {
      merged.push_back(std::move(entry));
      continue;
    }
    StackTotal& into = merged[it->second];
    into.bytes += entry.bytes;
    into.count += entry.count;
    AddSizes(entry.sizes, &into.sizes);
  }
  for (StackTotal& total : merged) FinishSizes(&total);
  SortTotals(&merged);
  return merged;
}

std::vector<const Frame*> FramesOf(const Stack& stack) {
  std::vector<const Frame*> frames;
  frames.reserve(stack.size());
  for (const Frame& frame : stack) frames.push_back(&frame);
  return frames;
}

std::vector<const Frame*> SiteFrames(const TraceReport& report, const Site& site) {
  if (!site.stack.empty() || site.frame_names.empty()) return FramesOf(site.stack);
  std::vector<const Frame*> frames;
  for (uint32_t names : site.frame_names) {
    for (const Frame& frame : report.frame_names[names]) frames.push_back(&frame);
  }
  return frames;
}

std::vector<const Frame*> EntryFrames(const TraceReport& report, const StackTotal& total) {
  if (!total.stack.empty() || total.site >= report.sites.size()) return FramesOf(total.stack);
  return SiteFrames(report, report.sites[total.site]);
}

Stack SiteStack(const TraceReport& report, const Site& site) {
  Stack stack;
  for (const Frame* frame : SiteFrames(report, site)) stack.push_back(*frame);
  return stack;
}

namespace {

// GroupSites on the sites' frame_keys: the same groups, sums, sizes and order as grouping on StackKey strings,
// without building one. Only the first site of each of the first `named` groups has its stack named (the other
// groups keep their figures, an empty stack and the index of that site).
std::vector<StackTotal> GroupOnFrameKeys(const std::vector<const Site*>& sites, int64_t Site::*bytes,
                                         int64_t Site::*count, const TraceReport& from, size_t named) {
  const std::vector<uint32_t>& frame_key_ranks = from.frame_key_ranks;
  struct Group {
    size_t site;  // the first site of the group: its stack names the entry
    int64_t bytes;
    int64_t count;
    std::vector<int64_t> sizes;
  };
  std::vector<Group> groups;
  absl::flat_hash_map<absl::Span<const uint32_t>, size_t> group_of;  // views of the sites' frame_keys
  for (size_t i = 0; i < sites.size(); ++i) {
    const Site& site = *sites[i];
    if (site.*bytes == 0 && site.*count == 0) continue;
    auto [found, fresh] = group_of.try_emplace(absl::MakeConstSpan(site.frame_keys), groups.size());
    if (fresh) {
      groups.push_back(Group{i, site.*bytes, site.*count, site.sizes});
      continue;
    }
    Group& into = groups[found->second];
    into.bytes += site.*bytes;
    into.count += site.*count;
    AddSizes(site.sizes, &into.sizes);
  }
  // Ties in bytes and blocks go in StackKey order: key ids compared by the rank of their texts.
  std::sort(groups.begin(), groups.end(), [&](const Group& x, const Group& y) {
    if (x.bytes != y.bytes) return x.bytes > y.bytes;
    if (x.count != y.count) return x.count > y.count;
    const std::vector<uint32_t>& a = sites[x.site]->frame_keys;
    const std::vector<uint32_t>& b = sites[y.site]->frame_keys;
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [&](uint32_t p, uint32_t q) {
      return frame_key_ranks[p] < frame_key_ranks[q];
    });
  });
  std::vector<StackTotal> totals;
  totals.reserve(groups.size());
  for (Group& entry : groups) {
    StackTotal total{Stack(), entry.bytes, entry.count, std::move(entry.sizes)};
    const Site* first = sites[entry.site];
    if (first >= from.sites.data() && first < from.sites.data() + from.sites.size()) {
      total.site = static_cast<size_t>(first - from.sites.data());
    }
    if (totals.size() < named) total.stack = SiteStack(from, *first);
    FinishSizes(&total);
    totals.push_back(std::move(total));
  }
  return totals;
}

}  // namespace

std::vector<StackTotal> GroupSites(const std::vector<const Site*>& sites, int64_t Site::*bytes, int64_t Site::*count,
                                   const TraceReport* from, size_t named_entries) {
  if (from != nullptr && !from->frame_key_ranks.empty()) {
    return GroupOnFrameKeys(sites, bytes, count, *from, named_entries);
  }
  std::vector<StackTotal> entries;
  for (const Site* site : sites) {
    if (site->*bytes == 0 && site->*count == 0) continue;
    entries.push_back(StackTotal{site->stack, site->*bytes, site->*count, site->sizes});
  }
  std::vector<StackTotal> merged = MergeStackTotals(std::move(entries));
  for (size_t i = named_entries; i < merged.size(); ++i) merged[i].stack = Stack();
  return merged;
}

namespace {

// A frame as the trace file holds it: (module index or -1, offset or absolute address); a stack innermost first.
using RawFrame = std::pair<int64_t, uint64_t>;

// A trace's stacks as one call tree, however the file wrote them: node i is the frame frames[node_frames[i]]
// called from node parents[i] (-1: outermost). A site's stack is a node, read innermost first up the parents.
// Expanding every site's stack into its own list of frames took 620 MB for PyTorch's 600,000 stacks.
struct RawCallTree {
  std::vector<RawFrame> frames;
  std::vector<int64_t> parents;
  std::vector<uint32_t> node_frames;

  // Calls visit(frame) for each frame of the stack at `node` (-1: no frame), innermost first.
  template <typename Visit>
  void ForEachFrame(int64_t node, Visit&& visit) const {
    for (int64_t at = node; at >= 0; at = parents[static_cast<size_t>(at)]) {
      visit(frames[node_frames[static_cast<size_t>(at)]]);
    }
  }
};

// A [module_index, offset] pair: module_index -1 (none) or a module of the file.
// `where()` names the pair in errors (built only then).
template <typename Where>
absl::StatusOr<RawFrame> ParseRawFrame(const Reader& reader, const Json& frame, const Where& where,
                                       size_t module_count) {
  if (!frame.is_array() || frame.size() != 2) return reader.Error(where(), "is not a [module_index, offset] pair");
  absl::StatusOr<int64_t> module =
      reader.IntAt(frame[0], [&] { return where() + "[0]"; }, -1, static_cast<int64_t>(module_count) - 1);
  if (!module.ok()) {
    absl::StatusOr<int64_t> any = reader.Int(frame[0], where() + "[0]", std::numeric_limits<int64_t>::min(),
                                             std::numeric_limits<int64_t>::max());
    if (!any.ok()) return any.status();
    return reader.Error(where(), absl::StrCat("module index ", *any, " is out of range (the file lists ",
                                              module_count, " modules)"));
  }
  if (!frame[1].is_number_unsigned()) return reader.Unsigned(frame[1], where() + "[1]").status();
  return std::make_pair(*module, frame[1].get<uint64_t>());
}

// Version 1: "stacks" [{"id", "frames"}] and "sites" [{"stack": id, figures..., "sizes"}].
absl::Status ParseStacksAndSitesV1(const Reader& reader, const Json& json, size_t module_count, RawCallTree* tree,
                                   std::vector<std::pair<Site, int64_t>>* raw_sites) {
  absl::StatusOr<const Json*> stacks_json = reader.Array(json, "stacks", "", true);
  if (!stacks_json.ok()) return stacks_json.status();
  std::unordered_map<int64_t, int64_t> stack_node;  // id -> the node of its innermost frame
  absl::flat_hash_map<RawFrame, uint32_t> frame_index;                 // frame -> index in tree->frames
  absl::flat_hash_map<std::pair<int64_t, uint32_t>, int64_t> node_of;  // (parent, frame index) -> node
  for (size_t i = 0; i < (*stacks_json)->size(); ++i) {
    const Json& item = (**stacks_json)[i];
    std::string where = Reader::Index("stacks", i);
    absl::StatusOr<const Json*> id_json = reader.Member(item, "id", where, true);
    if (!id_json.ok()) return id_json.status();
    absl::StatusOr<int64_t> id =
        reader.Int(**id_json, Reader::Path(where, "id"), 0, std::numeric_limits<int64_t>::max());
    if (!id.ok()) return id.status();
    if (stack_node.count(*id) != 0) {
      return reader.Error(Reader::Path(where, "id"), absl::StrCat("stack id ", *id, " appears twice"));
    }
    absl::StatusOr<const Json*> frames = reader.Array(item, "frames", where, true);
    if (!frames.ok()) return frames.status();
    if ((*frames)->size() > kMaxFramesPerStack) {
      return reader.Error(Reader::Path(where, "frames"),
                          absl::StrCat((*frames)->size(), " frames is more than ", kMaxFramesPerStack));
    }
    std::vector<RawFrame> raw;
    raw.reserve((*frames)->size());
    for (size_t j = 0; j < (*frames)->size(); ++j) {
      absl::StatusOr<RawFrame> frame =
          ParseRawFrame(reader, (**frames)[j], [&] { return Reader::Index(Reader::Path(where, "frames"), j); },
                        module_count);
      if (!frame.ok()) return frame.status();
      raw.push_back(*frame);
    }
    int64_t node = -1;
    for (auto frame = raw.rbegin(); frame != raw.rend(); ++frame) {  // outermost first
      auto [index, new_frame] = frame_index.try_emplace(*frame, static_cast<uint32_t>(tree->frames.size()));
      if (new_frame) tree->frames.push_back(*frame);
      auto [child, new_node] = node_of.try_emplace({node, index->second}, static_cast<int64_t>(tree->parents.size()));
      if (new_node) {
        tree->parents.push_back(node);
        tree->node_frames.push_back(index->second);
      }
      node = child->second;
    }
    stack_node.emplace(*id, node);
  }

  absl::StatusOr<const Json*> sites_json = reader.Array(json, "sites", "", true);
  if (!sites_json.ok()) return sites_json.status();
  raw_sites->reserve((*sites_json)->size());
  for (size_t i = 0; i < (*sites_json)->size(); ++i) {
    const Json& item = (**sites_json)[i];
    std::string where = Reader::Index("sites", i);
    absl::StatusOr<const Json*> stack_json = reader.Member(item, "stack", where, true);
    if (!stack_json.ok()) return stack_json.status();
    absl::StatusOr<int64_t> id = reader.Int(**stack_json, Reader::Path(where, "stack"),
                                            std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    if (!id.ok()) return id.status();
    auto found = stack_node.find(*id);
    if (found == stack_node.end()) {
      return reader.Error(Reader::Path(where, "stack"), absl::StrCat("stack id ", *id, " is not in \"stacks\""));
    }
    Site site;
    struct Field {
      const char* key;
      int64_t* value;
    };
    for (const Field& field :
         {Field{"live_bytes", &site.live_bytes}, Field{"live_blocks", &site.live_blocks},
          Field{"peak_bytes", &site.peak_bytes}, Field{"peak_blocks", &site.peak_blocks},
          Field{"allocated_bytes", &site.allocated_bytes}, Field{"allocations", &site.allocations}}) {
      if (absl::Status s = reader.Count(item, field.key, where, field.value); !s.ok()) return s;
    }
    if (absl::Status s = ReadSizes(reader, item, where, &site.sizes); !s.ok()) return s;
    raw_sites->emplace_back(std::move(site), found->second);
  }
  return absl::OkStatus();
}

// Version 2's optional "freed_at_exit" (trace_file.h) into the sites' runtime_* figures. Sets *probed
// when the list is there.
absl::Status ParseFreedAtExit(const Reader& reader, const Json& json,
                              const std::unordered_map<int64_t, size_t>& site_of_node,
                              std::vector<std::pair<Site, int64_t>>* raw_sites, bool* probed) {
  absl::StatusOr<const Json*> member = reader.Member(json, "freed_at_exit", "", false);
  if (!member.ok()) return member.status();
  if (*member == nullptr) return absl::OkStatus();
  if (!(*member)->is_array()) return reader.Error("freed_at_exit", "is not an array of [node, bytes, blocks]");
  *probed = true;
  for (size_t i = 0; i < (*member)->size(); ++i) {
    const Json& item = (**member)[i];
    auto where = [i] { return Reader::Index("freed_at_exit", i); };
    if (!item.is_array() || item.size() != 3) return reader.Error(where(), "is not a [node, bytes, blocks] triple");
    int64_t values[3];
    for (size_t k = 0; k < 3; ++k) {
      absl::StatusOr<int64_t> value = reader.IntAt(
          item[k], [&] { return Reader::Index(where(), k); }, k == 0 ? -1 : 0, std::numeric_limits<int64_t>::max());
      if (!value.ok()) return value.status();
      values[k] = *value;
    }
    auto found = site_of_node.find(values[0]);
    if (found == site_of_node.end()) {
      return reader.Error(where() + "[0]", absl::StrCat("node ", values[0], " is no site's stack"));
    }
    Site& site = (*raw_sites)[found->second].first;
    if (site.runtime_bytes != 0 || site.runtime_blocks != 0) {
      return reader.Error(where() + "[0]", absl::StrCat("node ", values[0], " is listed twice"));
    }
    if (values[1] > site.live_bytes || values[2] > site.live_blocks) {
      return reader.Error(where(), absl::StrCat("frees ", values[1], " bytes in ", values[2],
                                                " blocks of a site that has only ", site.live_bytes, " in ",
                                                site.live_blocks, " live"));
    }
    site.runtime_bytes = values[1];
    site.runtime_blocks = values[2];
  }
  return absl::OkStatus();
}

// Version 2: "frames", the call tree "nodes", "site_fields" and "sites" as arrays (trace_file.h).
absl::Status ParseStacksAndSitesV2(const Reader& reader, const Json& json, size_t module_count, RawCallTree* tree,
                                   std::vector<std::pair<Site, int64_t>>* raw_sites, bool* exit_cleanup_probed) {
  absl::StatusOr<const Json*> frames_json = reader.Array(json, "frames", "", true);
  if (!frames_json.ok()) return frames_json.status();
  std::vector<RawFrame>& frames = tree->frames;
  frames.reserve((*frames_json)->size());
  for (size_t i = 0; i < (*frames_json)->size(); ++i) {
    absl::StatusOr<RawFrame> frame =
        ParseRawFrame(reader, (**frames_json)[i], [i] { return Reader::Index("frames", i); }, module_count);
    if (!frame.ok()) return frame.status();
    frames.push_back(*frame);
  }

  absl::StatusOr<const Json*> nodes_json = reader.Array(json, "nodes", "", true);
  if (!nodes_json.ok()) return nodes_json.status();
  const size_t node_count = (*nodes_json)->size();
  std::vector<int64_t>& parents = tree->parents;
  std::vector<uint32_t>& node_frames = tree->node_frames;
  parents.resize(node_count);
  node_frames.resize(node_count);
  std::vector<uint32_t> depths(node_count);
  for (size_t i = 0; i < node_count; ++i) {
    const Json& node = (**nodes_json)[i];
    // Paths are built only for an error: a big trace has hundreds of thousands of nodes.
    auto where = [i](const char* suffix) { return absl::StrCat(Reader::Index("nodes", i), suffix); };
    if (!node.is_array() || node.size() != 2) return reader.Error(where(""), "is not a [parent, frame] pair");
    absl::StatusOr<int64_t> parent = reader.IntAt(node[0], [&] { return where("[0]"); },
                                                  std::numeric_limits<int64_t>::min(),
                                                  std::numeric_limits<int64_t>::max());
    if (!parent.ok()) return parent.status();
    if (*parent < -1 || *parent >= static_cast<int64_t>(i)) {
      return reader.Error(where("[0]"), absl::StrCat("parent ", *parent, " is not -1 or an earlier node"));
    }
    absl::StatusOr<int64_t> frame = reader.IntAt(node[1], [&] { return where("[1]"); },
                                                 std::numeric_limits<int64_t>::min(),
                                                 std::numeric_limits<int64_t>::max());
    if (!frame.ok()) return frame.status();
    if (*frame < 0 || *frame >= static_cast<int64_t>(frames.size())) {
      return reader.Error(where("[1]"), absl::StrCat("frame ", *frame, " is out of range (the file lists ",
                                                     frames.size(), " frames)"));
    }
    parents[i] = *parent;
    node_frames[i] = static_cast<uint32_t>(*frame);
    depths[i] = *parent < 0 ? 1 : depths[static_cast<size_t>(*parent)] + 1;
    if (depths[i] > kMaxFramesPerStack) {
      return reader.Error(where(""), absl::StrCat("a stack of more than ", kMaxFramesPerStack, " frames"));
    }
  }

  absl::StatusOr<const Json*> fields = reader.Array(json, "site_fields", "", true);
  if (!fields.ok()) return fields.status();
  constexpr size_t kFieldCount = std::size(kTraceSiteFields);
  bool fields_match = (*fields)->size() == kFieldCount;
  for (size_t i = 0; fields_match && i < kFieldCount; ++i) fields_match = (**fields)[i] == kTraceSiteFields[i];
  if (!fields_match) {
    return reader.Error("site_fields", absl::StrCat(SafeText((*fields)->dump()), " is not this version's list (",
                                                    Json(std::vector<std::string>(std::begin(kTraceSiteFields),
                                                                                  std::end(kTraceSiteFields)))
                                                        .dump(),
                                                    ")"));
  }

  absl::StatusOr<const Json*> sites_json = reader.Array(json, "sites", "", true);
  if (!sites_json.ok()) return sites_json.status();
  raw_sites->reserve((*sites_json)->size());
  std::unordered_map<int64_t, size_t> site_of_node;
  for (size_t i = 0; i < (*sites_json)->size(); ++i) {
    const Json& item = (**sites_json)[i];
    auto where = [i] { return Reader::Index("sites", i); };  // built only for an error, as for the nodes
    if (!item.is_array() || item.size() != kFieldCount) {
      return reader.Error(where(), absl::StrCat("is not an array of the ", kFieldCount, " site_fields"));
    }
    absl::StatusOr<int64_t> node = reader.IntAt(item[0], [&] { return where() + "[0]"; },
                                                std::numeric_limits<int64_t>::min(),
                                                std::numeric_limits<int64_t>::max());
    if (!node.ok()) return node.status();
    if (*node < -1 || *node >= static_cast<int64_t>(node_count)) {
      return reader.Error(where() + "[0]", absl::StrCat("node ", *node, " is out of range (the file lists ",
                                                        node_count, " nodes)"));
    }
    if (auto [other, fresh] = site_of_node.emplace(*node, i); !fresh) {
      return reader.Error(where() + "[0]",
                          absl::StrCat("node ", *node, " is also the stack of sites[", other->second, "]"));
    }
    Site site;
    int64_t* figures[] = {&site.live_bytes,  &site.live_blocks,     &site.peak_bytes,
                          &site.peak_blocks, &site.allocated_bytes, &site.allocations};
    for (size_t k = 0; k < std::size(figures); ++k) {
      absl::StatusOr<int64_t> value = reader.IntAt(
          item[k + 1], [&] { return Reader::Index(where(), k + 1); }, 0, std::numeric_limits<int64_t>::max());
      if (!value.ok()) return value.status();
      *figures[k] = *value;
    }
    const Json& sizes = item[kFieldCount - 1];
    auto sizes_where = [&] { return Reader::Index(where(), kFieldCount - 1); };
    if (!sizes.is_array()) return reader.Error(sizes_where(), "is not an array of sizes");
    if (sizes.size() > kMaxSizesPerSite) return reader.Error(sizes_where(), "has too many sizes");
    for (size_t j = 0; j < sizes.size(); ++j) {
      absl::StatusOr<int64_t> size = reader.IntAt(
          sizes[j], [&] { return Reader::Index(sizes_where(), j); }, 0, std::numeric_limits<int64_t>::max());
      if (!size.ok()) return size.status();
      site.sizes.push_back(*size);
    }
    raw_sites->emplace_back(std::move(site), *node);
  }
  return ParseFreedAtExit(reader, json, site_of_node, raw_sites, exit_cleanup_probed);
}

}  // namespace

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::string name = SafeText(path);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) return absl::NotFoundError(absl::StrCat(name, ": no such file"));
    return absl::InvalidArgumentError(absl::StrCat(name, ": cannot open: ", strerror(error)));
  }
  struct stat status;
  if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(name, ": not a regular file"));
  }
  if (status.st_size > kMaxTraceFileBytes) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", status.st_size, " bytes is more than the ",
                                                   kMaxTraceFileBytes >> 20, " MiB a trace or report may have"));
  }
  std::string text;
  text.resize(static_cast<size_t>(status.st_size));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t got = read(fd, text.data() + done, text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  close(fd);
  text.resize(done);
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": empty file (not a trace or report)"));
  return ParseJsonText(text, name);
}

absl::StatusOr<nlohmann::json> ParseJsonText(const std::string& text, const std::string& name) {
  if (TooDeep(text)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": JSON nested deeper than ", kMaxJsonDepth, " levels"));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    std::string what = error.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: …" -> "parse error at …"
    if (size_t bracket = what.find("] "); what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) {
      what = what.substr(bracket + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(name, ": not JSON: ", SafeText(what)));
  } catch (const std::exception& error) {
    return absl::ResourceExhaustedError(absl::StrCat(name, ": cannot parse: ", error.what()));
  }
}

absl::StatusOr<TraceReport> ParseRawTrace(const nlohmann::json& json, const std::string& origin, Symbolizer* symbolizer,
                                          const RawTraceOptions& options) {
  Reader reader(origin);
  TraceReport report;
  report.path = origin;
  absl::StatusOr<const Json*> version = reader.Member(json, kTraceFileVersionKey, "", true);
  if (!version.ok()) return version.status();
  const int version_number = **version == 1 ? 1 : (**version == 2 ? 2 : 0);
  if (version_number == 0 || !(*version)->is_number_integer()) {
    return reader.Error("", absl::StrCat("trace file version ", SafeText((*version)->dump()),
                                         " is not supported (this memtide reads versions ", kOldestTraceFileVersion,
                                         " to ", kTraceFileVersion, ")"));
  }
  if (absl::Status s = ParseTraceInfo(reader, json, "", true, &report.trace); !s.ok()) return s;
  report.has_trace = true;

  absl::StatusOr<const Json*> modules_json = reader.Array(json, "modules", "", true);
  if (!modules_json.ok()) return modules_json.status();
  std::vector<RawModule> modules;
  for (size_t i = 0; i < (*modules_json)->size(); ++i) {
    const Json& item = (**modules_json)[i];
    std::string where = Reader::Index("modules", i);
    RawModule module;
    if (absl::Status s = reader.String(item, "path", where, true, &module.path); !s.ok()) return s;
    if (absl::Status s = reader.String(item, "build_id", where, false, &module.build_id); !s.ok()) return s;
    if (module.build_id.size() > 128 ||
        module.build_id.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return reader.Error(Reader::Path(where, "build_id"), "is not a hexadecimal build id");
    }
    for (const char* key : {"base", "start", "end"}) {
      absl::StatusOr<const Json*> member = reader.Member(item, key, where, false);
      if (!member.ok()) return member.status();
      if (*member == nullptr) continue;
      absl::StatusOr<uint64_t> value = reader.Unsigned(**member, Reader::Path(where, key));
      if (!value.ok()) return value.status();
    }
    modules.push_back(std::move(module));
  }

  // Frames are checked now and named when a site that needs them is kept: a site with nothing to show
  // (live_sites_only) costs no symbolization.
  RawCallTree tree;
  std::vector<std::pair<Site, int64_t>> raw_sites;  // figures and sizes, the node of the stack in `tree`
  absl::Status parsed = version_number == 1
                            ? ParseStacksAndSitesV1(reader, json, modules.size(), &tree, &raw_sites)
                            : ParseStacksAndSitesV2(reader, json, modules.size(), &tree, &raw_sites,
                                                    &report.exit_cleanup_probed);
  if (!parsed.ok()) return parsed;

  // Each distinct raw frame is named once: its frames (the inlined ones first), made safe to print, and the ids
  // of their StackKey parts. Stacks are grouped on those ids, and copied out as frames only where a list keeps
  // them (options): a big trace names a few hundred thousand stacks of one frame table.
  absl::flat_hash_map<RawFrame, uint32_t> named_index;  // -> index in report.frame_names
  std::vector<std::vector<uint32_t>> named_keys;                     // beside report.frame_names
  std::unordered_map<std::string, uint32_t> key_index;
  std::vector<std::string> key_texts;
  auto name = [&](const RawFrame& raw) -> uint32_t {
    auto [found, fresh] = named_index.try_emplace(raw, static_cast<uint32_t>(report.frame_names.size()));
    if (!fresh) return found->second;
    Stack frames;
    std::vector<uint32_t> key_ids;
    const auto& [module, offset] = raw;
    if (module < 0) {
      frames.push_back(Symbolizer::Unknown(offset));
    } else if (const RawModule& file = modules[static_cast<size_t>(module)]; symbolizer == nullptr) {
      Frame frame = Symbolizer::Unknown(offset);
      frame.module_path = file.path;
      frame.module = file.path.substr(file.path.rfind('/') == std::string::npos ? 0 : file.path.rfind('/') + 1);
      frames.push_back(std::move(frame));
    } else {
      frames = symbolizer->Symbolize(file.path, file.build_id, offset);
    }
    for (Frame& frame : frames) {
      frame.function = SafeText(frame.function);
      frame.file = SafeText(frame.file);
      frame.module = SafeText(frame.module);
      std::string key;
      AppendFrameKey(frame, &key);
      auto [id, new_key] = key_index.try_emplace(key, static_cast<uint32_t>(key_texts.size()));
      if (new_key) key_texts.push_back(std::move(key));
      key_ids.push_back(id->second);
    }
    report.frame_names.push_back(std::move(frames));
    named_keys.push_back(std::move(key_ids));
    return found->second;
  };

  report.has_sites = true;
  report.sites.reserve(raw_sites.size());
  for (auto& raw_site : raw_sites) {
    Site& site = raw_site.first;  // not a structured binding: the lambda below captures it (C++17)
    const bool live = site.live_bytes != 0 || site.live_blocks != 0;
    if (options.live_sites_only && !live) continue;
    const bool grouped = live || site.peak_bytes != 0 || site.peak_blocks != 0;  // counted by some grouping
    if (grouped || options.all_site_frames || options.all_site_stacks) {
      tree.ForEachFrame(raw_site.second, [&](const RawFrame& frame) {
        const uint32_t names = name(frame);
        site.frame_names.push_back(names);
        if (grouped) site.frame_keys.insert(site.frame_keys.end(), named_keys[names].begin(), named_keys[names].end());
      });
    }
    if (options.all_site_stacks) site.stack = SiteStack(report, site);
    report.sites.push_back(std::move(site));
    if (options.keep_going && !options.keep_going(report, report.sites.back())) return report;
  }

  // Ranks of the key texts, for the grouping's ties (GroupOnFrameKeys).
  std::vector<uint32_t> by_text(key_texts.size());
  for (uint32_t i = 0; i < by_text.size(); ++i) by_text[i] = i;
  std::sort(by_text.begin(), by_text.end(), [&](uint32_t a, uint32_t b) { return key_texts[a] < key_texts[b]; });
  report.frame_key_ranks.resize(key_texts.size());
  for (uint32_t i = 0; i < by_text.size(); ++i) report.frame_key_ranks[by_text[i]] = i;
  std::vector<const Site*> kept_sites;
  kept_sites.reserve(report.sites.size());
  for (const Site& site : report.sites) kept_sites.push_back(&site);
  if (report.trace.kind == TraceKind::kSnapshot) {
    report.live_sites = GroupSites(kept_sites, &Site::live_bytes, &Site::live_blocks, &report, options.named_entries);
  }
  report.peak_sites = GroupSites(kept_sites, &Site::peak_bytes, &Site::peak_blocks, &report, options.named_entries);
  return report;
}

absl::StatusOr<TraceReport> ParseRunReport(const nlohmann::json& json, const std::string& origin) {
  Reader reader(origin);
  TraceReport report;
  report.path = origin;
  absl::StatusOr<const Json*> version_json = reader.Member(json, kRunReportVersionKey, "", true);
  if (!version_json.ok()) return version_json.status();
  absl::StatusOr<int64_t> version = reader.Int(**version_json, kRunReportVersionKey, 0, 1 << 20);
  if (!version.ok() || *version < kOldestRunReportVersion || *version > kRunReportVersion) {
    return reader.Error("", absl::StrCat("report version ", SafeText((*version_json)->dump()),
                                         " is not supported (this memtide reads versions ", kOldestRunReportVersion,
                                         " to ", kRunReportVersion, ")"));
  }
  report.run_report = json;
  absl::StatusOr<const Json*> trace = reader.Member(json, "trace", "", false);
  if (!trace.ok()) return trace.status();
  if (*trace == nullptr) return report;  // version 1, or a run without tracing (see "trace_status")
  if (absl::Status s = ParseTraceInfo(reader, **trace, "trace", false, &report.trace); !s.ok()) return s;
  report.has_trace = true;
  if (report.trace.kind == TraceKind::kExit) {
    report.has_leaks = true;
    if (absl::Status s = ParseStackTotals(reader, json, "leaks", &report.leaks); !s.ok()) return s;
    if (absl::Status s = ParseStackTotals(reader, json, "runtime_leaks", &report.runtime_leaks); !s.ok()) return s;
    absl::StatusOr<const Json*> suppressed = reader.Member(json, "suppressed", "", false);
    if (!suppressed.ok()) return suppressed.status();
    if (*suppressed != nullptr) {
      if (absl::Status s = reader.Count(**suppressed, "bytes", "suppressed", &report.suppressed_bytes); !s.ok())
        return s;
      if (absl::Status s = reader.Count(**suppressed, "count", "suppressed", &report.suppressed_count); !s.ok())
        return s;
    }
    // The listed leaks may be the top ones only; the totals are the file's.
    int64_t bytes = 0, blocks = 0;
    for (const StackTotal& leak : report.leaks) {
      bytes += leak.bytes;
      blocks += leak.count;
    }
    report.leaked_bytes = bytes;
    report.leaked_blocks = blocks;
    if (absl::Status s = reader.Count(json, "leaked_bytes", "", &report.leaked_bytes); !s.ok()) return s;
    if (absl::Status s = reader.Count(json, "leaked_blocks", "", &report.leaked_blocks); !s.ok()) return s;
  } else {
    if (absl::Status s = ParseStackTotals(reader, json, "sites", &report.live_sites); !s.ok()) return s;
  }
  if (absl::Status s = ParseStackTotals(reader, json, "peak_sites", &report.peak_sites); !s.ok()) return s;
  for (std::vector<StackTotal>* list : {&report.leaks, &report.runtime_leaks, &report.live_sites, &report.peak_sites}) {
    for (StackTotal& total : *list) {
      for (Frame& frame : total.stack) {
        frame.function = SafeText(frame.function);
        frame.file = SafeText(frame.file);
        frame.module = SafeText(frame.module);
        frame.module_path = frame.module;
      }
    }
  }
  return report;
}

absl::StatusOr<TraceReport> ParseTraceOrReport(const nlohmann::json& json, const std::string& origin,
                                               Symbolizer* symbolizer, const RawTraceOptions& options) {
  Reader reader(origin);
  if (!json.is_object()) {
    return reader.Error("", absl::StrCat("is ", Reader::Describe(json), ", not a memtide trace or report"));
  }
  if (json.contains(kTraceFileVersionKey)) return ParseRawTrace(json, origin, symbolizer, options);
  if (json.contains(kRunReportVersionKey)) return ParseRunReport(json, origin);
  return reader.Error(
      "",
      absl::StrCat("no version found (neither \"", kTraceFileVersionKey, "\" nor \"", kRunReportVersionKey,
                   "\"): not a memtide trace or report; this memtide "
                   "reads trace files versions ",
                   kOldestTraceFileVersion, " to ", kTraceFileVersion, " and reports versions ", kOldestRunReportVersion,
                   " to ", kRunReportVersion));
}

}  // namespace memtide
