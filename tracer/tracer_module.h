// The contract between the always-loaded preload and the tracer module (libmemtide_tracer.so), which the
// preload dlopens only when MEMTIDE_TRACE is sample or full (DESIGN.md decision 8). Plain C types only: the
// two sides are built together but link different C++ runtimes (the preload's libstdc++ is static and hidden).
//
// Threading contract: every entry is called with the calling thread's reentrancy guard held (so whatever the
// module allocates goes to the next allocator, untraced and uncounted). on_allocation/on_free run inside the
// program's malloc/free on any thread, concurrently; they may take the module's own short locks but must never
// call back into the preload, never unwind while holding a lock, never block on I/O. write_snapshot runs on the
// monitor thread or the thread calling memtide_snapshot(), or for them on the preload's thread with a descriptor
// table of its own (preload/private_descriptors.h: it must not write to the program's descriptors, standard
// error included, and says what went wrong in `message` instead); at_exit on the exiting thread.
#ifndef MEMTIDE_TRACER_TRACER_MODULE_H_
#define MEMTIDE_TRACER_TRACER_MODULE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMTIDE_TRACER_ABI_VERSION 5
#define MEMTIDE_TRACER_ENTRY "memtide_tracer_start"

enum { kMemtideTraceOff = 0, kMemtideTraceSample = 1, kMemtideTraceFull = 2 };

struct MemtideTracerConfig {
  uint32_t abi_version;        // MEMTIDE_TRACER_ABI_VERSION
  int32_t mode;                // kMemtideTraceSample or kMemtideTraceFull
  int64_t sample_mean_bytes;   // sample mode: mean of the geometric countdown over usable bytes
  int32_t max_frames;          // at most 64
  int32_t fast_unwind;         // nonzero: the cached-rule stack walk (tracer/cfa_unwinder.h) where it applies
  int32_t leak_report_top;     // stacks printed to the log at exit (0: none); leaks are still in the file
  const char* trace_file;      // where at_exit writes the trace ("%p" = pid); empty: no file
  const char* suppressions;    // LeakSanitizer-format file ("leak:PATTERN" lines); empty: none
  const char* segment_dir;     // MEMTIDE_DIR, where write_snapshot puts the files it is asked for
  // Frames whose return address lies in [skip_begin, skip_end) are memtide's own (libmemtide.so) and are
  // dropped from the inner end of every stack; the module also drops its own.
  uintptr_t skip_begin;
  uintptr_t skip_end;
  // The preload's logger: one line, no newline, prefixed "memtide: " by the preload. Allocation-free.
  void (*log_line)(const char* line);
  // Writes text as is (several lines, e.g. the leak report at exit) to the same place as log_line.
  void (*write_text)(const char* text, size_t length);
  // The program's successful dlclose calls so far (the preload's dlclose hook), read with relaxed atomic
  // loads: when it moves, code may have been unloaded and its addresses taken by other code.
  const uint64_t* dlclose_calls;
  // Calls function on this thread with the reentrancy guard lifted, so that its allocations and frees are
  // counted and traced like the program's. Only the exit-cleanup probe's throwaway child uses it
  // (tracer/exit_cleanup_probe.h), to see which blocks the C runtime's own cleanup frees. Null: no probe
  // (MEMTIDE_EXIT_CLEANUP_PROBE=0), the runtime's blocks are then told apart by their stacks.
  void (*run_traced)(void (*function)(void));
  // Nonzero: full mode may queue its table work for the preload's bookkeeping thread, which then calls
  // drain_bookkeeping (tracer/bookkeeping_queue.h). Zero: every thread keeps the tables itself.
  int32_t bookkeeping_thread;
};

// One per thread, owned by the preload (initial-exec TLS, zeroed for a new thread): the module's per-thread
// words, so the hot path needs no TLS of the module's own (a dlopened module's TLS goes through __tls_get_addr,
// which may allocate).
struct MemtideTracerThread {
  uint64_t rng_state;        // sample mode's generator; zero until the thread's first draw
  int64_t unflushed_bytes;   // traced bytes this thread has not yet added to the shared total
  void* walk_memo;           // the module's record of the thread's last stack walk (freed at thread exit)
  int32_t flush_always;      // nonzero once nothing would flush the thread's bytes later (after its exit)
};

struct MemtideTracerApi {
  uint32_t abi_version;
  // A block the preload decided to trace (full mode: every block; sample mode: the countdown ran out), or
  // pointer NULL: only draw the thread's first countdown, trace nothing.
  // `requested` is what the program asked for, `usable` what the allocator gave. Returns the thread's next
  // countdown in usable bytes (full mode: 0). `thread` is the calling thread's own (its rng_state is zero on
  // the thread's first call). Sets *tracked when the block is now in the live table.
  // Sample mode: the countdown is floor(distance to the next sample point) from the end of this block; the
  // preload lowers it by each block's usable size and calls again when it drops below zero (not at zero:
  // that is what makes p(u) = 1 - exp(-u/mean) exact, tracer/sampling.h). A first call with a non-null pointer
  // and rng_state zero is also unbiased: the module then samples the block only if the first point falls in it.
  int64_t (*on_allocation)(void* pointer, size_t requested, size_t usable, struct MemtideTracerThread* thread,
                           int* tracked);
  // Called before the real free of any block the preload may have traced (in sample mode only those that hit
  // the preload's filter of sampled addresses). Returns 1 if it was tracked (full mode, while the bookkeeping
  // queue takes the calling thread's changes: 1 once queued, tracked or not; the preload reads it in sample
  // mode only).
  int (*on_free)(void* pointer, struct MemtideTracerThread* thread);
  // A thread ends: its unflushed bytes join the shared total and its walk memo is freed.
  void (*on_thread_exit)(struct MemtideTracerThread* thread);
  // Writes the live allocations by stack to a new file in segment_dir and puts its name (no folder) in
  // `name`. Returns 0, or an errno value with a one-line reason in `message`. `thread` is the caller's: its
  // unflushed bytes are added first.
  int (*write_snapshot)(const char* path_or_null, char* name, size_t name_size, char* message, size_t message_size,
                        struct MemtideTracerThread* thread);
  // Process end (return from main, exit(), _exit()): writes the trace file and the leak text. exit_code is -1
  // when unknown (exit()/return). `thread` is the exiting thread's.
  void (*at_exit)(int32_t exit_code, struct MemtideTracerThread* thread);
  // fork(): prepare takes every lock of the module; parent releases them; child re-creates them (one thread left).
  // before_fork waits for a snapshot or exit trace being written by another thread to finish.
  void (*before_fork)(void);
  void (*after_fork_parent)(void);
  void (*after_fork_child)(void);
  // The bookkeeping thread's work: applies up to a batch of queued table changes and returns how many, or -1
  // when nothing is or ever will be queued again (the thread may end). Under the guard, like the others.
  int64_t (*drain_bookkeeping)(void);
};

// Exported by libmemtide_tracer.so. Returns NULL (after logging one line) if the module cannot work.
typedef const struct MemtideTracerApi* (*MemtideTracerStartFunction)(const struct MemtideTracerConfig* config);

#ifdef __cplusplus
}
#endif

#endif  // MEMTIDE_TRACER_TRACER_MODULE_H_
