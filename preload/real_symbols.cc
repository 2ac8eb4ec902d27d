// Resolution of the next allocator's symbols and the bootstrap arena (DESIGN.md decision 1).
// Runs inside the first hook call of the process; allocation-free apart from what dlsym does, which the
// bootstrap arena serves. Must not call anything that is itself interposed without the guard.
#include "real_symbols.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "heap_counters.h"
#include "thread_state.h"

namespace memtide::internal {

RealSymbols g_real;
bool g_real_ready = false;
bool g_next_is_glibc = false;
alignas(64) char g_bootstrap[kBootstrapBytes];

namespace {

enum : int { kUnresolved = 0, kResolving = 1, kResolved = 2 };
std::atomic<int> g_resolve_state{kUnresolved};
__thread bool tls_resolving __attribute__((tls_model("initial-exec")));

// The arena is 256 KiB: dlsym needs a few hundred bytes; libraries that allocate from their constructors
// before the real symbols are known (rare) get the rest.
constexpr size_t kBootstrapHeader = 16;
std::atomic<size_t> g_bootstrap_used{0};

// "memtide: fatal: <lookup> found no <name><rest>" on standard error, then exit 127: a symbol memtide must
// forward to is missing and the process cannot run. Allocation-free.
[[noreturn]] void ExitMissing(const char* lookup, const char* name, const char* rest) {
  static const char kPrefix[] = "memtide: fatal: ";
  ssize_t ignored = write(2, kPrefix, sizeof(kPrefix) - 1);
  ignored = write(2, lookup, strlen(lookup));
  ignored = write(2, " found no ", 10);
  ignored = write(2, name, strlen(name));
  ignored = write(2, rest, strlen(rest));
  (void)ignored;
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

// Without the next malloc there is nothing to forward to.
void AbortMissing(const char* name) { ExitMissing("dlsym(RTLD_NEXT)", name, "\n"); }

template <typename F>
void Resolve(F*& slot, const char* name, bool required) {
  slot = reinterpret_cast<F*>(dlsym(RTLD_NEXT, name));
  if (slot == nullptr && required) AbortMissing(name);
}

struct ObjectSearch {
  uintptr_t address;
  LoadedObject found;
};

int FindObjectContaining(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<ObjectSearch*>(data);
  bool contains = false;
  LoadedObject object{info->dlpi_phdr, info->dlpi_name, 0, 0};
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD) continue;
    const uintptr_t begin = info->dlpi_addr + header.p_vaddr;
    if (search->address - begin < header.p_memsz) contains = true;
    if ((header.p_flags & PF_X) == 0) continue;
    if (object.code_begin == 0 || begin < object.code_begin) object.code_begin = begin;
    if (begin + header.p_memsz > object.code_end) object.code_end = begin + header.p_memsz;
  }
  if (!contains) return 0;
  search->found = object;
  return 1;
}

template <typename F>
void KeepIfFromAllocator(F*& slot, const void* allocator) {
  if (slot != nullptr && LoadedObjectOf(reinterpret_cast<const void*>(slot)).identity != allocator) slot = nullptr;
}

void ResolveAll() {
  RealSymbols& r = g_real;
  Resolve(r.malloc, "malloc", true);
  Resolve(r.free, "free", true);
  Resolve(r.calloc, "calloc", true);
  Resolve(r.realloc, "realloc", true);
  Resolve(r.reallocarray, "reallocarray", false);
  Resolve(r.posix_memalign, "posix_memalign", true);
  Resolve(r.aligned_alloc, "aligned_alloc", false);
  Resolve(r.memalign, "memalign", false);
  Resolve(r.valloc, "valloc", false);
  Resolve(r.pvalloc, "pvalloc", false);
  Resolve(r.malloc_usable_size, "malloc_usable_size", true);
  Resolve(r.free_sized, "free_sized", false);
  Resolve(r.free_aligned_sized, "free_aligned_sized", false);
  Resolve(r.mmap, "mmap", true);
  Resolve(r.mmap64, "mmap64", false);
  Resolve(r.munmap, "munmap", true);
  Resolve(r.mremap, "mremap", true);
  Resolve(r.mprotect, "mprotect", true);
  Resolve(r.pkey_mprotect, "pkey_mprotect", false);
  Resolve(r.exit_now, "_exit", true);
  Resolve(r.exit_now_c99, "_Exit", false);
  if (r.mmap64 == nullptr) r.mmap64 = r.mmap;
  if (r.exit_now_c99 == nullptr) r.exit_now_c99 = r.exit_now;
  // An optional entry point the next allocator lacks resolves to a later library's (glibc's pvalloc under
  // jemalloc): its blocks would belong to another heap, and the next allocator's free and usable size would
  // crash on them. Keep only the next allocator's own; the hooks emulate the rest with posix_memalign/realloc.
  const void* allocator = LoadedObjectOf(reinterpret_cast<const void*>(r.malloc)).identity;
  KeepIfFromAllocator(r.reallocarray, allocator);
  KeepIfFromAllocator(r.aligned_alloc, allocator);
  KeepIfFromAllocator(r.memalign, allocator);
  KeepIfFromAllocator(r.valloc, allocator);
  KeepIfFromAllocator(r.pvalloc, allocator);
  KeepIfFromAllocator(r.free_sized, allocator);
  KeepIfFromAllocator(r.free_aligned_sized, allocator);
}

// Whether the next malloc is glibc's, by the library that defines it. No allocation, no syscall: every process
// pays for this at start. The chunk-header layout itself is checked later, off the start-up path.
bool NextAllocatorIsGlibc() {
  const LoadedObject object = LoadedObjectOf(reinterpret_cast<const void*>(g_real.malloc));
  if (object.identity == nullptr || object.path == nullptr) return false;
  const char* base = strrchr(object.path, '/');
  base = base != nullptr ? base + 1 : object.path;
  return strncmp(base, "libc.so", 7) == 0;
}

}  // namespace

