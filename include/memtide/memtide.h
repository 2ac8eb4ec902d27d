/* memtide's C API, exported by libmemtide.so (the preload), modelled on Python's tracemalloc.
 *
 * Every function is declared weak, so a program that calls them links and runs without the preload:
 * the symbols are then null. Check before calling:
 *
 *   #include <memtide/memtide.h>
 *   if (memtide_mark) memtide_mark("before_inference");
 *   size_t current = 0, peak = 0;
 *   if (memtide_get_traced_memory) memtide_get_traced_memory(&current, &peak);
 *
 * (or look them up with dlsym(RTLD_DEFAULT, "memtide_mark")). Under LD_PRELOAD=libmemtide.so the dynamic
 * linker binds the weak references to the preload's definitions.
 *
 * All functions are thread-safe, never allocate through the traced heap and never fail the caller.
 * Byte counts are the allocator's usable sizes (malloc_usable_size), summed over live blocks allocated
 * while memtide was loaded. */
#ifndef MEMTIDE_MEMTIDE_H_
#define MEMTIDE_MEMTIDE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMTIDE_API __attribute__((weak, visibility("default")))

struct memtide_heap_stats {
  uint64_t current_bytes;  /* live heap bytes, process-wide */
  uint64_t peak_bytes;     /* high-water mark of current_bytes since start or the last reset_peak */
  uint64_t allocations;    /* successful allocations (malloc, calloc, realloc's new block, memalign, …) */
  uint64_t frees;          /* frees of counted blocks (free, realloc's old block, realloc(p, 0)) */
  uint64_t allocated_bytes_total; /* usable bytes ever allocated */
  uint64_t mmap_current_bytes;    /* live anonymous mappings made through mmap/mremap */
  uint64_t mmap_peak_bytes;
};

/* Live and peak heap bytes, like tracemalloc.get_traced_memory(). Exact for the calling thread's work;
 * other threads' unpublished deltas are included as far as they are visible (see README, "Exactness"). */
MEMTIDE_API void memtide_get_traced_memory(size_t *current, size_t *peak);

/* Sets the peak to the current value, like tracemalloc.reset_peak(). */
MEMTIDE_API void memtide_reset_peak(void);

/* Records a labelled checkpoint (label truncated to 47 bytes) with the current and peak heap bytes, in the
 * segment and the report, and publishes the segment at once: a process killed right after a mark leaves
 * exactly that state behind. */
MEMTIDE_API void memtide_mark(const char *label);

/* All counters at once. */
MEMTIDE_API void memtide_get_heap_stats(struct memtide_heap_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMTIDE_MEMTIDE_H_ */
