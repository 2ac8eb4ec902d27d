// Folded stacks (Brendan Gregg's collapsed format: "outer;...;inner weight", one line per distinct stack, in the
// byte order of the lines) built as a trie of frame names, for `memtide report --format collapsed`. A big trace
// makes many long lines (PyTorch's import: 506,000 stacks of about 50 frames, 2 GB of text), which share most
// of their frames: the trie keeps each distinct (outer path, name) once, and Write streams the lines without
// ever holding them all. Single-threaded; allocates.
#ifndef MEMTIDE_TRACER_FOLDED_STACKS_H_
#define MEMTIDE_TRACER_FOLDED_STACKS_H_

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace memtide {

class FoldedStacks {
 public:
  FoldedStacks();

  // The id of a frame's folded name. The name must not contain ';' (it separates frames).
  uint32_t NameId(const std::string& name);

  // Adds `bytes` to the line of `names` (ids, outermost first; at least one). Lines that only ever get zero
  // or less are not written.
  void Add(const std::vector<uint32_t>& names, int64_t bytes);

  // Writes every line with a positive total, in the byte order of the lines, to `write` in chunks of about
  // 1 MiB.
  void Write(const std::function<void(std::string_view chunk)>& write) const;

 private:
  struct Node {
    uint32_t parent;
    uint32_t name;
    int64_t bytes;  // of the line ending here
  };

  void WriteChildren(uint32_t node, const std::vector<uint32_t>& first_child, const std::vector<uint32_t>& children,
                     std::string* path, std::string* chunk,
                     const std::function<void(std::string_view chunk)>& write) const;

  std::vector<std::string> names_;
  absl::flat_hash_map<std::string, uint32_t> name_ids_;
  std::vector<Node> nodes_;                         // node 0: the root, above every outermost frame
  absl::flat_hash_map<uint64_t, uint32_t> child_;  // parent << 32 | name -> node
};

}  // namespace memtide

#endif  // MEMTIDE_TRACER_FOLDED_STACKS_H_
