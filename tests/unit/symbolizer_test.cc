// Unit tests for tracer/symbolizer.cc: return addresses taken in a library built here with -g
// (symbolizer_fixture.cc) must come back with the exact function, file and line, an inlined function as its
// own frame, a changed build id marked, an unreadable module as module+offset, split debug info found through
// its .gnu_debuglink; and with symbol names alone, the symbol table's name and nothing from DWARF.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "symbolizer.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <doctest/doctest.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "fmt/format.h"
#include "leak_suppressions.h"
#include "symbolizer_fixture.h"

namespace memtide {
namespace {

struct Located {
  std::string path;
  uint64_t offset = 0;  // file address, as the tracer records it
  uintptr_t bias = 0;
};

Located Locate(const void* address) {
  Dl_info info{};
  link_map* map = nullptr;
  REQUIRE(dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) != 0);
  REQUIRE(map != nullptr);
  char resolved[4096];
  REQUIRE(realpath(info.dli_fname, resolved) != nullptr);
  return Located{resolved, reinterpret_cast<uintptr_t>(address) - map->l_addr, map->l_addr};
}

// The module's GNU build id from its loaded program headers.
std::string BuildId(uintptr_t bias) {
  struct Search {
    uintptr_t bias;
    std::string hex;
  } search{bias, ""};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* s = static_cast<Search*>(data);
        if (info->dlpi_addr != s->bias) return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& header = info->dlpi_phdr[i];
          if (header.p_type != PT_NOTE) continue;
          const char* note = reinterpret_cast<const char*>(info->dlpi_addr + header.p_vaddr);
          const char* end = note + header.p_memsz;
          while (note + sizeof(ElfW(Nhdr)) <= end) {
            const auto* n = reinterpret_cast<const ElfW(Nhdr)*>(note);
            const char* name = note + sizeof(ElfW(Nhdr));
            const auto* desc = reinterpret_cast<const unsigned char*>(name + ((n->n_namesz + 3) & ~3u));
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
              for (uint32_t k = 0; k < n->n_descsz; ++k) s->hex += fmt::format("{:02x}", desc[k]);
              return 1;
            }
            note = reinterpret_cast<const char*>(desc) + ((n->n_descsz + 3) & ~3u);
          }
        }
        return 1;
      },
      &search);
  return search.hex;
}

int MarkedLine(const std::string& mark) {
  std::ifstream in(MEMTIDE_FIXTURE_SOURCE);
  REQUIRE(in.good());
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find("// MARK:" + mark) != std::string::npos) return number;
  }
  FAIL("no MARK:" << mark << " in " << MEMTIDE_FIXTURE_SOURCE);
  return 0;
}

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// The frames of the fixture's call on the line marked direct_call, whichever compiler built the library.
const std::vector<Frame>& CheckDirectCall(Symbolizer& symbolizer, const Located& where) {
  const std::vector<Frame>& frames = symbolizer.Symbolize(where.path, "", where.offset);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].function == "fixture::DirectCaller()");
  CHECK(Basename(frames[0].file) == "symbolizer_fixture.cc");
  CHECK(frames[0].line == MarkedLine("direct_call"));
  return frames;
}

// The same for the call inside InlinedHelper, inlined into OuterFunction.
void CheckInlinedCall(Symbolizer& symbolizer, const Located& where) {
  const std::vector<Frame>& frames = symbolizer.Symbolize(where.path, "", where.offset);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].function.find("InlinedHelper") != std::string::npos);
  CHECK(Basename(frames[0].file) == "symbolizer_fixture.cc");
  CHECK(frames[0].line == MarkedLine("inlined_call"));
  CHECK(frames[1].function == "fixture::OuterFunction(int)");
  CHECK(Basename(frames[1].file) == "symbolizer_fixture.cc");
  CHECK(frames[1].line == MarkedLine("outer_call"));
  CHECK(frames[1].address == where.offset);
}

TEST_CASE("a return address names its function, file and line exactly") {
  Located where = Locate(fixture::DirectCaller());
  Symbolizer symbolizer;
  const std::vector<Frame>& frames = CheckDirectCall(symbolizer, where);
  CHECK(frames[0].module == Basename(where.path));
  CHECK(frames[0].module_path == where.path);
  CHECK(frames[0].address == where.offset);  // the recorded address, not the one looked up
  // Cached: the same frames, not a new lookup.
  CHECK(&symbolizer.Symbolize(where.path, "", where.offset) == &frames);
}

