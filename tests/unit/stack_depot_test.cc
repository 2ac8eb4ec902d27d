// The stack depot (tracer/stack_depot.h): deduplication, stable ids, lock-free finds, concurrent inserts, and
// module resolution of a stack's frames when it is first seen.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "stack_depot.h"

#include <doctest/doctest.h>
#include <dlfcn.h>
#include <string.h>

#include <thread>
#include <vector>

#include "module_map.h"

namespace memtide::internal {
namespace {

std::vector<uintptr_t> MakeStack(uint64_t seed, uint32_t depth) {
  std::vector<uintptr_t> frames(depth);
  for (uint32_t i = 0; i < depth; ++i) frames[i] = 0x400000 + ((seed * 131 + i * 7919) % 100000) * 4;
  return frames;
}

uint32_t Intern(StackDepot& depot, const std::vector<uintptr_t>& frames) {
  const uint32_t depth = static_cast<uint32_t>(frames.size());
  return depot.Intern(frames.data(), depth, StackDepot::Hash(frames.data(), depth));
}

TEST_CASE("the same frames get the same id, different frames another; records keep the frames") {
  StackDepot depot(nullptr);
  const auto a = MakeStack(1, 7);
  const auto b = MakeStack(2, 7);
  auto a_prefix = a;
  a_prefix.pop_back();
  const uint32_t id_a = Intern(depot, a);
  const uint32_t id_b = Intern(depot, b);
  const uint32_t id_prefix = Intern(depot, a_prefix);
  CHECK(id_a == 1);
  CHECK(id_b == 2);
  CHECK(id_prefix == 3);
  CHECK(Intern(depot, a) == id_a);
  CHECK(Intern(depot, a_prefix) == id_prefix);
  CHECK(depot.Find(a.data(), 7, StackDepot::Hash(a.data(), 7)) == id_a);
  CHECK(depot.MaxId() == 3);
  const StackRecord* record = depot.Get(id_b);
  REQUIRE(record != nullptr);
  CHECK(record->depth == 7);
  CHECK(memcmp(record->frames(), b.data(), 7 * sizeof(uintptr_t)) == 0);
  CHECK(record->modules()[0] == -1);
  CHECK(depot.Get(99) == nullptr);
  // The empty stack (nothing but memtide's own frames was captured) is a stack too.
  CHECK(depot.Intern(nullptr, 0, StackDepot::Hash(nullptr, 0)) == 4);
  CHECK(depot.Intern(nullptr, 0, StackDepot::Hash(nullptr, 0)) == 4);
}

TEST_CASE("a hash collision never merges two stacks") {
  StackDepot depot(nullptr);
  const auto a = MakeStack(10, 5);
  const auto b = MakeStack(11, 5);
  // Both under a's hash: the full comparison must keep them apart.
  const uint64_t hash = StackDepot::Hash(a.data(), 5);
  const uint32_t id_a = depot.Intern(a.data(), 5, hash);
  const uint32_t id_b = depot.Intern(b.data(), 5, hash);
  CHECK(id_a != id_b);
  CHECK(depot.Intern(a.data(), 5, hash) == id_a);
  CHECK(depot.Intern(b.data(), 5, hash) == id_b);
}

TEST_CASE("ids stay stable through many growths") {
  StackDepot depot(nullptr);
  std::vector<uint32_t> ids;
  for (uint64_t s = 0; s < 50000; ++s) ids.push_back(Intern(depot, MakeStack(s * 1000003, 3 + s % 20)));
  for (uint64_t s = 0; s < 50000; ++s) REQUIRE(Intern(depot, MakeStack(s * 1000003, 3 + s % 20)) == ids[s]);
  CHECK(depot.MaxId() == 50000);
  MESSAGE("depot: " << depot.MemoryBytes() / 50000.0 << " bytes per stack of 3..22 frames");
}

TEST_CASE("threads interning overlapping stacks concurrently agree on every id") {
  StackDepot depot(nullptr);
  constexpr int kThreads = 4;
  constexpr int kStacks = 20000;
  std::vector<std::vector<uint32_t>> seen(kThreads, std::vector<uint32_t>(kStacks));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread walks the same stacks in its own order (multipliers prime to kStacks), so inserts of one
      // stack race.
      static constexpr int kStride[kThreads] = {1, 3, 7, 9};
      for (int i = 0; i < kStacks; ++i) {
        const int s = (i * kStride[t] + t * 997) % kStacks;
        seen[t][s] = Intern(depot, MakeStack(static_cast<uint64_t>(s) * 7777, 4 + s % 9));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int s = 0; s < kStacks; ++s) {
    REQUIRE(seen[0][s] != 0);
    for (int t = 1; t < kThreads; ++t) REQUIRE(seen[t][s] == seen[0][s]);
  }
  CHECK(depot.MaxId() == kStacks);
}

__attribute__((noinline)) uintptr_t CodeAddressHere() {
  return reinterpret_cast<uintptr_t>(__builtin_return_address(0));
}

TEST_CASE("a new stack's frames are resolved against the module map") {
  ModuleMap modules;
  StackDepot depot(&modules);
  // A code address in libc, taken from libc itself (&memcmp may be a sanitizer's interceptor).
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  REQUIRE(libc != nullptr);
  void* libc_function = dlsym(libc, "getpid");
  REQUIRE(libc_function != nullptr);
  const std::vector<uintptr_t> frames = {CodeAddressHere(), reinterpret_cast<uintptr_t>(libc_function), 0x10};
  const uint32_t id = Intern(depot, frames);
  const StackRecord* record = depot.Get(id);
  REQUIRE(record != nullptr);
  const std::vector<ModuleInfo> known = modules.Modules();
  REQUIRE(record->modules()[0] >= 0);
  char exe[4096];
  REQUIRE(realpath("/proc/self/exe", exe) != nullptr);
  CHECK(known[record->modules()[0]].path == exe);
  REQUIRE(record->modules()[1] >= 0);
  CHECK(known[record->modules()[1]].path.find("libc.so") != std::string::npos);
  CHECK(record->modules()[2] == -1);
}

}  // namespace
}  // namespace memtide::internal
