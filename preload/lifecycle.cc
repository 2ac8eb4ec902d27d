// Start, fork and exit of the traced process (DESIGN.md decisions 4 and 8).
//
// Start: the constructor reads the options and starts the monitor thread; the symbols may already have been
// resolved by an earlier hook call. Nothing else: a process that lives a few milliseconds pays for one
// getenv scan and one thread.
// Fork: the child has one thread and the parent's heap. It keeps the inherited live bytes as its current
// (they are live in its address space), restarts peak and counts, drops the parent's segment mapping
// (never writes to it) and starts its own monitor thread, which creates its own segment.
// Exit: the destructor runs late in exit (after atexit handlers and the program's destructors, as _dl_fini
// finalizes the preload last), so late frees are counted; it writes the final state and removes the file
// unless kept. _exit/_Exit are interposed for the same. A vfork child shares our memory and pid-less state:
// only the process that created the segment finalizes it.
#include "lifecycle.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bookkeeping_thread.h"
#include "credential_hooks.h"
#include "cuda_driver_hooks.h"
#include "heap_counters.h"
#include "log.h"
#include "memory_policy.h"
#include "memtide/segment.h"
#include "mmap_accounting.h"
#include "monitor_thread.h"
#include "private_descriptors.h"
#include "proc_stats.h"
#include "real_symbols.h"
#include "segment_writer.h"
#include "thread_state.h"
#include "tracer_loader.h"

#define MEMTIDE_EXPORT extern "C" __attribute__((visibility("default")))

namespace memtide::internal {
namespace {

Options g_options;
int64_t g_start_ns = 0;
pid_t g_initialized_pid = 0;

void ReportOptionProblem(const char* line, void*) { Log("{}", line); }

void LogOption(const char* env, const PathValue& value) { Log("option {}={}", env, value.text); }
void LogOption(const char* env, int64_t value) { Log("option {}={}", env, value); }

void LogOptions() {
#define MEMTIDE_OPTION(field, env, kind, def, min, max, doc) LogOption(env, g_options.field);
#include "options.def"
#undef MEMTIDE_OPTION
}

void BeforeFork() {
  LockPublishing();
  TracerBeforeFork();
}
void AfterForkInParent() {
  TracerAfterForkInParent();
  UnlockPublishing();
}
void AfterForkInChild() {
  ScopedGuard guard;
  TracerAfterForkInChild();
  ResetPublishingInChild();
  ResetMmapLockInChild();
  ResetHeapCountersInChild();
  ResetMmapPeak();
  ForgetSegmentInChild();
  ResetMemoryPolicyInChild();
  ResetCudaHooksInChild();
  ResetCredentialHooksInChild();
  ResetMonitorInChild();
  ResetBookkeepingThreadInChild();
  ResetPrivateDescriptorsInChild();
  g_start_ns = MonotonicNs();
  g_initialized_pid = getpid();
  StartMonitorThread();
}

// Final publish. `exit_code` is known for _exit/_Exit, -1 for exit()/return from main.
void Finalize(int32_t exit_code) {
  if (g_initialized_pid == 0 || getpid() != g_initialized_pid) return;  // vfork child, or never started
  ScopedGuard guard;
  TracerAtExit(exit_code);
  static bool finalized = false;
  StopMonitorPublishing();
  FlushCurrentThread();
  bool keep = KeepSegmentAtExit();
  if (!TryLockPublishingFor(200)) return;  // the holder died mid-publish: the last state stays
  // A process that ends before it had a segment, and whose segment nobody asked to keep, leaves nothing
  // behind and pays nothing more: most processes in a container are like that.
  bool write = !finalized && (keep || SegmentExists());
  if (!write) RemoveSegmentOfEarlierImage(g_options.dir.text);  // no-op once the monitor has done it
  UnlockPublishing();
  if (!write) return;
  SampleProcessStats();
  LockPublishing();
  if (!finalized) {
    finalized = true;
    if (keep) CreateSegment(g_options.dir.text);
    PublishSegment(kSegmentStateExited, exit_code);
    if (!keep) RemoveSegmentFile();
  }
  UnlockPublishing();
}

void LeakCheckAtExit() {
  if (g_initialized_pid != getpid()) return;  // a vfork child calling exit
  TracerAtExit(-1);
}

__attribute__((constructor)) void InitializeMemtide() {
  ScopedGuard guard;
  EnsureRealSymbols();
  g_start_ns = MonotonicNs();
  OpenLog(getenv("MEMTIDE_LOG"));
  int problems = LoadOptions(&g_options, ReportOptionProblem, nullptr);
  if (problems > 0 && g_options.strict) {
    Log("MEMTIDE_STRICT=1: stopping on the {} problem(s) above", problems);
    g_real.exit_now(1);
  }
  SetVerboseLogging(g_options.verbose != 0);
  if (g_options.verbose) LogOptions();
  if (const char* shadowing = MallocShadowingObject()) {
    NoteHeapHooksBypassed();
    const bool executable = shadowing[0] == '\0';
    Log("malloc here is {}'s, not libmemtide.so's ({}): the heap it manages is neither counted nor traced, only "
        "its mappings count, as mmap memory", executable ? "the executable" : shadowing,
        executable ? "the program links its own allocator" : "put libmemtide.so first in LD_PRELOAD");
  }
  ConfigureMemoryPolicy(g_options);
  SetFileWorkRunner(RunWithPrivateDescriptors);  // once the monitor has started that thread
  SetLogFileWorkRunner(RunWithPrivateDescriptors);
  g_initialized_pid = getpid();
  pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
  StartTracer(g_options);
  // The leak check runs as an exit handler registered now, before main: handlers run in reverse order, so it
  // comes after every atexit handler and C++ static destructor the program registers (whose frees it must
  // see), while the tracer module and its libraries are still intact (they are finalized after all handlers).
  if (RunningTracer() != nullptr) atexit(LeakCheckAtExit);
  StartMonitorThread();
}

__attribute__((destructor)) void FinalizeMemtide() { Finalize(-1); }

}  // namespace

const Options& RuntimeOptions() { return g_options; }

int64_t MonotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

int64_t ElapsedNs() { return MonotonicNs() - g_start_ns; }

bool IsInitializedProcess() { return g_initialized_pid != 0 && g_initialized_pid == getpid(); }

bool KeepSegmentAtExit() {
  return g_options.keep_segment != 0 || (g_options.run_pid != 0 && g_options.run_pid == getpid());
}

}  // namespace memtide::internal

MEMTIDE_EXPORT void _exit(int status) {
  memtide::internal::Finalize(status);
  memtide::internal::EnsureRealSymbols();
  memtide::internal::g_real.exit_now(status);
  __builtin_unreachable();
}

MEMTIDE_EXPORT void _Exit(int status) {
  memtide::internal::Finalize(status);
  memtide::internal::EnsureRealSymbols();
  memtide::internal::g_real.exit_now_c99(status);
  __builtin_unreachable();
}