TEST_CASE("an inlined function is its own frame, then the function it was inlined into at the call site") {
  Symbolizer symbolizer;
  CheckInlinedCall(symbolizer, Locate(fixture::OuterFunction(7)));
}

// clang writes no .debug_aranges unless asked and nests each function's definition in its namespace's DIE;
// elfutils 0.188 finds neither the unit nor the scopes of such code by itself (every frame of a clang-built
// program had no file or line, and Rust's inlined calls were lost).
TEST_CASE("a clang-built library: file, line and inlined frames as for gcc's") {
  void* library = dlopen(MEMTIDE_CLANG_FIXTURE, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(library != nullptr);
  auto direct = reinterpret_cast<void* (*)()>(dlsym(library, "_ZN7fixture12DirectCallerEv"));
  auto outer = reinterpret_cast<void* (*)(int)>(dlsym(library, "_ZN7fixture13OuterFunctionEi"));
  REQUIRE(reinterpret_cast<void*>(direct) != nullptr);
  REQUIRE(reinterpret_cast<void*>(outer) != nullptr);
  Located where = Locate(direct());
  REQUIRE(Basename(where.path) == "libsymbolizer_fixture_clang.so");
  Symbolizer symbolizer;
  CheckDirectCall(symbolizer, where);
  CheckInlinedCall(symbolizer, Locate(outer(7)));
  dlclose(library);
}

TEST_CASE("symbol names alone: the real function from the symbol table, one frame, no file or line") {
  Located where = Locate(fixture::OuterFunction(7));
  Symbolizer symbolizer(Symbolizer::Detail::kSymbolNames);
  const std::vector<Frame>& frames = symbolizer.Symbolize(where.path, "", where.offset);
  REQUIRE(frames.size() == 1);  // InlinedHelper is known from DWARF only
  CHECK(frames[0].function == "fixture::OuterFunction(int)");
  CHECK(frames[0].file.empty());
  CHECK(frames[0].line == 0);
  CHECK(frames[0].module == Basename(where.path));
  CHECK(frames[0].address == where.offset);
}

TEST_CASE("a module rebuilt since the trace is still named, and marked") {
  Located where = Locate(fixture::DirectCaller());
  std::string build_id = BuildId(where.bias);
  REQUIRE(build_id.size() >= 16);
  Symbolizer symbolizer;
  std::string upper = build_id;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  CHECK(symbolizer.Symbolize(where.path, upper, where.offset)[0].function == "fixture::DirectCaller()");
  const std::vector<Frame>& changed = symbolizer.Symbolize(where.path, "00112233445566778899", where.offset);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].function == std::string("fixture::DirectCaller()") + kModuleChangedSuffix);
  CHECK(changed[0].line == MarkedLine("direct_call"));
}

