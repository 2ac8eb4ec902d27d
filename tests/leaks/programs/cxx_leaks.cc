// C++ new and new[] leaks (20010 and 21011 x 2 bytes), next to new/delete pairs that must not be reported.
#include <cstddef>

struct Sentinel {
  char bytes[20010];
};

Sentinel* volatile g_object;
char* volatile g_array;

__attribute__((noinline)) void leak_new() { g_object = new Sentinel; }

__attribute__((noinline)) void leak_new_array() {
  for (int i = 0; i < 2; ++i) g_array = new char[21011];
}

__attribute__((noinline)) void new_and_delete() {
  delete new Sentinel;
  delete[] new char[21111];
}

int main() {
  new_and_delete();
  leak_new();
  leak_new_array();
  g_object = nullptr;
  g_array = nullptr;
  return 0;
}
