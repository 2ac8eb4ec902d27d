// Frees everything it allocates, through C and C++ (iostream, containers, strings): the leak report must be
// empty apart from what memtide classifies as the C/C++ runtime's own blocks.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

int main() {
  std::map<std::string, std::vector<int>> table;
  for (int i = 0; i < 1000; ++i) table["key" + std::to_string(i)].assign(static_cast<size_t>(i % 50), i);
  size_t total = 0;
  for (const auto& entry : table) total += entry.second.size();
  table.clear();
  for (int i = 0; i < 1000; ++i) free(malloc(static_cast<size_t>(i) * 7 + 1));
  std::cout << "total " << total << std::endl;
  printf("done\n");
  return 0;
}