void* NextLoaderFunction(const char* name) {
  static constexpr const char* kVersions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"};
  for (const char* version : kVersions) {
    if (void* found = dlvsym(RTLD_NEXT, name, version)) return found;
  }
  return nullptr;
}

void* RequiredNextLoaderFunction(const char* name) {
  void* found = NextLoaderFunction(name);
  if (found == nullptr) ExitMissing("dlvsym(RTLD_NEXT)", name, " past memtide\n");
  return found;
}

LoadedObject LoadedObjectOf(const void* address) {
  ObjectSearch search{reinterpret_cast<uintptr_t>(address), {nullptr, nullptr, 0, 0}};
  if (address != nullptr) dl_iterate_phdr(FindObjectContaining, &search);
  return search.found;
}

bool EnsureRealSymbols() {
  if (MEMTIDE_PREDICT_TRUE(g_resolve_state.load(std::memory_order_acquire) == kResolved)) return true;
  if (tls_resolving) return false;
  int expected = kUnresolved;
  if (g_resolve_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) {
    int saved_errno = errno;
    tls_resolving = true;
    {
      ScopedGuard guard;
      ResolveAll();
    }
    tls_resolving = false;
    g_real_ready = true;
    {
      ScopedGuard guard;
      g_next_is_glibc = NextAllocatorIsGlibc();  // implies g_real_ready: the hot path checks only this
    }
    g_resolve_state.store(kResolved, std::memory_order_release);
    errno = saved_errno;
    return true;
  }
  // Another thread is resolving (only possible if threads exist before the first allocation).
  while (g_resolve_state.load(std::memory_order_acquire) != kResolved) sched_yield();
  return true;
}

const char* MallocShadowingObject() {
  void* called = dlsym(RTLD_DEFAULT, "malloc");
  // An executable that takes malloc's address without defining it (python3, node) exports an undefined
  // malloc whose value is its canonical PLT entry, the stub through which it calls the real one, and dlsym
  // returns that stub. Only a defined symbol is a malloc of the object's own.
  Dl_info info{};
  ElfW(Sym)* symbol = nullptr;
  if (called == nullptr || dladdr1(called, &info, reinterpret_cast<void**>(&symbol), RTLD_DL_SYMENT) == 0 ||
      symbol == nullptr || symbol->st_shndx == SHN_UNDEF) {
    return nullptr;
  }
  const LoadedObject defining = LoadedObjectOf(called);
  const LoadedObject self = LoadedObjectOf(reinterpret_cast<const void*>(&MallocShadowingObject));
  if (defining.identity == nullptr || defining.identity == self.identity) return nullptr;
  return defining.path != nullptr ? defining.path : "";
}

bool RealSymbolsResolved() { return g_resolve_state.load(std::memory_order_acquire) == kResolved; }

void* BootstrapAllocate(size_t bytes, size_t alignment) {
  if (alignment < kBootstrapHeader) alignment = kBootstrapHeader;
  size_t used = g_bootstrap_used.load(std::memory_order_relaxed);
  for (;;) {
    uintptr_t base = reinterpret_cast<uintptr_t>(g_bootstrap);
    uintptr_t start = (base + used + kBootstrapHeader + alignment - 1) & ~(uintptr_t{alignment} - 1);
    size_t end = start - base + bytes;
    if (bytes > kBootstrapBytes || end > kBootstrapBytes) {
      errno = ENOMEM;
      return nullptr;
    }
    if (g_bootstrap_used.compare_exchange_weak(used, end, std::memory_order_relaxed)) {
      reinterpret_cast<size_t*>(start)[-1] = bytes;
      return reinterpret_cast<void*>(start);
    }
  }
}

size_t BootstrapBlockSize(const void* pointer) { return static_cast<const size_t*>(pointer)[-1]; }

bool VerifyGlibcChunkHeaders() {
  if (!g_next_is_glibc) return true;
  ScopedGuard guard;
  // Small (tcache), large (bins) and mmapped chunks read differently.
  static constexpr size_t kProbeSizes[] = {1, 24, 100, 1000, 5000, 70000, 300000};
  for (size_t size : kProbeSizes) {
    void* block = g_real.malloc(size);
    if (block == nullptr) continue;
    bool same = GlibcUsableSize(block) == g_real.malloc_usable_size(block);
    g_real.free(block);
    if (!same) {
      g_next_is_glibc = false;
      return false;
    }
  }
  return true;
}

}  // namespace memtide::internal
