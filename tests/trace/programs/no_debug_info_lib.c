// A library built without debug info (and, as every build here, with a GNU build id): the leak text names its
// frames from the symbol table, and finds no debug info for it on this machine.
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"), noinline)) void LeakWithoutDebugInfo(void) {
  void* lost = malloc(7003);
  memset(lost, 3, 7003);
}
