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

struct CopiedStack {
  std::vector<uintptr_t> frames;
  std::vector<int32_t> modules;
};

CopiedStack Copy(const StackDepot& depot, uint32_t id) {
  const StackRecord* record = depot.Get(id);
  REQUIRE(record != nullptr);
  CopiedStack copy{std::vector<uintptr_t>(record->depth), std::vector<int32_t>(record->depth)};
  StackDepot::CopyFrames(*record, copy.frames.data(), copy.modules.data());
  return copy;
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
  CHECK(Copy(depot, id_b).frames == b);
  CHECK(Copy(depot, id_b).modules == std::vector<int32_t>(7, -1));
  CHECK(depot.Get(99) == nullptr);
  // The empty stack (nothing but memtide's own frames was captured) is a stack too.
  CHECK(depot.Intern(nullptr, 0, StackDepot::Hash(nullptr, 0)) == 4);
  CHECK(depot.Intern(nullptr, 0, StackDepot::Hash(nullptr, 0)) == 4);
}

TEST_CASE("stacks that share outer frames share their segments and still read back whole") {
  StackDepot depot(nullptr);
  // 1000 stacks of 48 frames (six segments) whose 40 outer frames are one of two paths: 2 x 5 shared segments
  // plus one innermost segment each.
  const auto outer_a = MakeStack(7, 40);
  const auto outer_b = MakeStack(8, 40);
  std::vector<std::vector<uintptr_t>> stacks;
  for (uint64_t s = 0; s < 1000; ++s) {
    std::vector<uintptr_t> frames = MakeStack(1000 + s, 8);
    const auto& outer = s % 2 == 0 ? outer_a : outer_b;
    frames.insert(frames.end(), outer.begin(), outer.end());
    stacks.push_back(frames);
  }
  std::vector<uint32_t> ids;
  for (const auto& frames : stacks) ids.push_back(Intern(depot, frames));
  for (size_t s = 0; s < stacks.size(); ++s) {
    REQUIRE(Intern(depot, stacks[s]) == ids[s]);
    REQUIRE(Copy(depot, ids[s]).frames == stacks[s]);
  }
  CHECK(depot.MaxId() == 1000);
  // Flat, the frames alone would be 1000 x 48 x 12 bytes = 576,000; shared, the outer ones are stored twice.
  const size_t frame_bytes = (1000 * 8 + 2 * 40) * (sizeof(uintptr_t) + sizeof(int32_t));
  MESSAGE("depot: " << depot.MemoryBytes() << " bytes for 1000 stacks of 48 frames; their unshared frames take "
                    << frame_bytes);
  // The arena grows in 256 KiB blocks: one holds all of it (the flat layout needed three).
  CHECK(depot.MemoryBytes() < size_t{512} << 10);
}

TEST_CASE("a stack, its prefix, its extension and one that differs in an outer segment stay apart") {
  StackDepot depot(nullptr);
  const auto base = MakeStack(21, 24);  // three full segments
  auto longer = base;
  longer.push_back(0x123450);  // one more outermost frame: every segment boundary moves
  auto shorter = base;
  shorter.pop_back();
  auto outer_differs = base;
  outer_differs[23] ^= 0x40;  // the outermost segment only
  auto inner_differs = base;
  inner_differs[0] ^= 0x40;
  const std::vector<std::vector<uintptr_t>> all = {base, longer, shorter, outer_differs, inner_differs,
                                                   MakeStack(22, kMaxStackDepth)};
  std::vector<uint32_t> ids;
  for (const auto& frames : all) ids.push_back(Intern(depot, frames));
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) CHECK(ids[i] != ids[j]);
    CHECK(Intern(depot, all[i]) == ids[i]);
    CHECK(Copy(depot, ids[i]).frames == all[i]);
    CHECK(depot.Find(all[i].data(), static_cast<uint32_t>(all[i].size()),
                     StackDepot::Hash(all[i].data(), static_cast<uint32_t>(all[i].size()))) == ids[i]);
  }
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
    REQUIRE(Copy(depot, seen[0][s]).frames == MakeStack(static_cast<uint64_t>(s) * 7777, 4 + s % 9));
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
  const std::vector<int32_t> resolved = Copy(depot, id).modules;
  const std::vector<ModuleInfo> known = modules.Modules();
  REQUIRE(resolved[0] >= 0);
  char exe[4096];
  REQUIRE(realpath("/proc/self/exe", exe) != nullptr);
  CHECK(known[resolved[0]].path == exe);
  REQUIRE(resolved[1] >= 0);
  CHECK(known[resolved[1]].path.find("libc.so") != std::string::npos);
  CHECK(resolved[2] == -1);
}

}  // namespace
}  // namespace memtide::internal
