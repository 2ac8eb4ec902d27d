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
  uint64_t mmap_current_bytes;    /* live accessible anonymous mappings made through mmap/mremap */
  uint64_t mmap_peak_bytes;
};

/* Live and peak heap bytes, like tracemalloc.get_traced_memory(). Exact for the calling thread's work;
 * other threads' unpublished deltas are included as far as they are visible (see README, "Exactness"). */
MEMTIDE_API void memtide_get_traced_memory(size_t *current, size_t *peak);

/* Sets the peak to the current value, like tracemalloc.reset_peak() (the GPU peaks too). */
MEMTIDE_API void memtide_reset_peak(void);

/* Records a labelled checkpoint (label truncated to 47 bytes) with the current and peak heap bytes, in the
 * segment and the report, and publishes the segment at once: a process killed right after a mark leaves
 * exactly that state behind. */
MEMTIDE_API void memtide_mark(const char *label);

/* Gives memory the allocator holds but does not use back to the OS now (glibc malloc_trim, mimalloc
 * mi_collect, jemalloc purge, tcmalloc release), whichever allocator the process uses. Returns the drop in
 * resident memory in bytes (0 if nothing came back), or -1 when the allocator has no way to release. */
MEMTIDE_API int64_t memtide_trim(void);

/* All counters at once. */
MEMTIDE_API void memtide_get_heap_stats(struct memtide_heap_stats *out);

/* With tracing on (MEMTIDE_TRACE=sample|full): writes the live heap blocks grouped by allocation stack to
 * `path` (a trace file: `memtide report`, `memtide diff` read it), like tracemalloc.take_snapshot().dump().
 * Returns 0, or an errno value: ENOTSUP when tracing is off, or why the file could not be written. */
MEMTIDE_API int memtide_snapshot(const char *path);

/* GPU memory, per device, counted at the CUDA driver layer (README, "GPU memory"). Bytes are what the
 * driver was asked for; `device` is the process's device ordinal (as cudaSetDevice and torch number them). */
struct memtide_gpu_stats {
  int32_t ordinal;        /* the process's device index, -1 if memtide has not seen the device */
  uint8_t uuid[16];       /* the device's UUID (nvidia-smi shows it as GPU-xxxxxxxx-xxxx-…) */
  uint32_t reserved;
  uint64_t current_bytes; /* live device memory: cuMemAlloc*, async and pool allocations, VMM, arrays */
  uint64_t peak_bytes;    /* high-water mark of current_bytes since start or the last reset_peak */
  uint64_t managed_current_bytes;
  uint64_t managed_peak_bytes;
  uint64_t pinned_host_current_bytes; /* cudaMallocHost / cudaHostAlloc / host-located VMM */
  uint64_t pinned_host_peak_bytes;
  uint64_t host_registered_bytes;     /* cudaHostRegister'ed host memory (also counted as heap or mmap) */
  uint64_t imported_bytes;            /* memory of other processes mapped through IPC or VMM handles */
  uint64_t array_bytes;               /* CUDA arrays, included in current_bytes */
  uint64_t pool_reserved_bytes;       /* sampled: memory the stream-ordered pools hold */
  uint64_t device_used_bytes;         /* sampled: the whole device, all processes (cuMemGetInfo) */
  uint64_t device_total_bytes;
  uint64_t allocations;
  uint64_t frees;
  uint64_t unknown_frees;             /* frees of pointers memtide never saw allocated: never subtracted */
};

/* Live and peak device memory of device `device`, like memtide_get_traced_memory. Returns 0, or -1 with
 * zeros when memtide has counted nothing on that device. */
MEMTIDE_API int memtide_get_gpu_traced_memory(int device, size_t *current, size_t *peak);

/* Every GPU counter of device `device`; 0, or -1 (and out->ordinal = -1) when memtide has not seen it. */
MEMTIDE_API int memtide_get_gpu_stats(int device, struct memtide_gpu_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMTIDE_MEMTIDE_H_ */
