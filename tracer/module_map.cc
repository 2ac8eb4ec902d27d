// Code address -> loaded module, for stacks seen for the first time (see module_map.h). Tracer module, slow
// path of the hot entries and the writers; allocates.
#include "module_map.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

namespace memtide::internal {
namespace {

struct ExecRange {
  bool found = false;
  uintptr_t start = UINTPTR_MAX;
  uintptr_t end = 0;
};

ExecRange ExecutableRange(const dl_phdr_info* info) {
  ExecRange range;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& phdr = info->dlpi_phdr[i];
    if (phdr.p_type != PT_LOAD || (phdr.p_flags & PF_X) == 0) continue;
    range.found = true;
    range.start = std::min<uintptr_t>(range.start, info->dlpi_addr + phdr.p_vaddr);
    range.end = std::max<uintptr_t>(range.end, info->dlpi_addr + phdr.p_vaddr + phdr.p_memsz);
  }
  return range;
}

// NT_GNU_BUILD_ID from the object's PT_NOTE segments, read in memory (they are part of a loaded segment).
std::string BuildId(const dl_phdr_info* info) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& phdr = info->dlpi_phdr[i];
    if (phdr.p_type != PT_NOTE) continue;
    const char* note = reinterpret_cast<const char*>(info->dlpi_addr + phdr.p_vaddr);
    const char* const end = note + phdr.p_memsz;
    while (note + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) header;
      memcpy(&header, note, sizeof(header));
      const char* name = note + sizeof(header);
      const char* desc = name + ((header.n_namesz + 3) & ~3u);
      const char* next = desc + ((header.n_descsz + 3) & ~3u);
      if (next > end || next <= note) break;
      if (header.n_type == NT_GNU_BUILD_ID && header.n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
        std::string hex;
        hex.reserve(header.n_descsz * 2);
        for (uint32_t b = 0; b < header.n_descsz; ++b) {
          const unsigned char byte = static_cast<unsigned char>(desc[b]);
          hex.push_back(kHex[byte >> 4]);
          hex.push_back(kHex[byte & 15]);
        }
        return hex;
      }
      note = next;
    }
  }
  return std::string();
}

// The loader's load and unload counters (0 from a libc too old to have them).
struct LoaderCounters {
  uint64_t loads = 0;
  uint64_t unloads = 0;
  uint64_t generation() const { return loads + unloads; }
};

LoaderCounters ReadCounters(const dl_phdr_info* info, size_t size) {
  if (size < offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) return {};
  return {static_cast<uint64_t>(info->dlpi_adds), static_cast<uint64_t>(info->dlpi_subs)};
}

struct FullRead {
  const std::string* main_program_path;
  std::vector<ModuleInfo>* modules;
  LoaderCounters counters;
  bool first = true;
};

int CollectModule(dl_phdr_info* info, size_t size, void* data) {
  FullRead& read = *static_cast<FullRead*>(data);
  const bool first = read.first;
  read.first = false;
  if (first) read.counters = ReadCounters(info, size);
  const ExecRange range = ExecutableRange(info);
  if (!range.found) return 0;
  ModuleInfo module;
  const char* name = info->dlpi_name;
  module.path = (name == nullptr || name[0] == '\0') && first ? *read.main_program_path
                                                              : std::string(name != nullptr ? name : "");
  module.build_id = BuildId(info);
  module.base = info->dlpi_addr;
  module.start = range.start;
  module.end = range.end;
  read.modules->push_back(std::move(module));
  return 0;
}

int ReadGeneration(dl_phdr_info* info, size_t size, void* data) {
  *static_cast<uint64_t*>(data) = ReadCounters(info, size).generation();
  return 1;
}

struct RangeQuery {
  uintptr_t address;
  ExecRange range;
};

int FindRange(dl_phdr_info* info, size_t, void* data) {
  RangeQuery& query = *static_cast<RangeQuery*>(data);
  const ExecRange range = ExecutableRange(info);
  if (range.found && query.address >= range.start && query.address < range.end) {
    query.range = range;
    return 1;
  }
  return 0;
}

}  // namespace

