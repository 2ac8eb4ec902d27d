// Allocations from code the unwinder cannot describe: a JIT-style function written into an executable
// mapping at run time (no unwind info at all) and a function built without unwind tables (no_unwind_tables.c).
// Unwinding must not crash or hang; the blocks must still be counted and traced (the stack may be short).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void* AllocateWithoutUnwindTables(size_t bytes);  // no_unwind_tables.c

void* g_blocks[8];

int main(void) {
  g_blocks[0] = AllocateWithoutUnwindTables(21011);
#if defined(__x86_64__)
  // sub rsp,8; mov edi,21012; movabs rax,malloc; call rax; add rsp,8; ret
  uint8_t code[] = {0x48, 0x83, 0xEC, 0x08, 0xBF, 0x14, 0x52, 0x00, 0x00, 0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0,
                    0xFF, 0xD0, 0x48, 0x83, 0xC4, 0x08, 0xC3};
  void* (*target)(size_t) = malloc;
  memcpy(code + 11, &target, sizeof(target));
  void* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return 2;
  memcpy(page, code, sizeof(code));
  void* (*jitted)(void) = (void* (*)(void))page;
  for (int i = 1; i < 4; ++i) g_blocks[i] = jitted();
  printf("jit 3\n");
#else
  printf("jit 0\n");
#endif
  return 0;
}
