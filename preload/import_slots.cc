// See import_slots.h.
#include "import_slots.h"

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

namespace memtide::internal {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kJumpSlot = R_X86_64_JUMP_SLOT;
constexpr uint32_t kGlobDat = R_X86_64_GLOB_DAT;
#elif defined(__aarch64__)
constexpr uint32_t kJumpSlot = R_AARCH64_JUMP_SLOT;
constexpr uint32_t kGlobDat = R_AARCH64_GLOB_DAT;
#else
#error "import_slots.cc knows the relocation types of x86_64 and aarch64 only"
#endif

struct SlotSearch {
  uintptr_t address;
  const char* name;
  ImportSlot slot;
};

// glibc rewrites the dynamic section's pointers to run-time addresses when it loads an object (other loaders
// and the vDSO leave them as offsets): an offset is below the load address, an address is not.
uintptr_t RunTimeAddress(uintptr_t base, uintptr_t pointer) { return pointer < base ? base + pointer : pointer; }

// The slot relocated by the first of `count` RELA entries that binds `name` as a function pointer.
void** SlotIn(const ElfW(Rela) * relocations, size_t count, const ElfW(Sym) * symbols, const char* strings,
              uintptr_t base, const char* name) {
  for (size_t i = 0; i < count; ++i) {
    const uint32_t type = ELF64_R_TYPE(relocations[i].r_info);
    if (type != kJumpSlot && type != kGlobDat) continue;
    const ElfW(Sym)& symbol = symbols[ELF64_R_SYM(relocations[i].r_info)];
    if (strcmp(strings + symbol.st_name, name) == 0) return reinterpret_cast<void**>(base + relocations[i].r_offset);
  }
  return nullptr;
}

int SearchObject(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<SlotSearch*>(data);
  const uintptr_t base = info->dlpi_addr;
  const ElfW(Phdr)* dynamic_header = nullptr;
  const ElfW(Phdr)* relro_header = nullptr;
  bool contains = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type == PT_LOAD && search->address - (base + header.p_vaddr) < header.p_memsz) contains = true;
    if (header.p_type == PT_DYNAMIC) dynamic_header = &header;
    if (header.p_type == PT_GNU_RELRO) relro_header = &header;
  }
  if (!contains) return 0;
  if (dynamic_header == nullptr) return 1;

  uintptr_t symbols = 0, strings = 0, plt_relocations = 0, plt_bytes = 0, relocations = 0, relocation_bytes = 0;
  bool plt_is_rela = true;
  for (auto* entry = reinterpret_cast<const ElfW(Dyn)*>(base + dynamic_header->p_vaddr); entry->d_tag != DT_NULL;
       ++entry) {
    switch (entry->d_tag) {
      case DT_SYMTAB: symbols = RunTimeAddress(base, entry->d_un.d_ptr); break;
      case DT_STRTAB: strings = RunTimeAddress(base, entry->d_un.d_ptr); break;
      case DT_JMPREL: plt_relocations = RunTimeAddress(base, entry->d_un.d_ptr); break;
      case DT_PLTRELSZ: plt_bytes = entry->d_un.d_val; break;
      case DT_PLTREL: plt_is_rela = entry->d_un.d_val == DT_RELA; break;
      case DT_RELA: relocations = RunTimeAddress(base, entry->d_un.d_ptr); break;
      case DT_RELASZ: relocation_bytes = entry->d_un.d_val; break;
      default: break;
    }
  }
  if (symbols == 0 || strings == 0) return 1;
  const auto* symbol_table = reinterpret_cast<const ElfW(Sym)*>(symbols);
  const auto* string_table = reinterpret_cast<const char*>(strings);
  void** slot = nullptr;
  if (plt_relocations != 0 && plt_is_rela) {
    slot = SlotIn(reinterpret_cast<const ElfW(Rela)*>(plt_relocations), plt_bytes / sizeof(ElfW(Rela)),
                  symbol_table, string_table, base, search->name);
  }
  if (slot == nullptr && relocations != 0) {
    slot = SlotIn(reinterpret_cast<const ElfW(Rela)*>(relocations), relocation_bytes / sizeof(ElfW(Rela)),
                  symbol_table, string_table, base, search->name);
  }
  search->slot.address = slot;
  if (slot != nullptr && relro_header != nullptr) {
    const uintptr_t relro_begin = base + relro_header->p_vaddr;
    search->slot.read_only = reinterpret_cast<uintptr_t>(slot) - relro_begin < relro_header->p_memsz;
  }
  return 1;
}

}  // namespace

ImportSlot FindImportSlot(const void* address_in_object, const char* name) {
  SlotSearch search{reinterpret_cast<uintptr_t>(address_in_object), name, ImportSlot{}};
  if (address_in_object != nullptr) dl_iterate_phdr(SearchObject, &search);
  return search.slot;
}

bool RedirectImport(const ImportSlot& slot, void* function) {
  if (slot.address == nullptr) return false;
  if (!slot.read_only) {
    __atomic_store_n(slot.address, function, __ATOMIC_RELEASE);
    return true;
  }
  const uintptr_t page_bytes = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(slot.address) & ~(page_bytes - 1));
  if (mprotect(page, page_bytes, PROT_READ | PROT_WRITE) != 0) return false;
  __atomic_store_n(slot.address, function, __ATOMIC_RELEASE);
  mprotect(page, page_bytes, PROT_READ);
  return true;
}

}  // namespace memtide::internal
