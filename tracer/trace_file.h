// The trace file: what the tracer module writes (at exit, and for each snapshot) and what the CLI reads
// (`memtide run`, `report`, `diff`, `check`). JSON, unsymbolized: frames are module + offset, and the module
// table is kept as it was when each stack was taken, so frames of libraries unloaded before the end are still
// named when the file is symbolized (by the CLI, with libdw, reading the modules from disk).
//
// {
//   "memtide_trace_version": 1,
//   "kind": "exit" | "snapshot",
//   "pid": 1234, "command": ["./prog", "arg"],
//   "time_s": 1.25,                       // seconds since tracing started
//   "exit_code": 0 | null,                // exit: known after _exit/_Exit, null after exit()/return; snapshot: null
//   "mode": "full" | "sample",
//   "sample_mean_bytes": 524288,          // 0 in full mode
//   "byte_unit": "requested",             // every byte figure below is what the program asked for
//   "complete": true,                     // false if some blocks could not be traced (the module ran out of room)
//   "totals": {"live_bytes", "live_blocks", "peak_bytes", "allocations", "frees", "allocated_bytes"},
//   "modules": [{"path": "/usr/lib/x86_64-linux-gnu/libc.so.6", "build_id": "hex" | "",
//                "base": 140000000000,    // load bias: file address = runtime address - base
//                "start": 140000000000, "end": 140000100000}],   // [start, end) mapped executable range
//   "stacks": [{"id": 1, "frames": [[module_index, offset], ...]}],
//             // innermost first: frames[0] is the code that called malloc (memtide's own frames removed).
//             // Every frame is a return address (symbolize address - 1). module_index -1: no module known,
//             // offset is then the absolute address.
//   "sites": [{"stack": 1,
//              "live_bytes": 1000, "live_blocks": 10,      // still allocated (at exit: leaked)
//              "peak_bytes": 800, "peak_blocks": 8,        // held at the traced high-water mark
//              "allocated_bytes": 5000, "allocations": 50, // everything this stack ever allocated
//              "sizes": [100, 37]}]                        // up to 4 distinct requested sizes: of the
//                                                          // live blocks if any, else the first allocated
// }
// In sample mode every count and byte figure is an unbiased estimate (rounded to an integer). Sites with all
// figures zero are omitted. A reader refuses any other memtide_trace_version with one line naming both.
#ifndef MEMTIDE_TRACER_TRACE_FILE_H_
#define MEMTIDE_TRACER_TRACE_FILE_H_

namespace memtide {

inline constexpr int kTraceFileVersion = 1;
inline constexpr const char* kTraceFileVersionKey = "memtide_trace_version";

}  // namespace memtide

#endif  // MEMTIDE_TRACER_TRACE_FILE_H_
