// The trace file writer (see trace_writer.h and trace_file.h). Tracer module, off the hot path: exit and
// snapshots. Allocates; takes no lock.
#include "trace_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <iterator>
#include <memory>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "nlohmann/json.hpp"

#include "proc_file.h"
#include "trace_file.h"

namespace memtide::internal {
namespace {

int64_t Rounded(double value) { return static_cast<int64_t>(llround(value)); }

int WriteAll(int fd, std::string_view text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

int WriteAndClose(int fd, const TextSource& text) {
  int error = text([fd](std::string_view chunk) { return WriteAll(fd, chunk); });
  if (close(fd) != 0 && error == 0 && errno != EINTR) error = errno;
  return error;
}

}  // namespace

bool SiteRoundsToZero(const SiteCounters& site) {
  return Rounded(site.live_bytes) == 0 && Rounded(site.live_blocks) == 0 && Rounded(site.peak_bytes) == 0 &&
         Rounded(site.peak_blocks) == 0 && Rounded(site.allocated_bytes) == 0 && Rounded(site.allocations) == 0;
}

namespace {

// The written stacks as one call tree (trace_file.h "frames" and "nodes"), built outermost frame first so that
// stacks sharing their outer frames share nodes. A frame is its runtime address and the module index it had
// when first seen (an address reused by another library after a dlclose is another frame).
//
// Built at exit, when a process under a container limit can least afford it: a PyTorch import's 600,000
// stacks make millions of nodes. So a node is 8 bytes, and the indexes hold only 4-byte node and frame numbers,
// hashed and compared through the vectors they index: 5 bytes per index slot, where maps from (parent, frame)
// and (address, module) took 17 and 25, and a node 16. The PyTorch import's peak RSS with a trace file at
// exit went from 698 to 601 MB (499 MB without the file).
class CallTree {
 public:
  // The node of the stack's innermost frame; -1 for a stack of no frame. The outer frames it shares with the
  // stack added before it (the depot numbers stacks as they are first seen, so neighbours mostly share their
  // callers) reuse that stack's nodes without a lookup: a PyTorch trace's 30 million frames are mostly those.
  int64_t Add(const std::vector<uintptr_t>& addresses, const std::vector<int32_t>& modules) {
    const size_t depth = addresses.size();
    size_t shared = 0;
    while (shared < depth && shared < previous_addresses_.size() &&
           addresses[depth - 1 - shared] == previous_addresses_[previous_addresses_.size() - 1 - shared] &&
           modules[depth - 1 - shared] == previous_modules_[previous_modules_.size() - 1 - shared]) {
      ++shared;
    }
    path_.resize(shared);  // path_[k]: the node of the k-th frame from the outermost
    int64_t parent = shared == 0 ? -1 : path_[shared - 1];
    for (size_t k = shared; k < depth; ++k) {
      const size_t i = depth - 1 - k;
      const Node node{static_cast<uint32_t>(parent + 1), FrameIndex(addresses[i], modules[i])};
      auto found = node_index_.find(node);
      if (found == node_index_.end()) {
        nodes_.push_back(node);
        found = node_index_.insert(static_cast<uint32_t>(nodes_.size() - 1)).first;
      }
      parent = *found;
      path_.push_back(parent);
    }
    previous_addresses_ = addresses;
    previous_modules_ = modules;
    return parent;
  }

  struct Frame {
    uintptr_t address;
    int32_t module;
    auto Key() const { return std::make_tuple(address, module); }
  };
  struct Node {
    uint32_t parent_plus_one;  // 0: the outermost frame
    uint32_t frame;
    int64_t parent() const { return static_cast<int64_t>(parent_plus_one) - 1; }
    auto Key() const { return std::make_tuple(parent_plus_one, frame); }
  };
  const std::vector<Frame>& frames() const { return frames_; }
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  // Hash and equality for sets of indexes into a vector, looked up by the element itself (absl's
  // heterogeneous lookup): an index stands for the element it points to.
  template <typename Element>
  struct IndexedBy {
    using is_transparent = void;
    const std::vector<Element>* elements;
    const Element& Of(uint32_t index) const { return (*elements)[index]; }
    const Element& Of(const Element& element) const { return element; }
  };
  template <typename Element>
  struct IndexHash : IndexedBy<Element> {
    template <typename Key>
    size_t operator()(const Key& key) const {
      return absl::HashOf(this->Of(key).Key());
    }
  };
  template <typename Element>
  struct IndexEq : IndexedBy<Element> {
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return this->Of(a).Key() == this->Of(b).Key();
    }
  };

  uint32_t FrameIndex(uintptr_t address, int32_t module) {
    const Frame frame{address, module};
    auto found = frame_index_.find(frame);
    if (found != frame_index_.end()) return *found;
    frames_.push_back(frame);
    frame_index_.insert(static_cast<uint32_t>(frames_.size() - 1));
    return static_cast<uint32_t>(frames_.size() - 1);
  }

