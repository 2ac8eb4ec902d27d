// memtide's `dlopen`, for RTLD_DEEPBIND. A library opened with RTLD_DEEPBIND looks its symbols up in itself
// and its own dependencies before the global scope, so its malloc and free are libc's, not memtide's: what it
// allocates is not counted, and when the rest of the program frees it, the count drops by a block it never
// had (or, the other way round, grows by one that is never taken off). heaptrack clears the flag. memtide
// says so in one line, and clears it only when asked (MEMTIDE_STRIP_DEEPBIND=1): the flag exists to keep a
// library's other symbols apart from the program's (a second copy of a library, another libstdc++), and
// clearing it may break exactly that.
//
// dlopen depends on its caller: glibc takes the caller's namespace and its RUNPATH (for a bare library
// name) from the return address. So, as for dlsym (dlsym_override.cc), the entry point is a few instructions
// of assembly that hand the mode to memtide_dlopen_prepare and then jump to the real dlopen, with the
// caller's return address still in place. Exported unversioned (exports.map): references bound to
// dlopen@GLIBC_2.2.5 and dlopen@GLIBC_2.34 both reach it.
#include <dlfcn.h>
#include <errno.h>

#include <atomic>

#include "lifecycle.h"
#include "log.h"
#include "real_symbols.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

std::atomic<void*> g_real_dlopen{nullptr};
std::atomic<bool> g_deepbind_reported{false};

void* RealDlopen() {
  void* real = g_real_dlopen.load(std::memory_order_acquire);
  if (real != nullptr) return real;
  real = RequiredNextLoaderFunction("dlopen");  // nothing to jump to otherwise
  g_real_dlopen.store(real, std::memory_order_release);
  return real;
}

}  // namespace
}  // namespace memtide::internal

// Called by the entry point with dlopen's file and a pointer to its mode (the entry point's saved copy, which
// the real dlopen then receives). Returns the real dlopen. Allocation-free; every dlopen of the process
// passes here.
extern "C" __attribute__((visibility("hidden"), used)) void* memtide_dlopen_prepare(const char* file, int* mode) {
  using namespace memtide::internal;  // NOLINT
  if ((*mode & RTLD_DEEPBIND) != 0 && tls_state.guard_depth == 0) {
    const int saved_errno = errno;
    const bool strip = RuntimeOptions().strip_deepbind != 0;
    if (strip) *mode &= ~RTLD_DEEPBIND;
    if (!g_deepbind_reported.exchange(true, std::memory_order_relaxed)) {
      ScopedGuard guard;
      if (strip) {
        Log("dlopen({}, RTLD_DEEPBIND): RTLD_DEEPBIND cleared (MEMTIDE_STRIP_DEEPBIND=1), so the library's "
            "malloc and free are counted; later such calls are not reported", file != nullptr ? file : "NULL");
      } else {
        Log("dlopen({}, RTLD_DEEPBIND): the library's own malloc and free bypass memtide, so heap counts and "
            "leaks are off by what it allocates or frees across that boundary; MEMTIDE_STRIP_DEEPBIND=1 clears "
            "the flag; later such calls are not reported", file != nullptr ? file : "NULL");
      }
    }
    errno = saved_errno;
  }
  return RealDlopen();
}

// The entry point. x86-64: rdi = file, esi = mode, [rsp] = the caller's return address.
// aarch64: x0 = file, w1 = mode, x30 = the caller's return address.
#if defined(__x86_64__)
__asm__(R"(
  .text
  .globl dlopen
  .type dlopen, @function
  .p2align 4
dlopen:
  .cfi_startproc
  .byte 0xf3, 0x0f, 0x1e, 0xfa  /* endbr64 (a no-op without CET) */
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  movq %rsp, %rsi                /* the saved mode, which the call may change */
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  call memtide_dlopen_prepare
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  jmpq *%rax                     /* the real dlopen sees our caller's return address */
  .cfi_endproc
  .size dlopen, .-dlopen
)");
#elif defined(__aarch64__)
__asm__(R"(
  .text
  .globl dlopen
  .type dlopen, %function
  .p2align 4
dlopen:
  .cfi_startproc
  hint #34                       /* bti c (a no-op without BTI) */
  stp x29, x30, [sp, #-32]!
  .cfi_def_cfa_offset 32
  .cfi_offset 29, -32
  .cfi_offset 30, -24
  mov x29, sp
  stp x0, x1, [sp, #16]
  add x1, sp, #24                /* the saved mode, which the call may change */
  bl memtide_dlopen_prepare
  mov x16, x0
  ldp x0, x1, [sp, #16]
  ldp x29, x30, [sp], #32
  .cfi_restore 29
  .cfi_restore 30
  .cfi_def_cfa_offset 0
  br x16                         /* the real dlopen sees our caller's return address in x30 */
  .cfi_endproc
  .size dlopen, .-dlopen
)");
#else
#error "memtide's dlopen override needs a tail-jump entry point for this architecture"
#endif