int Shell(const std::string& command) {
  INFO(command);
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The fixture library with its debug info split off into FOLDER/libfixture.so.debug, found through the
// .gnu_debuglink the stripped FOLDER/libfixture.so carries (objcopy, as distributions and `make install-strip`
// split it). Servers::kNever: the search the symbolizer does itself rather than let elfutils ask a server.
TEST_CASE("split debug info: found beside the module and in its .debug folder, not when another build's") {
  Located where = Locate(fixture::DirectCaller());
  char folder_template[] = "/tmp/memtide-debuglink.XXXXXX";
  REQUIRE(mkdtemp(folder_template) != nullptr);
  const std::string folder = folder_template;
  const std::string module = folder + "/libfixture.so";
  REQUIRE(Shell("cp '" + where.path + "' '" + module + "' && cd '" + folder +
                "' && objcopy --only-keep-debug libfixture.so libfixture.so.debug && objcopy --strip-debug "
                "--add-gnu-debuglink=libfixture.so.debug libfixture.so") == 0);
  auto named = [&](const char* how) {
    Symbolizer symbolizer(Symbolizer::Detail::kFull, Symbolizer::Servers::kNever);
    const Frame& frame = symbolizer.Symbolize(module, "", where.offset).back();
    INFO(how);
    CHECK(frame.function == "fixture::DirectCaller()");
    return Basename(frame.file) == "symbolizer_fixture.cc" && frame.line == MarkedLine("direct_call");
  };
  CHECK(named("beside"));
  REQUIRE(Shell("cd '" + folder + "' && mkdir .debug && mv libfixture.so.debug .debug/") == 0);
  CHECK(named("in .debug"));
  // The test program's own debug info under that name: another build id, so not used (the symbol table still
  // names the function).
  REQUIRE(Shell("objcopy --only-keep-debug /proc/" + std::to_string(getpid()) + "/exe '" + folder +
                "/.debug/libfixture.so.debug'") == 0);
  CHECK(!named("another build's"));
  // ... and the search goes on past it: another build's beside the module, the right one in .debug.
  REQUIRE(Shell("cd '" + folder + "' && mv .debug/libfixture.so.debug . && objcopy --only-keep-debug '" + where.path +
                "' .debug/libfixture.so.debug") == 0);
  CHECK(named("another build's beside, the right one in .debug"));
  Shell("rm -rf '" + folder + "'");
}

TEST_CASE("what cannot be read is ?? at module+offset") {
  Symbolizer symbolizer;
  const std::vector<Frame>& missing = symbolizer.Symbolize("/nonexistent/libgone.so", "abcd", 0x1234);
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].function == kUnknownFunction);
  CHECK(missing[0].file.empty());
  CHECK(FrameModuleOffset(missing[0]) == "libgone.so+0x1234");
  // Not regular files: never opened (a FIFO or a device would block or read forever).
  CHECK(symbolizer.Symbolize("/tmp", "", 1)[0].function == kUnknownFunction);
  CHECK(symbolizer.Symbolize("/dev/zero", "", 1)[0].function == kUnknownFunction);
  CHECK(symbolizer.Symbolize("relative/path.so", "", 1)[0].function == kUnknownFunction);
  // Not ELF.
  CHECK(symbolizer.Symbolize(MEMTIDE_FIXTURE_SOURCE, "", 1)[0].function == kUnknownFunction);
  CHECK(FrameModuleOffset(Symbolizer::Unknown(0x7f0011223344)) == "0x7f0011223344");
}

TEST_CASE("a stripped library is named from its dynamic symbols: libc's stdio buffer allocation") {
  void* function = dlsym(RTLD_DEFAULT, "_IO_file_doallocate");
  if (function == nullptr) return;  // not glibc
  Located where = Locate(function);
  Symbolizer symbolizer;
  // A return address just after the function's first instruction.
  const std::vector<Frame>& frames = symbolizer.Symbolize(where.path, "", where.offset + 1);
  REQUIRE(!frames.empty());
  CHECK(frames.back().function == "_IO_file_doallocate");
  Located program = Locate(fixture::DirectCaller());
  Stack stack = frames;
  for (const Frame& frame : symbolizer.Symbolize(program.path, "", program.offset)) stack.push_back(frame);
  CHECK(IsCRuntimeBlock(stack));
}

// The symbol-table lookup (no debug info) agrees with the loader's own: for return addresses spread over
// libstdc++'s code, the function named is the one dladdr names (demangled), wherever dladdr names one.
TEST_CASE("without debug info, names agree with dladdr across a whole library") {
  void* function = dlsym(RTLD_DEFAULT, "_ZdlPv");  // operator delete(void*), in libstdc++
  REQUIRE(function != nullptr);
  Located where = Locate(function);
  struct Range {
    uintptr_t bias, start = 0, end = 0;
  } range{where.bias};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* r = static_cast<Range*>(data);
        if (info->dlpi_addr != r->bias) return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& header = info->dlpi_phdr[i];
          if (header.p_type == PT_LOAD && (header.p_flags & PF_X) != 0) {
            r->start = info->dlpi_addr + header.p_vaddr;
            r->end = r->start + header.p_memsz;
          }
        }
        return 1;
      },
      &range);
  REQUIRE(range.end > range.start);
  Symbolizer symbolizer;
  int compared = 0;
  for (uintptr_t address = range.start + 1; address < range.end; address += 4099) {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(address), &info) == 0 || info.dli_sname == nullptr) continue;
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    const std::string expected = status == 0 && demangled != nullptr ? demangled : info.dli_sname;
    free(demangled);
    // Symbolize takes return addresses and looks one byte before: pass address + 1.
    const std::vector<Frame>& frames = symbolizer.Symbolize(where.path, "", address + 1 - range.bias);
    if (!frames.back().file.empty()) continue;  // debug info found for it: another path
    INFO("address " << std::hex << address - range.bias);
    CHECK(frames.back().function == expected);
    ++compared;
  }
  MESSAGE(compared << " addresses compared");
  CHECK(compared > 50);
}

}  // namespace
}  // namespace memtide
