// The trace file: what the tracer module writes (at exit, and for each snapshot) and what the CLI reads
// (`memtide run`, `report`, `diff`, `check`). JSON, unsymbolized: frames are module + offset, and the module
// table is kept as it was when each stack was taken, so frames of libraries unloaded before the end are still
// named when the file is symbolized (by the CLI, with libdw, reading the modules from disk).
//
// {
//   "memtide_trace_version": 2,
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
//   "frames": [[module_index, offset], ...],
//             // each distinct return address once (symbolize address - 1). module_index -1: no module known,
//             // offset is then the absolute address.
//   "nodes": [[parent, frame], ...],
//             // the call tree of every written stack: node i is frames[frame] called from node `parent` (-1:
//             // the outermost frame). parent < i. Stacks share their outer frames (a Python program's stacks
//             // share all but a few), which keeps a trace of 600,000 stacks at tens of MB rather than hundreds.
//   "site_fields": ["node", "live_bytes", "live_blocks", "peak_bytes", "peak_blocks", "allocated_bytes",
//                   "allocations", "sizes"],
//   "sites": [[node, live_bytes, live_blocks, peak_bytes, peak_blocks, allocated_bytes, allocations, [sizes]]]
//             // one array per allocating stack, fields in site_fields' order:
//             // node: the stack's innermost frame (the code that called malloc; memtide's own frames removed),
//             //       its parents up to -1 the rest of the stack; -1 for a stack of no frame. Unique per site.
//             // live_*: still allocated (at exit: leaked); peak_*: held at the traced high-water mark;
//             // allocated_bytes, allocations: everything this stack ever allocated;
//             // sizes: up to 4 distinct requested sizes: of the live blocks if any, else the first allocated
//   "freed_at_exit": [[node, bytes, blocks], ...]
//             // exit traces, when the exit-cleanup probe ran (tracer/exit_cleanup_probe.h): of each listed
//             // site's live figures, what the C runtime's own exit cleanup freed (the runtime's blocks, not
//             // leaks); a site not listed had none freed. Absent: the probe did not run, and readers tell the
//             // runtime's blocks apart by their stacks. Optional, so version 2 readers that predate it still read
//             // the file.
// }
// In sample mode every count and byte figure is an unbiased estimate (rounded to an integer). Sites with all
// figures zero are omitted. Readers also accept version 1 (a "stacks" list [{"id", "frames": [[module_index,
// offset], ...]}] and "sites" objects [{"stack": id, "live_bytes", ..., "sizes"}]) and refuse any other
// memtide_trace_version with one line naming both.
#ifndef MEMTIDE_TRACER_TRACE_FILE_H_
#define MEMTIDE_TRACER_TRACE_FILE_H_

namespace memtide {

inline constexpr int kTraceFileVersion = 2;
inline constexpr int kOldestTraceFileVersion = 1;
inline constexpr const char* kTraceFileVersionKey = "memtide_trace_version";
// Version 2's "site_fields": the order of each site array's fields.
inline constexpr const char* kTraceSiteFields[] = {"node",        "live_bytes",      "live_blocks", "peak_bytes",
                                                   "peak_blocks", "allocated_bytes", "allocations", "sizes"};

}  // namespace memtide

#endif  // MEMTIDE_TRACER_TRACE_FILE_H_
