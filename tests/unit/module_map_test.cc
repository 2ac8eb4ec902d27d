// The module map (tracer/module_map.h): addresses resolve to the executable and to libraries with their build
// ids, and a library keeps its name after dlclose; an unload moves the unload epoch, and the stack depot
// (tracer/stack_depot.h) stops handing out a stack through the unloaded code.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "module_map.h"
#include "stack_depot.h"

#include <dlfcn.h>
#include <doctest/doctest.h>
#include <limits.h>
#include <stdlib.h>

#include <string>
#include <vector>

#ifndef MEMTIDE_MODULE_MAP_TEST_LIB
#error "the build passes the test library's path"
#endif

namespace memtide::internal {
namespace {

__attribute__((noinline)) int FunctionOfTheExecutable(int x) { return x + 1; }

int32_t ResolveOne(ModuleMap& map, uintptr_t address) {
  int32_t index = -2;
  map.Resolve(&address, 1, &index);
  return index;
}

TEST_CASE("the executable is named by its real path, with a build id, base and range") {
  ModuleMap map;
  const uintptr_t address = reinterpret_cast<uintptr_t>(&FunctionOfTheExecutable);
  const int32_t index = ResolveOne(map, address);
  REQUIRE(index >= 0);
  const ModuleInfo module = map.Modules()[index];
  char exe[PATH_MAX];
  REQUIRE(realpath("/proc/self/exe", exe) != nullptr);
  CHECK(module.path == exe);
  CHECK(module.build_id.size() >= 16);  // Debian's toolchain always emits one
  CHECK(module.start <= address);
  CHECK(address < module.end);
  CHECK(module.base <= module.start);
}

TEST_CASE("a dlopen'ed library resolves to it and stays named after dlclose") {
  ModuleMap map;
  map.Refresh();
  const size_t modules_before = map.Modules().size();
  void* handle = dlopen(MEMTIDE_MODULE_MAP_TEST_LIB, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(handle != nullptr);
  void* function = dlsym(handle, "memtide_module_map_test_function");
  REQUIRE(function != nullptr);
  const uintptr_t address = reinterpret_cast<uintptr_t>(function);
  const int32_t index = ResolveOne(map, address);  // the loader's counters moved: the map re-reads
  REQUIRE(index >= 0);
  CHECK(static_cast<size_t>(index) >= modules_before);
  ModuleInfo module = map.Modules()[index];
  CHECK(module.path.find("module_map_test_lib") != std::string::npos);
  CHECK_FALSE(module.build_id.empty());
  const uintptr_t offset = address - module.base;

  REQUIRE(dlclose(handle) == 0);
  // Unloaded: the address belongs to nothing now, but the module keeps its index and name.
  CHECK(ResolveOne(map, address) == -1);
  const std::vector<ModuleInfo> after = map.Modules();
  REQUIRE(after.size() > static_cast<size_t>(index));
  CHECK(after[index].path == module.path);
  CHECK(after[index].base == module.base);

  // Loaded again (perhaps elsewhere): the same file resolves again, with the same offset.
  handle = dlopen(MEMTIDE_MODULE_MAP_TEST_LIB, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(handle != nullptr);
  const uintptr_t again = reinterpret_cast<uintptr_t>(dlsym(handle, "memtide_module_map_test_function"));
  const int32_t index_again = ResolveOne(map, again);
  REQUIRE(index_again >= 0);
  const ModuleInfo reloaded = map.Modules()[index_again];
  CHECK(reloaded.path == module.path);
  CHECK(again - reloaded.base == offset);
  dlclose(handle);
}

TEST_CASE("an unload moves the epoch, and a stack through the unloaded code is stored again") {
  ModuleMap map;
  StackDepot depot(&map);
  map.Refresh();
  void* handle = dlopen(MEMTIDE_MODULE_MAP_TEST_LIB, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(handle != nullptr);
  const uintptr_t in_library = reinterpret_cast<uintptr_t>(dlsym(handle, "memtide_module_map_test_function"));
  REQUIRE(in_library != 0);
  const uintptr_t in_executable = reinterpret_cast<uintptr_t>(&FunctionOfTheExecutable);
  const uintptr_t stack[2] = {in_library + 1, in_executable + 1};
  const uint64_t hash = StackDepot::Hash(stack, 2);
  const uint32_t first = depot.Intern(stack, 2, hash);
  REQUIRE(first != 0);
  uintptr_t frames[2];
  int32_t modules[2];
  StackDepot::CopyFrames(*depot.Get(first), frames, modules);
  const int32_t library_index = modules[0];
  REQUIRE(library_index >= 0);
  CHECK(depot.Find(stack, 2, hash) == first);
  const uint32_t epoch = map.unload_epoch();
  CHECK_FALSE(map.UnloadedSince(epoch, stack, 2));

  REQUIRE(dlclose(handle) == 0);
  map.RefreshIfChanged();
  CHECK(map.unload_epoch() == epoch + 1);
  CHECK(map.UnloadedSince(epoch, &stack[0], 1));
  CHECK_FALSE(map.UnloadedSince(epoch, &stack[1], 1));  // the executable stays
  CHECK_FALSE(map.UnloadedSince(epoch + 1, stack, 2));  // nothing unloaded after the new epoch

  // The old record is not handed out again: its first frame may be other code now. Stored again, the stack
  // is resolved afresh (nothing there now), while the old record keeps the library's name for the blocks
  // allocated before.
  CHECK(depot.Find(stack, 2, hash) == 0);
  const uint32_t second = depot.Intern(stack, 2, hash);
  REQUIRE(second != 0);
  CHECK(second != first);
  CHECK(depot.Find(stack, 2, hash) == second);
  CHECK(depot.Intern(stack, 2, hash) == second);
  StackDepot::CopyFrames(*depot.Get(second), frames, modules);
  CHECK(modules[0] == -1);
  CHECK(modules[1] >= 0);
  StackDepot::CopyFrames(*depot.Get(first), frames, modules);
  CHECK(modules[0] == library_index);

  // A stack that never went through the library keeps its record across the unload.
  const uintptr_t kept[1] = {in_executable + 2};
  handle = dlopen(MEMTIDE_MODULE_MAP_TEST_LIB, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(handle != nullptr);
  const uint32_t kept_id = depot.Intern(kept, 1, StackDepot::Hash(kept, 1));
  REQUIRE(dlclose(handle) == 0);
  map.RefreshIfChanged();
  CHECK(map.unload_epoch() == epoch + 2);
  CHECK(depot.Find(kept, 1, StackDepot::Hash(kept, 1)) == kept_id);
}

TEST_CASE("an address outside every module is -1 and costs no re-read") {
  ModuleMap map;
  map.Refresh();
  const size_t count = map.Modules().size();
  CHECK(ResolveOne(map, 0x10) == -1);
  CHECK(map.Modules().size() == count);
}

}  // namespace
}  // namespace memtide::internal
