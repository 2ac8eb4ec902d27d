/* End-to-end program: an executable that defines malloc itself, as rustc does (it links jemalloc), whose first
 * allocation comes before memtide's constructor (.preinit_array) and whose initialization calls mmap with its
 * own lock held, as jemalloc's does. memtide's mmap hook once resolved memtide's next symbols from there; that
 * resolution allocates (glibc's dlsym builds an error message for a symbol it does not find) through this
 * malloc, and the process hung on its own lock. The allocator: a bump arena behind a non-recursive mutex,
 * every entry point of the malloc family, free a no-op. Output: "ok blocks=N". */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

enum { kArenaBytes = 64 << 20, kHeader = 16 };
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char* g_arena;
static size_t g_used;
static size_t g_blocks;

static void* Allocate(size_t bytes, size_t alignment) {
  if (alignment < kHeader) alignment = kHeader;
  pthread_mutex_lock(&g_lock);
  if (g_arena == NULL) {
    void* arena = mmap(NULL, kArenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena != MAP_FAILED) g_arena = arena;
  }
  char* block = NULL;
  const size_t start = (g_used + kHeader + alignment - 1) & ~(alignment - 1);
  if (g_arena != NULL && bytes <= kArenaBytes && start <= kArenaBytes - bytes) {
    block = g_arena + start;
    ((size_t*)block)[-1] = bytes;
    g_used = start + bytes;
    ++g_blocks;
  }
  pthread_mutex_unlock(&g_lock);
  if (block == NULL) errno = ENOMEM;
  return block;
}

void* malloc(size_t bytes) { return Allocate(bytes, kHeader); }
void free(void* pointer) { (void)pointer; }
size_t malloc_usable_size(void* pointer) { return pointer != NULL ? ((size_t*)pointer)[-1] : 0; }
void* calloc(size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return Allocate(bytes, kHeader);  // never reused: the arena's fresh pages are zero
}
void* realloc(void* pointer, size_t bytes) {
  void* moved = Allocate(bytes, kHeader);
  if (moved != NULL && pointer != NULL) {
    const size_t old = malloc_usable_size(pointer);
    memcpy(moved, pointer, old < bytes ? old : bytes);
  }
  return moved;
}
int posix_memalign(void** out, size_t alignment, size_t bytes) {
  *out = Allocate(bytes, alignment);
  return *out != NULL ? 0 : ENOMEM;
}
void* aligned_alloc(size_t alignment, size_t bytes) { return Allocate(bytes, alignment); }
void* memalign(size_t alignment, size_t bytes) { return Allocate(bytes, alignment); }
void* valloc(size_t bytes) { return Allocate(bytes, 4096); }
void* pvalloc(size_t bytes) { return Allocate((bytes + 4095) & ~(size_t)4095, 4096); }

static void* g_early;
static void AllocateBeforeEveryConstructor(int argc, char** argv, char** envp) {
  (void)argc, (void)argv, (void)envp;
  g_early = malloc(11001);
}
__attribute__((section(".preinit_array"), used)) static void (*g_preinit)(int, char**, char**) =
    AllocateBeforeEveryConstructor;

int main(void) {
  if (g_early == NULL) {
    printf("the allocation before main failed\n");
    return 1;
  }
  char* text = strdup("own allocator");
  void* aligned = aligned_alloc(4096, 12001);
  if (text == NULL || aligned == NULL || ((size_t)aligned & 4095) != 0) {
    printf("allocation failed\n");
    return 1;
  }
  printf("ok blocks=%zu\n", g_blocks);
  return 0;
}
