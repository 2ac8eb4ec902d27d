// See symbolizer.h. Runs in the CLI, or in a traced program at exit.
#include "symbolizer.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <utility>

#include "demangle.h"
#include "fmt/format.h"

namespace memtide {
namespace {

// dwfl_standard_find_debuginfo without its last step. When the files on this machine have nothing, elfutils
// 0.188 starts libdebuginfod whether or not a server is configured, and with it libcurl, OpenSSL, GnuTLS and
// libssh2: at a traced program's exit that crashed `openssl genrsa` (its own atexit handler had already torn
// OpenSSL down), and with DEBUGINFOD_URLS set it would download debug info there. So: the build-id tree
// (/usr/lib/debug/.build-id/xx/yyy.debug, where Debian's dbgsym packages go), then the .gnu_debuglink name
// beside the file, in its .debug folder and under /usr/lib/debug, as gdb looks; a candidate must carry the
// module's build id when the module has one.
bool HasBuildId(int fd, const unsigned char* build_id, int length) {
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return false;
  const void* found = nullptr;
  const ssize_t found_length = dwelf_elf_gnu_build_id(elf, &found);
  const bool same = found_length == length && memcmp(found, build_id, static_cast<size_t>(length)) == 0;
  elf_end(elf);
  return same;
}

int FindLocalDebuginfo(Dwfl_Module* module, void** user_data, const char* module_name, Dwarf_Addr base,
                       const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                       char** debuginfo_file_name) {
  const int by_build_id = dwfl_build_id_find_debuginfo(module, user_data, module_name, base, file_name,
                                                        debuglink_file, debuglink_crc, debuginfo_file_name);
  // A dwz file (.gnu_debugaltlink names it by path) is found by its build id or not at all.
  if (by_build_id >= 0 || file_name == nullptr || debuglink_file == nullptr || debuglink_file[0] == '\0' ||
      strchr(debuglink_file, '/') != nullptr) {
    return by_build_id;
  }
  const unsigned char* build_id = nullptr;
  GElf_Addr build_id_address = 0;
  const int build_id_length = dwfl_module_build_id(module, &build_id, &build_id_address);
  const std::string path = file_name;
  const std::string folder = path.substr(0, path.rfind('/'));  // file_name is absolute (GetModule)
  for (const std::string& candidate : {folder + "/" + debuglink_file, folder + "/.debug/" + debuglink_file,
                                       "/usr/lib/debug" + folder + "/" + debuglink_file}) {
    if (candidate == path) continue;
    const int fd = open(candidate.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (build_id_length > 0 && !HasBuildId(fd, build_id, build_id_length)) {
      close(fd);
      continue;
    }
    *debuginfo_file_name = strdup(candidate.c_str());
    return fd;  // dwfl owns it now
  }
  return -1;
}

// dwfl keeps a pointer to its callbacks: constants with static storage (address constants only, so they are
// initialised at load time, not by a constructor). A debuginfod server is asked only where the caller allows
// it and the user set DEBUGINFOD_URLS, as gdb and eu-addr2line do.
const Dwfl_Callbacks kWithServersCallbacks = {dwfl_build_id_find_elf, dwfl_standard_find_debuginfo,
                                              dwfl_offline_section_address, nullptr};
const Dwfl_Callbacks kLocalCallbacks = {dwfl_build_id_find_elf, FindLocalDebuginfo, dwfl_offline_section_address,
                                        nullptr};

const Dwfl_Callbacks* CallbacksFor(Symbolizer::Servers servers) {
  const char* urls = getenv("DEBUGINFOD_URLS");
  const bool configured = urls != nullptr && urls[0] != '\0';
  return servers == Symbolizer::Servers::kAskIfConfigured && configured ? &kWithServersCallbacks : &kLocalCallbacks;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The linkage name (mangled, so the demangled form carries the class, namespace and parameters), following
// DW_AT_abstract_origin and DW_AT_specification; else the plain DW_AT_name (C).
std::string DieFunctionName(Dwarf_Die* die) {
  Dwarf_Attribute attribute;
  const char* name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attribute));
  if (name == nullptr) name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attribute));
  if (name == nullptr) name = dwarf_diename(die);
  return Demangle(name);
}

