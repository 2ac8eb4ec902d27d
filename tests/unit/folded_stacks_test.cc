// Folded stacks (tracer/folded_stacks.h): the trie writes the same text as a sorted map of whole lines would,
// names that are prefixes of others and characters on both sides of ';' included, in chunks of any size.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "folded_stacks.h"

#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace memtide {
namespace {

// The reference: every line as one string in a std::map (the renderer's former implementation).
std::string ByMap(const std::vector<std::pair<std::vector<std::string>, int64_t>>& stacks) {
  std::map<std::string, int64_t> lines;
  for (const auto& [names, bytes] : stacks) {
    if (bytes <= 0) continue;
    std::string line;
    for (const std::string& name : names) line += (line.empty() ? "" : ";") + name;
    lines[line] += bytes;
  }
  std::string text;
  for (const auto& [line, bytes] : lines) text += line + " " + std::to_string(bytes) + "\n";
  return text;
}

std::string ByTrie(const std::vector<std::pair<std::vector<std::string>, int64_t>>& stacks, size_t* chunks) {
  FoldedStacks folded;
  for (const auto& [names, bytes] : stacks) {
    std::vector<uint32_t> ids;
    for (const std::string& name : names) ids.push_back(folded.NameId(name));
    folded.Add(ids, bytes);
  }
  std::string text;
  *chunks = 0;
  folded.Write([&](std::string_view chunk) {
    text += chunk;
    ++*chunks;
  });
  return text;
}

TEST_CASE("a name that is a prefix of another sorts as the whole lines do") {
  // '2' and ' ' sort before ';', 'z' after it.
  const std::vector<std::pair<std::vector<std::string>, int64_t>> stacks = {
      {{"main", "f"}, 1},       {{"main", "f", "g"}, 2}, {{"main", "f2"}, 3},     {{"main", "f z"}, 4},
      {{"main", "fz"}, 5},      {{"main", "f", "a"}, 6}, {{"main"}, 7},           {{"main", "f2", "x"}, 8},
      {{"main", "f"}, 10},      {{"other"}, 0},          {{"main", "g"}, -4},     {{"ma"}, 9},
  };
  size_t chunks = 0;
  const std::string text = ByTrie(stacks, &chunks);
  CHECK(text == ByMap(stacks));
  CHECK(text ==
        "ma 9\nmain 7\nmain;f 11\nmain;f z 4\nmain;f2 3\nmain;f2;x 8\nmain;f;a 6\nmain;f;g 2\nmain;fz 5\n");
  CHECK(chunks == 1);
}

TEST_CASE("random stacks over a small alphabet give the map's text, in chunks when it is long") {
  std::mt19937_64 random(20261127);
  const std::vector<std::string> alphabet = {"a", "a1", "a;b", "a b", "b", "ab", "a(", "a-", "a~", "aa", "["};
  for (int round = 0; round < 20; ++round) {
    std::vector<std::pair<std::vector<std::string>, int64_t>> stacks;
    const int count = round < 19 ? 300 : 60000;
    for (int i = 0; i < count; ++i) {
      std::vector<std::string> names;
      const int depth = 1 + static_cast<int>(random() % 6);
      for (int d = 0; d < depth; ++d) {
        std::string name = alphabet[random() % alphabet.size()];
        if (name == "a;b") name = "a:b";  // folded names never hold ';'
        names.push_back(name);
      }
      stacks.push_back({names, static_cast<int64_t>(random() % 1000) - 100});
    }
    size_t chunks = 0;
    const std::string text = ByTrie(stacks, &chunks);
    REQUIRE(text == ByMap(stacks));
    if (round == 19) CHECK(chunks >= 1);
  }
}

}  // namespace
}  // namespace memtide
