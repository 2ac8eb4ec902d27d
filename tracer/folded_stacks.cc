// See folded_stacks.h.
#include "folded_stacks.h"

#include <algorithm>

#include "fmt/format.h"

namespace memtide {
namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

// The lines below a node's child start with the child's name and then either end (the child's own line) or go
// on with ';' (its children's lines). So siblings are ordered as "bands", each keyed by the name, or by the
// name and ';': comparing those keys orders every line of one band against every line of the other as
// comparing whole lines would, also when one name is a prefix of another ("f" and "f2": "x;f2" sorts between
// "x;f" and "x;f;g", since '2' < ';').
struct Band {
  std::string_view name;
  bool descend;  // the child's children's lines (key: name + ';'), else the child's own line (key: name)
  uint32_t node;
};

bool BandLess(const Band& a, const Band& b) {
  const size_t common = std::min(a.name.size(), b.name.size());
  const int order = a.name.substr(0, common).compare(b.name.substr(0, common));
  if (order != 0) return order < 0;
  if (a.name.size() == b.name.size()) return !a.descend && b.descend;
  if (a.name.size() < b.name.size()) return !a.descend || ';' < b.name[common];
  return b.descend && a.name[common] < ';';
}

}  // namespace

FoldedStacks::FoldedStacks() { nodes_.push_back({0, 0, 0}); }

uint32_t FoldedStacks::NameId(const std::string& name) {
  auto [it, inserted] = name_ids_.try_emplace(name, static_cast<uint32_t>(names_.size()));
  if (inserted) names_.push_back(name);
  return it->second;
}

void FoldedStacks::Add(const std::vector<uint32_t>& names, int64_t bytes) {
  if (bytes <= 0 || names.empty()) return;
  uint32_t node = 0;
  for (uint32_t name : names) {
    auto [it, inserted] =
        child_.try_emplace(static_cast<uint64_t>(node) << 32 | name, static_cast<uint32_t>(nodes_.size()));
    if (inserted) nodes_.push_back({node, name, 0});
    node = it->second;
  }
  nodes_[node].bytes += bytes;
}

void FoldedStacks::Write(const std::function<void(std::string_view chunk)>& write) const {
  // Children of each node as one array (first_child[n] .. first_child[n + 1]): nodes sorted by parent.
  std::vector<uint32_t> first_child(nodes_.size() + 1, 0);
  for (size_t n = 1; n < nodes_.size(); ++n) ++first_child[nodes_[n].parent + 1];
  for (size_t n = 1; n < first_child.size(); ++n) first_child[n] += first_child[n - 1];
  std::vector<uint32_t> children(nodes_.size() > 0 ? nodes_.size() - 1 : 0);
  std::vector<uint32_t> filled(first_child.begin(), first_child.end() - 1);
  for (size_t n = 1; n < nodes_.size(); ++n) children[filled[nodes_[n].parent]++] = static_cast<uint32_t>(n);
  std::string path;
  std::string chunk;
  WriteChildren(0, first_child, children, &path, &chunk, write);
  if (!chunk.empty()) write(chunk);
}

void FoldedStacks::WriteChildren(uint32_t node, const std::vector<uint32_t>& first_child,
                                 const std::vector<uint32_t>& children, std::string* path, std::string* chunk,
                                 const std::function<void(std::string_view chunk)>& write) const {
  std::vector<Band> bands;
  for (uint32_t i = first_child[node]; i < first_child[node + 1]; ++i) {
    const uint32_t child = children[i];
    const std::string_view name = names_[nodes_[child].name];
    if (nodes_[child].bytes > 0) bands.push_back({name, false, child});
    if (first_child[child] < first_child[child + 1]) bands.push_back({name, true, child});
  }
  std::sort(bands.begin(), bands.end(), BandLess);
  const size_t length = path->size();
  for (const Band& band : bands) {
    if (length != 0) path->push_back(';');
    path->append(band.name);
    if (band.descend) {
      WriteChildren(band.node, first_child, children, path, chunk, write);
    } else {
      fmt::format_to(std::back_inserter(*chunk), "{} {}\n", *path, nodes_[band.node].bytes);
      if (chunk->size() >= kChunkBytes) {
        write(*chunk);
        chunk->clear();
      }
    }
    path->resize(length);
  }
}

}  // namespace memtide