  std::vector<Frame> frames_;
  std::vector<Node> nodes_;
  absl::flat_hash_set<uint32_t, IndexHash<Frame>, IndexEq<Frame>> frame_index_{
      0, IndexHash<Frame>{{&frames_}}, IndexEq<Frame>{{&frames_}}};
  absl::flat_hash_set<uint32_t, IndexHash<Node>, IndexEq<Node>> node_index_{0, IndexHash<Node>{{&nodes_}},
                                                                            IndexEq<Node>{{&nodes_}}};
  std::vector<uintptr_t> previous_addresses_;
  std::vector<int32_t> previous_modules_;
  std::vector<int64_t> path_;
};

// Appends JSON text to a buffer handed to the sink whenever it passes kChunkBytes; remembers the sink's first
// error and drops everything after it.
class JsonStream {
 public:
  static constexpr size_t kChunkBytes = size_t{1} << 20;

  explicit JsonStream(const ChunkSink& sink) : sink_(sink) { buffer_.reserve(kChunkBytes + 4096); }

  JsonStream& Raw(std::string_view text) {
    buffer_.append(text);
    if (buffer_.size() >= kChunkBytes) Flush();
    return *this;
  }
  JsonStream& Int(int64_t value) { return Number(value); }
  JsonStream& Unsigned(uint64_t value) { return Number(value); }
  JsonStream& Double(double value) {
    if (!std::isfinite(value)) return Raw("null");
    return Number(value);
  }
  // Invalid UTF-8 (command-line arguments, paths) is replaced rather than thrown on.
  JsonStream& String(const std::string& text) {
    return Raw(nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  int Finish() {
    Flush();
    return error_;
  }

 private:
  template <typename T>
  JsonStream& Number(T value) {
    char digits[32];
    const auto [end, status] = std::to_chars(digits, digits + sizeof(digits), value);
    return Raw(std::string_view(digits, static_cast<size_t>(end - digits)));
  }

  void Flush() {
    if (error_ == 0 && !buffer_.empty()) error_ = sink_(buffer_);
    buffer_.clear();
  }

  const ChunkSink& sink_;
  std::string buffer_;
  int error_ = 0;
};

}  // namespace

StackSource StacksFromArrays(std::vector<TraceStack> stacks) {
  auto by_id = std::make_shared<absl::flat_hash_map<uint32_t, TraceStack>>();
  for (const TraceStack& stack : stacks) by_id->emplace(stack.id, stack);
  return [by_id](uint32_t id, std::vector<uintptr_t>* addresses, std::vector<int32_t>* modules) {
    auto found = by_id->find(id);
    if (found == by_id->end()) return false;
    const TraceStack& stack = found->second;
    addresses->assign(stack.addresses, stack.addresses + stack.depth);
    modules->assign(stack.modules, stack.modules + stack.depth);
    return true;
  };
}

int WriteTrace(const TraceContents& contents, const ChunkSink& sink) {
  CallTree tree;
  std::vector<std::pair<const SiteCounters*, int64_t>> written;  // site, node
  written.reserve(contents.sites.size());
  std::vector<uintptr_t> addresses;
  std::vector<int32_t> modules;
  for (const SiteCounters& site : contents.sites) {
    if (SiteRoundsToZero(site)) continue;
    if (!contents.stacks || !contents.stacks(site.site, &addresses, &modules)) continue;
    written.emplace_back(&site, tree.Add(addresses, modules));
  }

  JsonStream out(sink);
  out.Raw("{\"").Raw(kTraceFileVersionKey).Raw("\":").Int(kTraceFileVersion);
  out.Raw(",\"kind\":").Raw(contents.exit ? "\"exit\"" : "\"snapshot\"");
  out.Raw(",\"pid\":").Int(contents.pid);
  out.Raw(",\"command\":[");
  for (size_t i = 0; i < contents.command.size(); ++i) out.Raw(i == 0 ? "" : ",").String(contents.command[i]);
  out.Raw("],\"time_s\":").Double(contents.time_s);
  out.Raw(",\"exit_code\":");
  if (contents.has_exit_code) {
    out.Int(contents.exit_code);
  } else {
    out.Raw("null");
  }
  out.Raw(",\"mode\":").Raw(contents.sample_mode ? "\"sample\"" : "\"full\"");
  out.Raw(",\"sample_mean_bytes\":").Int(contents.sample_mode ? contents.sample_mean_bytes : 0);
  out.Raw(",\"byte_unit\":\"requested\",\"complete\":").Raw(contents.complete ? "true" : "false");
  const TraceTotals& totals = contents.totals;
  out.Raw(",\"totals\":{\"live_bytes\":").Int(Rounded(totals.live_bytes));
  out.Raw(",\"live_blocks\":").Int(Rounded(totals.live_blocks));
  out.Raw(",\"peak_bytes\":").Int(Rounded(totals.peak_bytes));
  out.Raw(",\"allocations\":").Int(Rounded(totals.allocations));
  out.Raw(",\"frees\":").Int(Rounded(totals.frees));
  out.Raw(",\"allocated_bytes\":").Int(Rounded(totals.allocated_bytes)).Raw("}");
  out.Raw(",\"modules\":[");
  for (size_t i = 0; i < contents.modules.size(); ++i) {
    const ModuleInfo& module = contents.modules[i];
    out.Raw(i == 0 ? "\n{\"path\":" : ",\n{\"path\":").String(module.path);
    out.Raw(",\"build_id\":").String(module.build_id);
    out.Raw(",\"base\":").Unsigned(module.base);
    out.Raw(",\"start\":").Unsigned(module.start);
    out.Raw(",\"end\":").Unsigned(module.end).Raw("}");
  }
  out.Raw("],\n\"frames\":[");
  for (size_t i = 0; i < tree.frames().size(); ++i) {
    const CallTree::Frame& frame = tree.frames()[i];
    const bool known = frame.module >= 0 && static_cast<size_t>(frame.module) < contents.modules.size();
    out.Raw(i == 0 ? "[" : ",[").Int(known ? frame.module : -1).Raw(",");
    out.Unsigned(known ? frame.address - contents.modules[static_cast<size_t>(frame.module)].base : frame.address);
    out.Raw("]");
  }
  out.Raw("],\n\"nodes\":[");
  for (size_t i = 0; i < tree.nodes().size(); ++i) {
    out.Raw(i == 0 ? "[" : ",[").Int(tree.nodes()[i].parent()).Raw(",").Unsigned(tree.nodes()[i].frame).Raw("]");
  }
  out.Raw("],\n\"site_fields\":[");
  for (size_t i = 0; i < std::size(kTraceSiteFields); ++i) {
    out.Raw(i == 0 ? "\"" : ",\"").Raw(kTraceSiteFields[i]).Raw("\"");
  }
  out.Raw("],\n\"sites\":[");
  for (size_t i = 0; i < written.size(); ++i) {
    const SiteCounters& site = *written[i].first;
    out.Raw(i == 0 ? "\n[" : ",\n[").Int(written[i].second);
    for (double figure : {site.live_bytes, site.live_blocks, site.peak_bytes, site.peak_blocks, site.allocated_bytes,
                          site.allocations}) {
      out.Raw(",").Int(Rounded(figure));
    }
    out.Raw(",[");
    for (uint32_t j = 0; j < site.size_count; ++j) out.Raw(j == 0 ? "" : ",").Unsigned(site.sizes[j]);
    out.Raw("]]");
  }
  out.Raw("]");
  if (contents.exit && contents.exit_cleanup_probed) {
    out.Raw(",\n\"freed_at_exit\":[");
    bool first = true;
    for (const auto& [site, node] : written) {
      const int64_t bytes = Rounded(site->freed_at_exit_bytes);
      const int64_t blocks = Rounded(site->freed_at_exit_blocks);
      if (bytes == 0 && blocks == 0) continue;
      out.Raw(first ? "\n[" : ",\n[").Int(node).Raw(",").Int(bytes).Raw(",").Int(blocks).Raw("]");
      first = false;
    }
    out.Raw("]");
  }
  out.Raw("}\n");
  return out.Finish();
}

std::string TraceText(const TraceContents& contents) {
  std::string text;
  WriteTrace(contents, [&text](std::string_view chunk) {
    text.append(chunk);
    return 0;
  });
  return text;
}

std::vector<std::string> ReadCommandLine() {
  std::vector<std::string> command;
  const std::string text = ReadProcFile("/proc/self/cmdline");
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\0', begin);
    if (end == std::string::npos) end = text.size();
    command.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return command;
}

std::string ExpandPid(const std::string& pattern, int64_t pid) {
  std::string result;
  const std::string pid_text = std::to_string(pid);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'p') {
      result += pid_text;
      ++i;
    } else {
      result += pattern[i];
    }
  }
  return result;
}

int WriteFileReplacing(const std::string& path, const TextSource& text) {
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    // Left by a process of the same pid that died mid-write (pid reuse): it is ours to replace.
    unlink(temporary.c_str());
    fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  }
  if (fd < 0) return errno;
  int error = WriteAndClose(fd, text);
  if (error == 0 && rename(temporary.c_str(), path.c_str()) != 0) error = errno;
  if (error != 0) unlink(temporary.c_str());
  return error;
}

int WriteFileDirect(const std::string& path, const TextSource& text, bool create_new) {
  const int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (create_new ? O_EXCL : O_TRUNC);
  const int fd = open(path.c_str(), flags, 0600);
  if (fd < 0) return errno;
  return WriteAndClose(fd, text);
}

TextSource FixedText(std::string text) {
  return [text = std::move(text)](const ChunkSink& sink) { return sink(text); };
}

}  // namespace memtide::internal
