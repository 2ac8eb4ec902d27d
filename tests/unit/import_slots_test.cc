// preload/import_slots.cc: finding a loaded library's slot for an imported function and pointing it elsewhere,
// in the three layouts a library's slots come in: a lazily bound PLT slot (writable), a PLT slot bound at load
// (-z now: inside RELRO, read-only), a GOT entry of code built with -fno-plt (read-only).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "import_slots.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

using memtide::internal::FindImportSlot;
using memtide::internal::ImportSlot;
using memtide::internal::RedirectImport;

namespace {

constexpr int kRedirectedAnswer = 4242;
int RedirectedParentId() { return kRedirectedAnswer; }

// The permissions column of the /proc/self/maps line that holds `address` ("rw-p"), or "".
std::string PermissionsAt(const void* address) {
  std::ifstream maps("/proc/self/maps");
  const auto target = reinterpret_cast<uintptr_t>(address);
  for (std::string line; std::getline(maps, line);) {
    uintptr_t begin = 0, end = 0;
    char permissions[8] = {};
    if (sscanf(line.c_str(), "%lx-%lx %7s", &begin, &end, permissions) == 3 && target >= begin && target < end) {
      return permissions;
    }
  }
  return "";
}

void CheckRedirect(const char* library, int open_mode, bool call_first, bool expect_read_only) {
  INFO(library);
  void* handle = dlopen(library, open_mode | RTLD_LOCAL);
  REQUIRE(handle != nullptr);
  auto fixture = reinterpret_cast<int (*)()>(dlsym(handle, "FixtureParentId"));
  REQUIRE(reinterpret_cast<void*>(fixture) != nullptr);
  if (call_first) CHECK(fixture() == getppid());

  const ImportSlot slot = FindImportSlot(reinterpret_cast<const void*>(fixture), "getppid");
  REQUIRE(slot.address != nullptr);
  CHECK(slot.read_only == expect_read_only);
  CHECK(PermissionsAt(slot.address) == (expect_read_only ? "r--p" : "rw-p"));
  CHECK(FindImportSlot(reinterpret_cast<const void*>(fixture), "getpid").address == nullptr);

  REQUIRE(RedirectImport(slot, reinterpret_cast<void*>(&RedirectedParentId)));
  CHECK(fixture() == kRedirectedAnswer);
  CHECK(fixture() == kRedirectedAnswer);  // a lazy slot stays redirected: the loader's resolver never ran
  CHECK(getppid() != kRedirectedAnswer);  // everyone else's getppid is unchanged
  CHECK(PermissionsAt(slot.address) == (expect_read_only ? "r--p" : "rw-p"));
}

}  // namespace

TEST_CASE("a lazily bound slot is redirected before and after its first call") {
  CheckRedirect(MEMTIDE_IMPORT_FIXTURE_LAZY, RTLD_LAZY, /*call_first=*/false, /*expect_read_only=*/false);
}

TEST_CASE("a slot bound at load inside RELRO is redirected and stays read-only") {
  CheckRedirect(MEMTIDE_IMPORT_FIXTURE_NOW, RTLD_NOW, /*call_first=*/true, /*expect_read_only=*/true);
}

TEST_CASE("a -fno-plt library's GOT entry is redirected") {
  CheckRedirect(MEMTIDE_IMPORT_FIXTURE_NO_PLT, RTLD_NOW, /*call_first=*/true, /*expect_read_only=*/true);
}

TEST_CASE("an address outside every loaded object has no slot") {
  int on_the_stack = 0;
  CHECK(FindImportSlot(&on_the_stack, "getppid").address == nullptr);
  CHECK(FindImportSlot(nullptr, "getppid").address == nullptr);
  CHECK_FALSE(RedirectImport(ImportSlot{}, reinterpret_cast<void*>(&RedirectedParentId)));
}