bool FindExecutableRange(uintptr_t address, uintptr_t* start, uintptr_t* end) {
  RangeQuery query{address, {}};
  dl_iterate_phdr(FindRange, &query);
  if (!query.range.found) return false;
  *start = query.range.start;
  *end = query.range.end;
  return true;
}

ModuleMap::ModuleMap() {
  char path[PATH_MAX];
  if (realpath("/proc/self/exe", path) != nullptr) {
    main_program_path_ = path;
  } else {
    const ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
    main_program_path_.assign(path, length > 0 ? static_cast<size_t>(length) : 0);
  }
}

void ModuleMap::Refresh() {
  std::vector<ModuleInfo> read_modules;
  read_modules.reserve(64);
  FullRead read{&main_program_path_, &read_modules, {}, true};
  dl_iterate_phdr(CollectModule, &read);
  Merge(read_modules, read.counters.generation(), read.counters.unloads);
}

void ModuleMap::Merge(std::vector<ModuleInfo>& read, uint64_t generation, uint64_t unloads) {
  SpinLockHolder hold(lock_);
  const uint64_t merged = generation_.load(std::memory_order_relaxed);
  // Two threads may read concurrently; the older read must not undo the newer one's loaded set.
  if (merged != ~uint64_t{0} && generation < merged) return;
  std::vector<LoadedRange> loaded;
  loaded.reserve(read.size());
  for (ModuleInfo& module : read) {
    int32_t index = -1;
    for (size_t i = 0; i < modules_.size(); ++i) {
      const ModuleInfo& known = modules_[i];
      // The build id too: a library rebuilt and loaded again under the same name is other code.
      if (known.base == module.base && known.start == module.start && known.end == module.end &&
          known.path == module.path && known.build_id == module.build_id) {
        index = static_cast<int32_t>(i);
        break;
      }
    }
    if (index < 0) {
      index = static_cast<int32_t>(modules_.size());
      modules_.push_back(std::move(module));
    }
    loaded.push_back({modules_[index].start, modules_[index].end, index});
  }
  std::sort(loaded.begin(), loaded.end(), [](const LoadedRange& a, const LoadedRange& b) { return a.start < b.start; });
  const uint32_t epoch = unload_epoch_.load(std::memory_order_relaxed) + 1;
  bool unloaded = false;
  std::vector<bool> still_loaded(modules_.size());
  for (const LoadedRange& now : loaded) still_loaded[static_cast<size_t>(now.index)] = true;
  for (const LoadedRange& before : loaded_) {
    if (still_loaded[static_cast<size_t>(before.index)]) continue;
    unloaded_.push_back({before.start, before.end, epoch});
    unloaded = true;
  }
  if (unloaded) unload_epoch_.store(epoch, std::memory_order_relaxed);
  loaded_.swap(loaded);
  generation_.store(generation, std::memory_order_relaxed);
  unloads_.store(unloads, std::memory_order_relaxed);
}

int32_t ModuleMap::FindLocked(uintptr_t address) const {
  auto it = std::upper_bound(loaded_.begin(), loaded_.end(), address,
                             [](uintptr_t a, const LoadedRange& range) { return a < range.start; });
  if (it == loaded_.begin()) return -1;
  --it;
  return address < it->end ? it->index : -1;
}

void ModuleMap::RefreshIfChanged() {
  uint64_t generation = 0;
  dl_iterate_phdr(ReadGeneration, &generation);
  if (generation != generation_.load(std::memory_order_relaxed)) Refresh();
}

bool ModuleMap::UnloadedSince(uint32_t epoch, const uintptr_t* addresses, size_t count) const {
  SpinLockHolder hold(lock_);
  for (auto range = unloaded_.rbegin(); range != unloaded_.rend() && range->epoch > epoch; ++range) {
    for (size_t i = 0; i < count; ++i) {
      if (addresses[i] >= range->start && addresses[i] < range->end) return true;
    }
  }
  return false;
}

void ModuleMap::Resolve(const uintptr_t* addresses, size_t count, int32_t* indices) {
  RefreshIfChanged();
  SpinLockHolder hold(lock_);
  for (size_t i = 0; i < count; ++i) indices[i] = FindLocked(addresses[i]);
}

std::vector<ModuleInfo> ModuleMap::Modules() const {
  SpinLockHolder hold(lock_);
  return modules_;
}

}  // namespace memtide::internal
