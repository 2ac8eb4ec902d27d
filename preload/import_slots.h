// The GOT slots through which one loaded object calls the functions it imports, and pointing one of them
// elsewhere: how memtide changes what a single library's calls do (libunwind's, libunwind_descriptors.cc)
// without interposing the function for the whole program. Runs once, at the tracer's start; no allocation.
#ifndef MEMTIDE_PRELOAD_IMPORT_SLOTS_H_
#define MEMTIDE_PRELOAD_IMPORT_SLOTS_H_

namespace memtide::internal {

struct ImportSlot {
  void** address = nullptr;  // null: the object does not import the name through a GOT slot
  bool read_only = false;    // inside the object's RELRO segment, which the loader made read-only
};

// The slot through which the loaded object holding `address_in_object` calls `name` (a PLT slot, or a GOT
// entry for code built with -fno-plt). Reads the object's dynamic section through dl_iterate_phdr.
ImportSlot FindImportSlot(const void* address_in_object, const char* name);

// Points the slot at `function`. A slot in RELRO is made writable for the write and read-only again
// (mprotect, which memtide interposes: call it under the guard). False, with the slot unchanged, when the
// page cannot be made writable.
bool RedirectImport(const ImportSlot& slot, void* function);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_IMPORT_SLOTS_H_
