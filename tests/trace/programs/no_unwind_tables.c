// Built with -fno-asynchronous-unwind-tables -fno-unwind-tables -fomit-frame-pointer (tests/trace/CMakeLists.txt):
// the unwinder finds no CFI for this frame and must cope (stop, or guess) without crashing.
#include <stdlib.h>

__attribute__((noinline)) void* AllocateWithoutUnwindTables(size_t bytes) {
  volatile char pad[64];
  pad[0] = 1;
  void* block = malloc(bytes);
  return pad[0] == 1 ? block : NULL;
}
