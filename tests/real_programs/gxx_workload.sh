# shellcheck shell=bash
# g++ workload (plain_vs_preload.sh g++): compiles a template-heavy C++ file (the driver, cc1plus, as,
# collect2 and ld all run under the preload) and prints the object's and executable's hashes, so the
# comparison checks the produced bytes, then runs the program. -Wall provokes one warning: diagnostics
# are compared too.
set -euo pipefail

cat > prog.cc <<'CC'
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

template <typename T>
struct Tree {
  T value;
  std::vector<std::unique_ptr<Tree>> children;
};

template <typename T>
std::unique_ptr<Tree<T>> Build(int depth, T value) {
  auto node = std::make_unique<Tree<T>>();
  node->value = value;
  if (depth > 0) {
    for (int i = 0; i < 3; ++i) node->children.push_back(Build(depth - 1, value + T(i)));
  }
  return node;
}

template <typename T>
T Sum(const Tree<T>& tree) {
  T total = tree.value;
  for (const auto& child : tree.children) total += Sum(*child);
  return total;
}

}  // namespace

int main() {
  int unused_on_purpose;  // -Wall: the warning text is part of the compared stderr
  std::map<std::string, std::vector<int>> groups;
  std::unordered_map<int, std::string> names;
  for (int i = 0; i < 20000; ++i) {
    groups["g" + std::to_string(i % 97)].push_back(i);
    names[i] = std::string(i % 50, 'x');
  }
  std::size_t total_names = 0;
  for (const auto& [id, name] : names) total_names += name.size();
  long long checksum = 0;
  for (const auto& [key, values] : groups) {
    checksum = checksum * 31 + std::accumulate(values.begin(), values.end(), 0LL) + key.size();
  }
  std::regex word("g([0-9]+)");
  int matches = 0;
  for (const auto& entry : groups) matches += std::regex_match(entry.first, word);
  std::cout << "groups " << groups.size() << " checksum " << checksum << " names " << total_names
            << " matches " << matches << " tree " << Sum(*Build(7, 1L)) << " double tree "
            << Sum(*Build(5, 0.5)) << "\n";
  return 0;
}
CC

g++ -std=c++17 -O2 -g -Wall -c prog.cc -o prog.o
sha256sum prog.o
g++ prog.o -o prog
sha256sum prog
./prog
