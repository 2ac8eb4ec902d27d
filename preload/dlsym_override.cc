// memtide's `dlsym` (DESIGN.md decision 6). CUDA runtimes and libraries reach the driver through
// dlsym(libcuda, "cuGetProcAddress_v2") or dlsym(libcuda, "cuMemAlloc_v2"); a preloaded definition of those
// names is never what dlsym on a handle returns, so memtide overrides dlsym itself and hands driver pointers
// to cuda_driver_hooks.cc. Every other lookup must mean exactly what it meant without memtide.
//
// Why a tail jump: glibc resolves RTLD_NEXT ("the next object after the caller") and RTLD_DEFAULT (the
// caller's scope: its namespace, its RTLD_LOCAL group) from dlsym's return address. If memtide's dlsym
// called glibc's, the caller would be memtide: a second interposer preloaded after memtide that forwards
// with dlsym(RTLD_NEXT, "f") would get its own f back and recurse forever, and a library opened RTLD_LOCAL
// would lose sight of its own group. So the entry point is a few instructions of assembly: it asks
// DlsymClassify whether the lookup needs memtide at all and, if not (every lookup but `cu*` names on a
// handle, or memtide's own exported `cu*` names), jumps to the real dlsym with the caller's return address
// still in place, as if memtide were not there. Only lookups that need memtide reach DlsymRoute, which
// returns to the caller itself.
//
// Exported unversioned (exports.map is an anonymous version script): ld.so accepts an unversioned definition
// for references bound to dlsym@GLIBC_2.2.5 (older binaries, CUDA's own libraries) and dlsym@GLIBC_2.34.
// The real dlsym is found with dlvsym(RTLD_NEXT, "dlsym", …): glibc's, or the next interposer's.
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>

#include <atomic>

#include "cuda_driver_hooks.h"
#include "real_symbols.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

using DlsymFunction = void* (*)(void*, const char*);

std::atomic<DlsymFunction> g_real_dlsym{nullptr};

// Runs at the first dlsym call of the process, possibly before any constructor (the first malloc resolves
// the allocator's symbols with dlsym). Allocation-free on glibc >= 2.34 (the first version matches).
__attribute__((noinline)) DlsymFunction ResolveRealDlsym() {
  // Without a dlsym nothing can be resolved, the allocator included: the process cannot run.
  const auto real = reinterpret_cast<DlsymFunction>(RequiredNextLoaderFunction("dlsym"));
  g_real_dlsym.store(real, std::memory_order_release);
  return real;
}

DlsymFunction RealDlsymFunction() {
  DlsymFunction real = g_real_dlsym.load(std::memory_order_acquire);
  return real != nullptr ? real : ResolveRealDlsym();
}

// Whether the code at `caller` belongs to the main link-map namespace (not one made with dlmopen, where
// memtide is not loaded and RTLD_DEFAULT must keep its meaning).
bool InBaseNamespace(void* caller) {
  ScopedGuard guard;
  int saved_errno = errno;
  Dl_info info;
  link_map* map = nullptr;
  Lmid_t namespace_id = LM_ID_BASE;
  bool base = dladdr1(caller, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 || map == nullptr ||
              dlinfo(map, RTLD_DI_LMID, &namespace_id) != 0 || namespace_id == LM_ID_BASE;
  errno = saved_errno;
  return base;
}

}  // namespace

// Never a tail call: glibc takes "the caller" of RTLD_NEXT and RTLD_DEFAULT from the return address, which
// must lie in memtide here (a sibling call from memtide_dlsym_route, entered by a jump, would hand it the
// program's).
__attribute__((noinline)) void* RealDlsym(void* handle, const char* name) {
  void* result = RealDlsymFunction()(handle, name);
  __asm__ volatile("" : : "r"(result) : "memory");
  return result;
}

}  // namespace memtide::internal

using memtide::internal::RealDlsym;

