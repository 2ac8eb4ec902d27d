// The preload never throws (DESIGN.md decision 9; built with -fno-exceptions). These definitions keep the
// statically linked libstdc++'s exception allocator (eh_alloc.o) out of libmemtide.so: its constructor
// would take a ~73 KiB emergency pool from the traced heap at load time, before memtide could guard it,
// and every traced process would show it as its own memory. Nothing in the preload reaches them; if
// something ever did, stopping loudly beats throwing through a C program's frames.
#include <stddef.h>
#include <unistd.h>

namespace {

[[noreturn]] void NeverThrows() {
  static const char kMessage[] = "memtide: fatal: an exception was thrown inside libmemtide.so\n";
  ssize_t ignored = write(2, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  _exit(134);
}

}  // namespace

extern "C" {
__attribute__((visibility("hidden"))) void* __cxa_allocate_exception(size_t) noexcept { NeverThrows(); }
__attribute__((visibility("hidden"))) void __cxa_free_exception(void*) noexcept { NeverThrows(); }
__attribute__((visibility("hidden"))) void* __cxa_allocate_dependent_exception() noexcept { NeverThrows(); }
__attribute__((visibility("hidden"))) void __cxa_free_dependent_exception(void*) noexcept { NeverThrows(); }
}
