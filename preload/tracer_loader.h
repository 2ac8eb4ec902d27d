// Loads and drives the tracer module (libmemtide_tracer.so, next to libmemtide.so) when MEMTIDE_TRACE asks
// for stacks (DESIGN.md decisions 7 and 8): the always-loaded preload stays libc-only, and a process that does
// not trace never maps libunwind, Abseil or libdw. Runs in the constructor (start), at fork, at exit and on the
// monitor thread or a memtide_snapshot() caller (snapshots); never inside a hook.
#ifndef MEMTIDE_PRELOAD_TRACER_LOADER_H_
#define MEMTIDE_PRELOAD_TRACER_LOADER_H_

#include <stddef.h>
#include <stdint.h>

#include "options.h"

struct MemtideTracerApi;

namespace memtide::internal {

// Starts tracing as the options say; on any failure logs one line and leaves tracing off.
void StartTracer(const Options& options);
// The started module, or null (tracing off or failed). Safe from any thread.
const MemtideTracerApi* RunningTracer();

void TracerBeforeFork();
void TracerAfterForkInParent();
void TracerAfterForkInChild();
// Writes the trace and the leak report once per process image; later calls do nothing.
void TracerAtExit(int32_t exit_code);
// A snapshot of the live blocks by stack: into `path`, or (path null) a new file in MEMTIDE_DIR whose name
// goes to `name`. Returns 0 or an errno value with a one-line reason in `message`. The file is written on the
// thread with memtide's own descriptor table when it runs (private_descriptors.h), else on the caller's.
int TracerSnapshot(const char* path, char* name, size_t name_size, char* message, size_t message_size);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_TRACER_LOADER_H_