// Called by the entry point below with dlsym's arguments and the caller's return address. Returns the real
// dlsym to jump to (the lookup is not memtide's business), or null: DlsymRoute handles it. Allocation-free
// except the first call (ResolveRealDlsym). Must stay cheap: every dlsym of the process passes here.
extern "C" __attribute__((visibility("hidden"), used)) void* memtide_dlsym_classify(void* handle, const char* name,
                                                                                    void* caller) {
  using namespace memtide::internal;  // NOLINT
  auto real = reinterpret_cast<void*>(RealDlsymFunction());
  if (name == nullptr || name[0] != 'c' || name[1] != 'u') return real;
  if (handle == RTLD_NEXT) {
    // From an object before memtide in the search order (the executable), "next" includes memtide's
    // exported driver names: right while a driver is loaded (memtide forwards to it), wrong without one.
    return IsWrappedDriverName(name) && !DriverLoaded() ? nullptr : real;
  }
  if (handle == RTLD_DEFAULT) {
    // memtide's own exports are in every base-namespace scope, so only they can be answered without the
    // caller's identity.
    return IsWrappedDriverName(name) && InBaseNamespace(caller) ? nullptr : real;
  }
  return nullptr;
}

// A `cu*` lookup on a handle (whose result does not depend on the caller), or one of memtide's exported
// names through RTLD_DEFAULT, or through RTLD_NEXT while no driver is loaded. Entered by a jump, so it
// returns straight to dlsym's caller.
extern "C" __attribute__((visibility("hidden"), used)) void* memtide_dlsym_route(void* handle, const char* name,
                                                                                 void* caller) {
  using namespace memtide::internal;  // NOLINT
  // RTLD_NEXT for one of memtide's exported names while no driver is loaded: whatever lies past memtide,
  // as if it were not there (normally nothing, and the lookup fails with glibc's dlerror message).
  if (handle == RTLD_NEXT) return RealDlsym(RTLD_NEXT, name);
  NoteDriverLookupThroughDlsym();
  void* result = handle == RTLD_DEFAULT ? DriverWrapperForName(name) : RealDlsym(handle, name);
  if (result == nullptr) return nullptr;  // the real lookup failed and set dlerror, as without memtide
  if (IsDriverWrapper(result)) {
    // memtide's export itself (RTLD_DEFAULT, dlopen(NULL)): right only if a real definition exists behind
    // it. If none is loaded, fail as the lookup would have without memtide (this sets dlerror).
    if (ConfirmExportedWrapper(result) != nullptr) return result;
    return RealDlsym(RTLD_NEXT, name);
  }
  if (IsDriverCaller(caller)) return result;  // the driver's own lookups stay its own
  return SubstituteDriverPointer(result, name);
}

// The entry point. x86-64: rdi = handle, rsi = name, [rsp] = the caller's return address.
// aarch64: x0 = handle, x1 = name, x30 = the caller's return address.
#if defined(__x86_64__)
__asm__(R"(
  .text
  .globl dlsym
  .type dlsym, @function
  .p2align 4
dlsym:
  .cfi_startproc
  .byte 0xf3, 0x0f, 0x1e, 0xfa  /* endbr64 (a no-op without CET) */
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  movq 16(%rsp), %rdx
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  call memtide_dlsym_classify
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  testq %rax, %rax
  jz 1f
  jmpq *%rax                     /* the real dlsym sees our caller's return address */
1:
  movq (%rsp), %rdx
  jmp memtide_dlsym_route
  .cfi_endproc
  .size dlsym, .-dlsym
)");
#elif defined(__aarch64__)
__asm__(R"(
  .text
  .globl dlsym
  .type dlsym, %function
  .p2align 4
dlsym:
  .cfi_startproc
  hint #34                       /* bti c (a no-op without BTI) */
  stp x29, x30, [sp, #-32]!
  .cfi_def_cfa_offset 32
  .cfi_offset 29, -32
  .cfi_offset 30, -24
  mov x29, sp
  stp x0, x1, [sp, #16]
  mov x2, x30
  bl memtide_dlsym_classify
  mov x16, x0
  ldp x0, x1, [sp, #16]
  ldp x29, x30, [sp], #32
  .cfi_restore 29
  .cfi_restore 30
  .cfi_def_cfa_offset 0
  cbz x16, 1f
  br x16                         /* the real dlsym sees our caller's return address in x30 */
1:
  mov x2, x30
  b memtide_dlsym_route
  .cfi_endproc
  .size dlsym, .-dlsym
)");
#else
#error "memtide's dlsym override needs a tail-jump entry point for this architecture"
#endif
