// Keeps libunwind's memory checks out of the program's descriptor table (libunwind_descriptors.cc says why
// and how). Runs once, when the tracer module has been loaded.
#ifndef MEMTIDE_PRELOAD_LIBUNWIND_DESCRIPTORS_H_
#define MEMTIDE_PRELOAD_LIBUNWIND_DESCRIPTORS_H_

namespace memtide::internal {

// Redirects the pipe2, read and syscall calls of the library that defines `libunwind_function` (libunwind,
// found through the tracer module). Call once the module (and so libunwind) is loaded and before it first
// unwinds, under the guard. Null: nothing changes. Allocation-free; runs one short-lived child that shares the
// process's memory (a probe of process_vm_readv). Logs a line when libunwind's pipe would land among the
// program's descriptors.
void KeepLibunwindOutOfDescriptors(const void* libunwind_function);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_LIBUNWIND_DESCRIPTORS_H_
