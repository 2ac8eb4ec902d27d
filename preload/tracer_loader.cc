// See tracer_loader.h. Constructor, fork handlers, exit and the monitor thread; everything under the guard.
#include "tracer_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bookkeeping_thread.h"
#include "dlclose_hook.h"
#include "heap_counters.h"
#include "libunwind_descriptors.h"
#include "log.h"
#include "private_descriptors.h"
#include "real_symbols.h"
#include "thread_state.h"
#include "trace_hooks.h"
#include "tracer_module.h"

namespace memtide::internal {
namespace {

const MemtideTracerApi* g_tracer = nullptr;
bool g_at_exit_done = false;

void LogLineFromTracer(const char* line) { Log("{}", line); }
void WriteTextFromTracer(const char* text, size_t length) { WriteLogLine(text, length); }

void RunTraced(void (*function)(void)) {
  const uint32_t depth = tls_state.guard_depth;
  tls_state.guard_depth = 0;
  function();
  tls_state.guard_depth = depth;
}

const char* ModeName(int64_t mode) { return mode == kMemtideTraceFull ? "full" : "sample"; }

}  // namespace

const MemtideTracerApi* RunningTracer() { return __atomic_load_n(&g_tracer, __ATOMIC_ACQUIRE); }

namespace {
void StartTracerModule(const Options& options);
}  // namespace

void StartTracer(const Options& options) {
  StartTracerModule(options);
  __atomic_store_n(&g_trace_decided, true, __ATOMIC_RELEASE);
}

namespace {

void StartTracerModule(const Options& options) {
  if (options.trace == kMemtideTraceOff) return;
  ScopedGuard guard;
  // libmemtide.so itself: the tracer module lies beside it, and frames in its code are memtide's.
  const LoadedObject self = LoadedObjectOf(reinterpret_cast<const void*>(&StartTracer));
  if (self.identity == nullptr || self.path == nullptr || self.path[0] == '\0') {
    Log("MEMTIDE_TRACE={}: cannot find libmemtide.so's own path; tracing is off", ModeName(options.trace));
    return;
  }
  char module_path[4096];
  const char* slash = strrchr(self.path, '/');
  size_t folder_length = slash != nullptr ? static_cast<size_t>(slash - self.path + 1) : 0;
  static constexpr char kModuleName[] = "libmemtide_tracer.so";
  if (folder_length + sizeof(kModuleName) > sizeof(module_path)) {
    Log("MEMTIDE_TRACE={}: the path of libmemtide.so is too long; tracing is off", ModeName(options.trace));
    return;
  }
  memcpy(module_path, self.path, folder_length);
  memcpy(module_path + folder_length, kModuleName, sizeof(kModuleName));

  void* module = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
  if (module == nullptr) {
    const char* error = dlerror();
    Log("MEMTIDE_TRACE={}: cannot load the tracer module: {}; tracing is off", ModeName(options.trace),
        error != nullptr ? error : module_path);
    return;
  }
  auto start = reinterpret_cast<MemtideTracerStartFunction>(dlsym(module, MEMTIDE_TRACER_ENTRY));
  if (start == nullptr) {
    Log("MEMTIDE_TRACE={}: {} has no {}; tracing is off", ModeName(options.trace), module_path, MEMTIDE_TRACER_ENTRY);
    return;
  }
  // libunwind came with the module (its dependency); the module first unwinds in start(), where libunwind
  // opens its memory-check pipe.
  KeepLibunwindOutOfDescriptors(dlsym(module, "unw_backtrace"));

  MemtideTracerConfig config{};
  config.abi_version = MEMTIDE_TRACER_ABI_VERSION;
  config.mode = static_cast<int32_t>(options.trace);
  config.sample_mean_bytes = options.trace_sample_bytes;
  config.max_frames = static_cast<int32_t>(options.trace_frames);
  config.fast_unwind = static_cast<int32_t>(options.trace_fast_unwind);
  config.leak_report_top = static_cast<int32_t>(options.leak_top);
  config.trace_file = options.trace_file.text;
  config.suppressions = options.suppressions.text;
  config.segment_dir = options.dir.text;
  config.skip_begin = self.code_begin;
  config.skip_end = self.code_end;
  config.log_line = LogLineFromTracer;
  config.write_text = WriteTextFromTracer;
  config.dlclose_calls = &g_dlclose_calls;
  config.run_traced = options.exit_cleanup_probe != 0 ? RunTraced : nullptr;
  config.bookkeeping_thread = options.trace == kMemtideTraceFull && options.trace_bookkeeping_thread != 0 &&
                              BookkeepingThreadUseful();
  const MemtideTracerApi* api = start(&config);
  if (api == nullptr) return;  // the module said why
  if (api->abi_version != MEMTIDE_TRACER_ABI_VERSION) {
    Log("MEMTIDE_TRACE={}: {} speaks tracer ABI {}, this libmemtide.so {}; tracing is off", ModeName(options.trace),
        module_path, api->abi_version, MEMTIDE_TRACER_ABI_VERSION);
    return;
  }
  SetThreadExitHandler(TraceThreadExit);
  __atomic_store_n(&g_tracer, api, __ATOMIC_RELEASE);
  __atomic_store_n(&g_trace_mode, static_cast<int32_t>(options.trace), __ATOMIC_RELEASE);
  // Asked before starting a thread: the module says -1 when its queue could not be enabled (and said why).
  const bool bookkeeping = config.bookkeeping_thread != 0 && api->drain_bookkeeping() >= 0;
  if (bookkeeping) WantBookkeepingThread(api);  // the monitor starts it once the process has lived a while
  LogVerbose("tracing on ({}), module {}{}", ModeName(options.trace), module_path,
             bookkeeping ? ", tables kept by the bookkeeping thread" : "");
}

}  // namespace

void TracerBeforeFork() {
  if (const MemtideTracerApi* tracer = RunningTracer()) tracer->before_fork();
}

void TracerAfterForkInParent() {
  if (const MemtideTracerApi* tracer = RunningTracer()) tracer->after_fork_parent();
}

void TracerAfterForkInChild() {
  g_at_exit_done = false;
  if (const MemtideTracerApi* tracer = RunningTracer()) tracer->after_fork_child();
}

void TracerAtExit(int32_t exit_code) {
  const MemtideTracerApi* tracer = RunningTracer();
  if (tracer == nullptr || __atomic_exchange_n(&g_at_exit_done, true, __ATOMIC_ACQ_REL)) return;
  ScopedGuard guard;
  tracer->at_exit(exit_code, &tls_state.trace_thread);
}

namespace {

struct SnapshotJob {
  const MemtideTracerApi* tracer;
  const char* path;
  char* name;
  size_t name_size;
  char* message;
  size_t message_size;
  MemtideTracerThread* thread;  // the caller's: its unflushed traced bytes go in first
  int status;
};

void WriteSnapshotJob(void* argument) {
  auto* job = static_cast<SnapshotJob*>(argument);
  job->status = job->tracer->write_snapshot(job->path, job->name, job->name_size, job->message, job->message_size,
                                            job->thread);
}

}  // namespace

int TracerSnapshot(const char* path, char* name, size_t name_size, char* message, size_t message_size) {
  const MemtideTracerApi* tracer = RunningTracer();
  if (tracer == nullptr) {
    snprintf(message, message_size, "tracing is off in this process (start it with MEMTIDE_TRACE=sample or full)");
    return ENOTSUP;
  }
  ScopedGuard guard;
  SnapshotJob job{tracer, path, name, name_size, message, message_size, &tls_state.trace_thread, 0};
  // The snapshot file is open for as long as its writing takes (milliseconds for a large heap): on the thread
  // whose descriptor table is memtide's own where there is one, so the program never sees it. The module
  // writes nothing else there (errors come back in `message`).
  if (!RunWithPrivateDescriptors(WriteSnapshotJob, &job)) WriteSnapshotJob(&job);
  return job.status;
}

}  // namespace memtide::internal