// An address range of a DIE (a unit or a function) and the DIE's offset, for the indexes below, which
// libdw 0.188 lacks for clang's and rustc's debug info.
struct DieRange {
  Dwarf_Addr start;  // dwarf addresses (dwfl address - the dwarf bias)
  Dwarf_Addr end;
  Dwarf_Off die;
};

void AddRanges(Dwarf_Die* die, std::vector<DieRange>* ranges) {
  Dwarf_Addr base = 0, start = 0, end = 0;
  for (ptrdiff_t at = 0; (at = dwarf_ranges(die, at, &base, &start, &end)) > 0;) {
    if (start < end) ranges->push_back({start, end, dwarf_dieoffset(die)});
  }
}

void SortByStart(std::vector<DieRange>* ranges) {
  std::sort(ranges->begin(), ranges->end(), [](const DieRange& a, const DieRange& b) { return a.start < b.start; });
}

// The range holding `address` in `ranges` (sorted): the last one starting at or below it that still holds it,
// looking at most `steps_back` ranges back (a nested function starts inside its parent; an address between
// ranges must not walk the whole list). Null when none does.
const DieRange* RangeHolding(const std::vector<DieRange>& ranges, Dwarf_Addr address, int steps_back) {
  auto after = std::upper_bound(ranges.begin(), ranges.end(), address,
                                [](Dwarf_Addr value, const DieRange& range) { return value < range.start; });
  for (auto it = after; it != ranges.begin() && after - it < steps_back;) {
    --it;
    if (address < it->end) return &*it;
  }
  return nullptr;
}

