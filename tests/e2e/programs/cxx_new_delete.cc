// End-to-end program: C++ allocation goes through malloc (libstdc++'s operator new calls malloc, aligned
// new calls aligned_alloc), so new/delete, new[]/delete[], nothrow and aligned new, and standard
// containers are all counted exactly. Output: "ok".
#include <malloc.h>

#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "e2e_check.h"

namespace {

struct Big {
  char bytes[12001];
};

struct alignas(256) Aligned {
  char bytes[14001];
};

// Checks that `allocate` made exactly one block of usable size malloc_usable_size(p) and that
// `release` gave it back exactly.
template <typename Allocate, typename Release>
void CheckOne(const char* what, Allocate allocate, Release release) {
  memtide_heap_stats before = E2eStats();
  void* p = allocate();
  memtide_heap_stats allocated = E2eStats();
  E2E_CHECK(p != nullptr, "%s: null", what);
  E2eEscape(p);
  size_t usable = malloc_usable_size(p);
  E2E_CHECK_HEAP_DELTA(before, allocated, usable, 1, 0, usable);
  release(p);
  memtide_heap_stats released = E2eStats();
  E2E_CHECK_HEAP_DELTA(allocated, released, 0 - static_cast<uint64_t>(usable), 0, 1, 0);
}

}  // namespace

int main() {
  E2eRequireApi();
  CheckOne(
      "new char[11001]", [] { return static_cast<void*>(new char[11001]); },
      [](void* p) { delete[] static_cast<char*>(p); });
  CheckOne(
      "new Big", [] { return static_cast<void*>(new Big()); }, [](void* p) { delete static_cast<Big*>(p); });
  CheckOne(
      "new (nothrow) char[13001]", [] { return static_cast<void*>(new (std::nothrow) char[13001]); },
      [](void* p) { delete[] static_cast<char*>(p); });
  CheckOne(
      "new Aligned (align_val_t 256)",
      [] {
        Aligned* a = new Aligned();
        E2E_CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0, "aligned new: %p not aligned",
                  static_cast<void*>(a));
        return static_cast<void*>(a);
      },
      [](void* p) { delete static_cast<Aligned*>(p); });
  CheckOne(
      "operator new(15001)", [] { return ::operator new(15001); }, [](void* p) { ::operator delete(p); });

  // A vector and a string own exactly one heap block each.
  memtide_heap_stats before = E2eStats();
  {
    std::vector<int> numbers(4001, 7);
    std::string text(16001, 'x');
    memtide_heap_stats filled = E2eStats();
    size_t usable = malloc_usable_size(numbers.data()) + malloc_usable_size(text.data());
    E2E_CHECK_HEAP_DELTA(before, filled, usable, 2, 0, usable);
  }
  memtide_heap_stats after = E2eStats();
  E2E_CHECK_EQ("containers destroyed: current_bytes", after.current_bytes, before.current_bytes);
  E2E_CHECK_EQ("containers destroyed: frees", after.frees - before.frees, 2);
  E2eWriteLine(1, "ok");
  return 0;
}
