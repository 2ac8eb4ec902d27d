// The CUDA driver wrappers (DESIGN.md decision 6, research/CUDA.md §3) as seen by the rest of the preload:
// the dlsym override hands them every driver pointer a lookup returns, and the C API reads the counters
// through them. Nothing here is called on the host malloc/free path, and nothing runs at all in a process
// that never looks up a `cu*` name or calls one of memtide's exported `cu*` functions.
#ifndef MEMTIDE_PRELOAD_CUDA_DRIVER_HOOKS_H_
#define MEMTIDE_PRELOAD_CUDA_DRIVER_HOOKS_H_

#include "memtide/memtide.h"

namespace memtide::internal {

// glibc's dlsym (or the next interposer's), never memtide's own; defined in dlsym_override.cc. Its caller,
// for RTLD_NEXT and RTLD_DEFAULT, is memtide. Allocation-free unless the lookup fails (dlerror's string).
void* RealDlsym(void* handle, const char* name);

// True for the exact names of the driver entry points memtide wraps (and exports). Allocation-free.
bool IsWrappedDriverName(const char* name);
// memtide's wrapper for an exact wrapped name, or null.
void* DriverWrapperForName(const char* name);
// True if `pointer` is one of memtide's wrappers. Allocation-free.
bool IsDriverWrapper(const void* pointer);
// True once a driver library (libcuda.so*) is loaded in the process. Guarded; allocation-free.
bool DriverLoaded();
// True if `return_address` lies in the driver library itself (its own lookups are never substituted).
bool IsDriverCaller(const void* return_address);

// A pointer that a driver lookup (dlsym of a `cu*` name, cuGetProcAddress*) returned for `requested`:
// routed by its identity (dladdr: the exact exported symbol at exactly that address), returns memtide's
// wrapper for that symbol after remembering `real` in the symbol's slot, or `real` unchanged when the
// symbol is not wrapped, cannot be identified, or its slot already holds another pointer. Takes the guard.
void* SubstituteDriverPointer(void* real, const char* requested);
// A lookup found one of memtide's exported wrappers: `wrapper` if a real definition exists for it to
// forward to (resolving it now if needed), null if none is loaded (the lookup should fail as it would
// have without memtide).
void* ConfirmExportedWrapper(void* wrapper);
// Counts one `cu*` lookup through dlsym, for the diagnostics line.
void NoteDriverLookupThroughDlsym();

// fork() child: GPU counting starts afresh, and no lock or once-flag is left held by a thread that does not
// exist there. The resolved driver functions stay (same address space).
void ResetCudaHooksInChild();

// The C API: counters of device `ordinal` (the process's numbering), sampling the device first when the
// calling thread has a CUDA context. Returns 0, or -1 (and zeros) if memtide has not seen the device.
int ReadGpuStats(int ordinal, memtide_gpu_stats* out);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_CUDA_DRIVER_HOOKS_H_