// Every function (DW_TAG_subprogram with an address range) under `parent`, also inside namespaces, types and
// other functions. dwarf_getscopes (elfutils 0.188) does not look inside DIEs that have no address range,
// such as a DW_TAG_namespace, and rustc and clang put a function's definition in its namespace's DIE (gcc puts
// it at the unit's top level): no scope was found for such code, which left the symbol table's name beside the
// innermost inlined callee's line ("leak::main alloc.rs:95").
void IndexFunctions(Dwarf_Die* parent, std::vector<DieRange>* functions) {
  Dwarf_Die child;
  if (dwarf_child(parent, &child) != 0) return;
  do {
    switch (dwarf_tag(&child)) {
      case DW_TAG_subprogram:
        AddRanges(&child, functions);
        IndexFunctions(&child, functions);  // a local class's methods, a closure
        break;
      case DW_TAG_namespace:
      case DW_TAG_module:
      case DW_TAG_structure_type:
      case DW_TAG_class_type:
      case DW_TAG_union_type:
        IndexFunctions(&child, functions);
        break;
      default:
        break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

// The scopes holding `address` from `function` inward (blocks, inlined calls), innermost first.
std::vector<Dwarf_Die> ScopesWithin(const Dwarf_Die& function, Dwarf_Addr address) {
  std::vector<Dwarf_Die> chain{function};
  for (bool deeper = true; deeper;) {
    deeper = false;
    Dwarf_Die child;
    if (dwarf_child(&chain.back(), &child) != 0) break;
    do {
      if (dwarf_haspc(&child, address) > 0) {
        chain.push_back(child);
        deeper = true;
        break;
      }
    } while (dwarf_siblingof(&child, &child) == 0);
  }
  return std::vector<Dwarf_Die>(chain.rbegin(), chain.rend());
}

// The line table's file and line for `address` (a dwarf address in the unit `cu`), when it has them.
void SetLine(Dwarf_Die* cu, Dwarf_Addr address, Frame* frame) {
  Dwarf_Line* line = dwarf_getsrc_die(cu, address);
  if (line == nullptr) return;
  if (const char* file = dwarf_linesrc(line, nullptr, nullptr); file != nullptr) frame->file = file;
  int number = 0;
  if (dwarf_lineno(line, &number) == 0) frame->line = number;
}

bool IsFunctionScope(Dwarf_Die* die) {
  int tag = dwarf_tag(die);
  return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_entry_point;
}

std::string HexBuildId(Dwfl_Module* module) {
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  int length = dwfl_module_build_id(module, &bits, &vaddr);
  std::string hex;
  for (int i = 0; i < length; ++i) hex += fmt::format("{:02x}", bits[i]);
  return hex;
}

bool SameHex(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

std::string FrameModuleOffset(const Frame& frame) {
  if (frame.module.empty()) return fmt::format("0x{:x}", frame.address);
  return fmt::format("{}+0x{:x}", frame.module, frame.address);
}

struct Symbolizer::Module {
  std::string path;
  std::string basename;
  Dwfl* dwfl = nullptr;
  Dwfl_Module* module = nullptr;  // null: the file could not be read; every frame is "??"
  GElf_Addr bias = 0;             // dwfl address = file address + bias (dwfl lays offline modules out itself)
  bool changed = false;           // the file on disk has another build id than the trace recorded
  std::unordered_map<uint64_t, std::vector<Frame>> cache;

  ~Module() {
    if (dwfl != nullptr) dwfl_end(dwfl);
  }

  std::vector<Frame> Lookup(uint64_t file_address, Detail detail);

 private:
  // The module's function symbols sorted by address, read once: dwfl_module_addrinfo scans the whole symbol
  // table on every call, which made naming a PyTorch trace's 76,000 return addresses take minutes
  // (libtorch_cpu.so has over 200,000 symbols).
  struct Symbol {
    GElf_Addr start;
    GElf_Addr end;    // start + size; == start for a symbol of unknown size
    int preference;   // among symbols at one address: global 2, weak 1, local 0
    const char* name;  // owned by libelf, alive as long as dwfl
  };
  const char* SymbolName(Dwarf_Addr pc);
  std::vector<Symbol> symbols_;
  bool symbols_read_ = false;

  // The compile unit holding pc (dwfl address), in *storage; null if none. libdw 0.188 finds units through
  // .debug_aranges only, which clang does not write unless asked (-gdwarf-aranges): every frame of a
  // clang-built program had no file, line or inlined call. Without an answer from it, the units' own
  // address ranges are read once per module and searched.
  Dwarf_Die* CompileUnitAt(Dwarf_Addr pc, Dwarf_Addr* cu_bias, Dwarf_Die* storage);
  std::vector<DieRange> unit_ranges_;  // sorted by start
  bool unit_ranges_read_ = false;

  // The scopes at `address` (a dwarf address in `cu`), innermost first: libdw's search, else this module's
  // index of the unit's functions (IndexFunctions), built at the unit's first miss and kept, so that a unit
  // where libdw's search fails is scanned once, not once per address.
  std::vector<Dwarf_Die> ScopesAt(Dwarf_Die* cu, Dwarf_Addr address);
  std::unordered_map<Dwarf_Off, std::vector<DieRange>> unit_functions_;  // by unit DIE offset, sorted
};

Dwarf_Die* Symbolizer::Module::CompileUnitAt(Dwarf_Addr pc, Dwarf_Addr* cu_bias, Dwarf_Die* storage) {
  if (Dwarf_Die* found = dwfl_module_addrdie(module, pc, cu_bias); found != nullptr) return found;
  Dwarf* dwarf = dwfl_module_getdwarf(module, cu_bias);
  if (dwarf == nullptr) return nullptr;
  if (!unit_ranges_read_) {
    unit_ranges_read_ = true;
    Dwarf_CU* unit = nullptr;
    Dwarf_Die unit_die;
    uint8_t unit_type = 0;
    while (dwarf_get_units(dwarf, unit, &unit, nullptr, &unit_type, &unit_die, nullptr) == 0) {
      if (unit_type == DW_UT_compile || unit_type == DW_UT_partial) AddRanges(&unit_die, &unit_ranges_);
    }
    SortByStart(&unit_ranges_);
  }
  // Ranges of distinct units do not overlap: the last one starting at or below the address, or none.
  const DieRange* unit = RangeHolding(unit_ranges_, pc - *cu_bias, 1);
  return unit != nullptr ? dwarf_offdie(dwarf, unit->die, storage) : nullptr;
}

std::vector<Dwarf_Die> Symbolizer::Module::ScopesAt(Dwarf_Die* cu, Dwarf_Addr address) {
  const Dwarf_Off unit = dwarf_dieoffset(cu);
  auto indexed = unit_functions_.find(unit);
  if (indexed == unit_functions_.end()) {
    // dwarf_getscopes finds the innermost scope, dwarf_getscopes_die its concrete parents (it follows dwz's
    // imported units, which the index does not).
    Dwarf_Die* scopes = nullptr;
    int count = dwarf_getscopes(cu, address, &scopes);
    Dwarf_Die innermost;
    if (count > 0) innermost = scopes[0];
    free(scopes);
    if (count > 0) {
      scopes = nullptr;
      count = dwarf_getscopes_die(&innermost, &scopes);
      std::vector<Dwarf_Die> chain(scopes, scopes + std::max(count, 0));
      free(scopes);
      return chain;
    }
    std::vector<DieRange> functions;
    IndexFunctions(cu, &functions);
    SortByStart(&functions);
    indexed = unit_functions_.emplace(unit, std::move(functions)).first;
  }
  // The innermost function holding the address: nested functions lie inside their parent, a few entries back.
  const DieRange* function_range = RangeHolding(indexed->second, address, 16);
  Dwarf_Addr unused_bias = 0;
  Dwarf* dwarf = dwfl_module_getdwarf(module, &unused_bias);
  Dwarf_Die function;
  if (function_range == nullptr || dwarf == nullptr || dwarf_offdie(dwarf, function_range->die, &function) == nullptr) {
    return {};
  }
  return ScopesWithin(function, address);
}

const char* Symbolizer::Module::SymbolName(Dwarf_Addr pc) {
  if (!symbols_read_) {
    symbols_read_ = true;
    const int count = dwfl_module_getsymtab(module);
    for (int i = 1; i < count; ++i) {
      GElf_Sym symbol;
      GElf_Addr address = 0;
      GElf_Word section = 0;
      const char* name = dwfl_module_getsym_info(module, i, &symbol, &address, &section, nullptr, nullptr);
      if (name == nullptr || name[0] == '\0' || symbol.st_shndx == SHN_UNDEF) continue;
      const int type = GELF_ST_TYPE(symbol.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      const int binding = GELF_ST_BIND(symbol.st_info);
      symbols_.push_back({address, address + symbol.st_size,
                          binding == STB_GLOBAL ? 2 : (binding == STB_WEAK ? 1 : 0), name});
    }
    std::stable_sort(symbols_.begin(), symbols_.end(), [](const Symbol& a, const Symbol& b) {
      return a.start != b.start ? a.start < b.start : a.preference > b.preference;
    });
  }
  // The closest symbol starting at or below pc that contains it; failing that, the nearest symbol below pc if
  // its size is unknown (hand-written assembly), as dwfl_module_addrinfo does.
  auto above = std::upper_bound(symbols_.begin(), symbols_.end(), pc,
                                [](Dwarf_Addr value, const Symbol& symbol) { return value < symbol.start; });
  const Symbol* sizeless = nullptr;
  bool nearest = true;
  // Sized functions do not nest, so a containing symbol is among the nearest few; the bound keeps a miss cheap.
  for (int looked = 0; above != symbols_.begin() && looked < 64; ++looked) {
    auto first = std::prev(above);
    while (first != symbols_.begin() && std::prev(first)->start == first->start) --first;
    for (auto candidate = first; candidate != above; ++candidate) {  // every symbol at one address, best first
      if (pc < candidate->end) return candidate->name;
      if (nearest && candidate->end == candidate->start && sizeless == nullptr) sizeless = &*candidate;
    }
    nearest = false;
    above = first;
  }
  return sizeless != nullptr ? sizeless->name : nullptr;
}

std::vector<Frame> Symbolizer::Module::Lookup(uint64_t file_address, Detail detail) {
  Frame base;
  base.module = basename;
  base.module_path = path;
  base.address = file_address;
  std::vector<Frame> frames;
  if (module == nullptr) {
    frames.push_back(base);
    return frames;
  }
  // A return address points after the call; the call instruction (and its line) is one byte before.
  const Dwarf_Addr pc = bias + (file_address > 0 ? file_address - 1 : 0);

  // The chain of function scopes at pc, innermost first (eu-addr2line -i does the same): each inlined
  // subroutine is followed by the function it was inlined into, whose line is the inlined one's call site.
  Dwarf_Addr cu_bias = 0;
  Dwarf_Die cu_storage;
  Dwarf_Die* cu = detail == Detail::kFull ? CompileUnitAt(pc, &cu_bias, &cu_storage) : nullptr;
  if (cu != nullptr) {
    std::vector<Dwarf_Die> scopes = ScopesAt(cu, pc - cu_bias);
    const int count = static_cast<int>(scopes.size());
    Dwarf_Files* files = nullptr;
    if (count > 0 && dwarf_getsrcfiles(cu, &files, nullptr) != 0) files = nullptr;
    for (int i = 0; i < count; ++i) {
      if (!IsFunctionScope(&scopes[i])) continue;
      Frame frame = base;
      frame.function = DieFunctionName(&scopes[i]);
      if (frames.empty()) {
        SetLine(cu, pc - cu_bias, &frame);
      } else {
        // The call site recorded by the inlined scope before this one.
        for (int j = i - 1; j >= 0; --j) {
          if (dwarf_tag(&scopes[j]) != DW_TAG_inlined_subroutine) continue;
          Dwarf_Attribute attribute;
          Dwarf_Word value = 0;
          if (files != nullptr && dwarf_formudata(dwarf_attr(&scopes[j], DW_AT_call_file, &attribute), &value) == 0) {
            if (const char* file = dwarf_filesrc(files, value, nullptr, nullptr); file != nullptr) frame.file = file;
          }
          if (dwarf_formudata(dwarf_attr(&scopes[j], DW_AT_call_line, &attribute), &value) == 0) {
            frame.line = static_cast<int>(value);
          }
          break;
        }
      }
      frames.push_back(std::move(frame));
      if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine) break;  // the real function ends the chain
    }
  }
  if (frames.empty()) {
    // No debug info for pc, or none asked for: the symbol table (.symtab, or .dynsym of a stripped library)
    // still names it.
    Frame frame = base;
    if (const char* name = SymbolName(pc); name != nullptr) frame.function = Demangle(name);
    if (cu != nullptr) SetLine(cu, pc - cu_bias, &frame);
    frames.push_back(std::move(frame));
  }
  if (changed) {
    for (Frame& frame : frames) frame.function += kModuleChangedSuffix;
  }
  return frames;
}

Symbolizer::Symbolizer(Detail detail, Servers servers) : detail_(detail), servers_(servers) {}
Symbolizer::~Symbolizer() = default;

Frame Symbolizer::Unknown(uint64_t address) {
  Frame frame;
  frame.address = address;
  return frame;
}

Symbolizer::Module* Symbolizer::GetModule(const std::string& module_path, const std::string& build_id) {
  std::string key = module_path + '\n' + build_id;
  auto found = modules_.find(key);
  if (found != modules_.end()) return found->second.get();
  auto module = std::make_unique<Module>();
  module->path = module_path;
  module->basename = Basename(module_path);
  // Only regular files: a trace names whatever its writer chose, and opening a FIFO or a device would block
  // or read forever.
  struct stat status;
  if (!module_path.empty() && module_path[0] == '/' && stat(module_path.c_str(), &status) == 0 &&
      S_ISREG(status.st_mode)) {
    module->dwfl = dwfl_begin(CallbacksFor(servers_));
    if (module->dwfl != nullptr) {
      module->module = dwfl_report_offline(module->dwfl, module->basename.c_str(), module_path.c_str(), -1);
      dwfl_report_end(module->dwfl, nullptr, nullptr);
      if (module->module != nullptr && dwfl_module_getelf(module->module, &module->bias) == nullptr) {
        module->module = nullptr;
      }
      if (module->module != nullptr && !build_id.empty())
        module->changed = !SameHex(HexBuildId(module->module), build_id);
    }
  }
  Module* result = module.get();
  modules_.emplace(std::move(key), std::move(module));
  return result;
}

const std::vector<Frame>& Symbolizer::Symbolize(const std::string& module_path, const std::string& build_id,
                                                uint64_t file_address) {
  Module* module = GetModule(module_path, build_id);
  auto found = module->cache.find(file_address);
  if (found != module->cache.end()) return found->second;
  return module->cache.emplace(file_address, module->Lookup(file_address, detail_)).first->second;
}

}  // namespace memtide
