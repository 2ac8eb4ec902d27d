// libmemtide_tracer.so through its C API (tracer/tracer_module.h), the way the preload uses it: dlopen the
// built module, start it, call on_allocation/on_free from known functions and threads, take snapshots, fork,
// exit, and read the files back. Built three times: MEMTIDE_TEST_TRACE_MODE 2 (full, tracer_module_test, which
// also prints the cost per traced allocation), the same with the bookkeeping queue and a thread draining it
// (tracer_module_bookkeeping_test: the main thread's changes queued until the first test's threads revoke it),
// and 1 (sample, tracer_module_sample_test); the module starts once per process, so each needs its own.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "tracer_module.h"

#ifndef MEMTIDE_TRACER_MODULE
#error "the build passes the module's path"
#endif
#ifndef MEMTIDE_TEST_TRACE_MODE
#error "the build passes the mode"
#endif

namespace {

constexpr bool kFullMode = MEMTIDE_TEST_TRACE_MODE == kMemtideTraceFull;
#ifdef MEMTIDE_TEST_BOOKKEEPING_THREAD
constexpr bool kBookkeepingThread = true;  // full mode with its table work queued, then revoked
#else
constexpr bool kBookkeepingThread = false;
#endif
constexpr int64_t kSampleMean = 4096;

std::mutex g_log_mutex;
std::vector<std::string> g_log;

void CaptureLogLine(const char* line) {
  std::lock_guard<std::mutex> hold(g_log_mutex);
  g_log.emplace_back(line);
}

std::vector<std::string> LogLines() {
  std::lock_guard<std::mutex> hold(g_log_mutex);
  return g_log;
}

struct Module {
  const MemtideTracerApi* api = nullptr;
  std::string folder;
  std::string trace_pattern;
};

// Started once, on first use. The last test case of each mode removes the folder (see RemoveFolderUnlessKept).
Module& TheModule() {
  static Module module = [] {
    Module m;
    char folder[] = "/tmp/memtide-tracer-test.XXXXXX";
    REQUIRE(mkdtemp(folder) != nullptr);
    m.folder = folder;
    m.trace_pattern = m.folder + "/trace.%p.json";
    void* handle = dlopen(MEMTIDE_TRACER_MODULE, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) FAIL(dlerror());
    void* entry = dlsym(handle, MEMTIDE_TRACER_ENTRY);
    REQUIRE(entry != nullptr);
    auto start = reinterpret_cast<MemtideTracerStartFunction>(entry);
    MemtideTracerConfig config{};
    config.abi_version = MEMTIDE_TRACER_ABI_VERSION;
    config.mode = MEMTIDE_TEST_TRACE_MODE;
    config.sample_mean_bytes = kSampleMean;
    config.max_frames = 64;
    config.fast_unwind = 1;
    config.leak_report_top = 10;
    config.trace_file = m.trace_pattern.c_str();
    config.suppressions = "";
    config.segment_dir = m.folder.c_str();
    config.log_line = CaptureLogLine;
    config.bookkeeping_thread = kBookkeepingThread ? 1 : 0;
    m.api = start(&config);
    REQUIRE(m.api != nullptr);
    REQUIRE(m.api->abi_version == MEMTIDE_TRACER_ABI_VERSION);
    if (kBookkeepingThread) {
      // The preload's bookkeeping thread (preload/bookkeeping_thread.cc), until the first test's threads
      // revoke the queue.
      REQUIRE(m.api->drain_bookkeeping() >= 0);
      const MemtideTracerApi* api = m.api;
      std::thread([api] {
        while (api->drain_bookkeeping() >= 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }).detach();
    }
    // The config's strings were copied: the module must not keep pointers into it.
    memset(&config, 0, sizeof(config));
    return m;
  }();
  return module;
}

// MEMTIDE_KEEP_TEST_FILES=1 keeps the traces for a human to look at.
void RemoveFolderUnlessKept() {
  const char* keep = getenv("MEMTIDE_KEEP_TEST_FILES");
  if (keep != nullptr && keep[0] == '1') return;
  std::error_code error;
  std::filesystem::remove_all(TheModule().folder, error);
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// The version-2 call tree unrolled: "stacks" [{"id", "frames" innermost first}] and "sites" as objects with a
// "stack" id, the shape the checks below read.
nlohmann::json Unrolled(const nlohmann::json& trace) {
  nlohmann::json result = trace;
  result["stacks"] = nlohmann::json::array();
  result["sites"] = nlohmann::json::array();
  const auto& fields = trace["site_fields"];
  uint32_t number = 0;
  for (const auto& values : trace["sites"]) {
    nlohmann::json site = nlohmann::json::object();
    for (size_t i = 0; i < fields.size(); ++i) site[fields[i].get<std::string>()] = values[i];
    nlohmann::json frames = nlohmann::json::array();
    for (int64_t node = site["node"].get<int64_t>(); node >= 0; node = trace["nodes"][node][0].get<int64_t>()) {
      frames.push_back(trace["frames"][trace["nodes"][node][1].get<size_t>()]);
    }
    site.erase("node");
    site["stack"] = ++number;
    result["stacks"].push_back({{"id", number}, {"frames", frames}});
    result["sites"].push_back(site);
  }
  return result;
}

// The preload's per-thread words for the module (its initial-exec TLS there); the test threads' own.
thread_local MemtideTracerThread t_words{};

nlohmann::json Snapshot() {
  char name[256];
  char message[256];
  const int error = TheModule().api->write_snapshot(nullptr, name, sizeof(name), message, sizeof(message), &t_words);
  INFO(message);
  REQUIRE(error == 0);
  return Unrolled(ReadJson(TheModule().folder + "/" + name));
}

std::string ExecutablePath() {
  char exe[PATH_MAX];
  REQUIRE(realpath("/proc/self/exe", exe) != nullptr);
  return exe;
}

// Return address of the call to this function: a code address inside the caller, right after the call.
__attribute__((noinline)) uintptr_t AddressInCaller() {
  asm volatile("" ::: "memory");
  return reinterpret_cast<uintptr_t>(__builtin_return_address(0));
}

// The preload's part in sample mode, per thread: a countdown of usable bytes and the RNG word.
struct ThreadSampler {
  int64_t countdown = 0;
};

std::atomic<uintptr_t> g_allocate_here_marker{0};
std::atomic<uintptr_t> g_level2_marker{0};

// Where the test "allocates": frames[0] of the recorded stacks must be the return address of the
// on_allocation call in here, frames[1] the one in Level2.
__attribute__((noinline)) int AllocateHere(void* pointer, size_t size, ThreadSampler* sampler) {
  const MemtideTracerApi* api = TheModule().api;
  int tracked = 0;
  if (kFullMode) {
    api->on_allocation(pointer, size, size, &t_words, &tracked);
  } else {
    // As preload/trace_hooks.cc does it: a thread's first allocation only draws the countdown, every block is
    // charged to it, and the module is called when it drops below zero.
    if (t_words.rng_state == 0) sampler->countdown = api->on_allocation(nullptr, 0, 0, &t_words, &tracked);
    sampler->countdown -= static_cast<int64_t>(size);
    if (sampler->countdown < 0) sampler->countdown = api->on_allocation(pointer, size, size, &t_words, &tracked);
  }
  g_allocate_here_marker.store(AddressInCaller(), std::memory_order_relaxed);
  return tracked;
}

__attribute__((noinline)) int Level2(void* pointer, size_t size, ThreadSampler* sampler) {
  const int tracked = AllocateHere(pointer, size, sampler);
  g_level2_marker.store(AddressInCaller(), std::memory_order_relaxed);
  return tracked;
}

__attribute__((noinline)) int Level1(void* pointer, size_t size, ThreadSampler* sampler) {
  const int tracked = Level2(pointer, size, sampler);
  asm volatile("" ::: "memory");
  return tracked;
}

struct Block {
  void* pointer;
  size_t size;
  int tracked;
};

// Every stack whose innermost frame is the on_allocation call in AllocateHere, as resolved in the file.
std::vector<uint32_t> StacksFromAllocateHere(const nlohmann::json& trace) {
  const std::string exe = ExecutablePath();
  const uintptr_t marker = g_allocate_here_marker.load();
  const uintptr_t level2 = g_level2_marker.load();
  std::vector<uint32_t> ids;
  for (const auto& stack : trace["stacks"]) {
    const auto& frames = stack["frames"];
    if (frames.size() < 2) continue;
    const int module = frames[0][0].get<int>();
    if (module < 0) continue;
    const auto& info = trace["modules"][module];
    if (info["path"] != exe) continue;
    const uintptr_t address = info["base"].get<uintptr_t>() + frames[0][1].get<uintptr_t>();
    // The on_allocation call sits just before the call of AddressInCaller.
    if (address >= marker || marker - address > 64) continue;
    const int module1 = frames[1][0].get<int>();
    REQUIRE(module1 == module);
    const uintptr_t address1 = info["base"].get<uintptr_t>() + frames[1][1].get<uintptr_t>();
    CHECK(address1 < level2);
    CHECK(level2 - address1 <= 64);
    ids.push_back(stack["id"].get<uint32_t>());
  }
  return ids;
}

double SumOverSites(const nlohmann::json& trace, const std::vector<uint32_t>& stacks, const char* key) {
  double sum = 0;
  for (const auto& site : trace["sites"]) {
    for (uint32_t id : stacks) {
      if (site["stack"] == id) sum += site[key].get<double>();
    }
  }
  return sum;
}

#if MEMTIDE_TEST_TRACE_MODE == 2  // full

std::vector<Block> g_kept;  // blocks still live when at_exit runs

TEST_CASE("full: blocks from known functions and threads, stacks resolved to this executable") {
  const MemtideTracerApi* api = TheModule().api;
  ThreadSampler sampler;
  std::vector<Block> blocks;
  for (int i = 0; i < 100; ++i) {
    const size_t size = 1000 + (i % 3);
    void* pointer = malloc(size);
    blocks.push_back({pointer, size, Level1(pointer, size, &sampler)});
    CHECK(blocks.back().tracked == 1);
  }
  // Four threads, each freeing half of its own blocks and handing the rest to the main thread.
  std::vector<std::vector<Block>> per_thread(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&per_thread, t, api] {
      ThreadSampler thread_sampler;
      for (int i = 0; i < 1000; ++i) {
        void* pointer = malloc(64);
        const int tracked = Level1(pointer, 64, &thread_sampler);
        if (i % 2 == 0) {
          CHECK(api->on_free(pointer, &t_words) == 1);
          free(pointer);
        } else {
          per_thread[t].push_back({pointer, 64, tracked});
        }
      }
      api->on_thread_exit(&t_words);  // as the preload does when the thread ends
    });
  }
  for (auto& thread : threads) thread.join();

  const nlohmann::json trace = Snapshot();
  CHECK(trace["kind"] == "snapshot");
  CHECK(trace["mode"] == "full");
  CHECK(trace["pid"] == getpid());
  CHECK(trace["complete"] == true);
  const std::vector<uint32_t> ids = StacksFromAllocateHere(trace);
  // One stack for the main thread (distinct outer frames), one shared by the four threads.
  CHECK(ids.size() == 2);
  CHECK(SumOverSites(trace, ids, "live_blocks") == 100 + 4 * 500);
  constexpr double kMainBytes = 34 * 1000 + 33 * 1001 + 33 * 1002;
  CHECK(SumOverSites(trace, ids, "live_bytes") == kMainBytes + 4 * 500 * 64);
  CHECK(SumOverSites(trace, ids, "allocations") == 100 + 4 * 1000);
  // Blocks freed on another thread than the one that allocated them.
  for (auto& list : per_thread) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (i % 5 == 0) {
        CHECK(api->on_free(list[i].pointer, &t_words) == 1);
        free(list[i].pointer);
      } else {
        g_kept.push_back(list[i]);
      }
    }
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i < 90) {
      CHECK(api->on_free(blocks[i].pointer, &t_words) == 1);
      free(blocks[i].pointer);
    } else {
      g_kept.push_back(blocks[i]);
    }
  }
  const nlohmann::json after = Snapshot();
  CHECK(SumOverSites(after, StacksFromAllocateHere(after), "live_blocks") == 10 + 4 * 400);
  // The peak of this test: all 100 + 2000 blocks were live together.
  CHECK(after["totals"]["peak_bytes"].get<int64_t>() >= kMainBytes + 4 * 500 * 64);
}

TEST_CASE("full: frees of blocks the module never saw return 0") {
  int local = 0;
  CHECK(TheModule().api->on_free(&local, &t_words) == 0);
  CHECK(TheModule().api->on_free(nullptr, &t_words) == 0);
}

TEST_CASE("full: snapshots to a new numbered file or to a given path; errors come back with a message") {
  const MemtideTracerApi* api = TheModule().api;
  char name[256];
  char message[256] = "";
  REQUIRE(api->write_snapshot(nullptr, name, sizeof(name), message, sizeof(message), &t_words) == 0);
  const std::string prefix = "memtide-snapshot." + std::to_string(getpid()) + ".";
  CHECK(std::string(name).rfind(prefix, 0) == 0);
  CHECK(std::string(name).size() > prefix.size() + 5);
  const std::string path = TheModule().folder + "/chosen.json";
  REQUIRE(api->write_snapshot(path.c_str(), name, sizeof(name), message, sizeof(message), &t_words) == 0);
  CHECK(std::string(name) == "chosen.json");
  CHECK(ReadJson(path)["kind"] == "snapshot");
  const std::string bad = TheModule().folder + "/no/such/folder.json";
  CHECK(api->write_snapshot(bad.c_str(), name, sizeof(name), message, sizeof(message), &t_words) == ENOENT);
  CHECK(std::string(message).find("no/such/folder.json") != std::string::npos);
}

TEST_CASE("full: fork keeps the live table in the child, which writes its own trace at exit") {
  const MemtideTracerApi* api = TheModule().api;
  const nlohmann::json before = Snapshot();
  const int64_t live_before = before["totals"]["live_blocks"].get<int64_t>();
  api->before_fork();
  const pid_t child = fork();
  if (child == 0) {
    api->after_fork_child();
    ThreadSampler sampler;
    static char extra[100];
    Level1(extra, sizeof(extra), &sampler);
    api->at_exit(7, &t_words);
    _exit(0);
  }
  api->after_fork_parent();
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  const nlohmann::json trace = ReadJson(TheModule().folder + "/trace." + std::to_string(child) + ".json");
  CHECK(trace["kind"] == "exit");
  CHECK(trace["pid"] == child);
  CHECK(trace["exit_code"] == 7);
  CHECK(trace["totals"]["live_blocks"].get<int64_t>() == live_before + 1);
  // The parent goes on as before.
  CHECK(Snapshot()["totals"]["live_blocks"].get<int64_t>() == live_before);
}

__attribute__((noinline)) int64_t BenchLoop(int kind, int iterations, uintptr_t base) {
  const MemtideTracerApi* api = TheModule().api;
  int tracked = 0;
  int64_t sum = 0;
  void* frames[80];
  for (int i = 0; i < iterations; ++i) {
    void* pointer = reinterpret_cast<void*>(base + static_cast<uintptr_t>(i % 4096) * 64);
    switch (kind) {
      case 0:
        sum += api->on_allocation(pointer, 48, 56, &t_words, &tracked);
        sum += api->on_free(pointer, &t_words);
        break;
      case 1:
        sum += unw_backtrace(frames, 80);
        break;
      default: {
        void* block = malloc(48);
        asm volatile("" : : "r"(block) : "memory");
        free(block);
        break;
      }
    }
  }
  return sum;
}

__attribute__((noinline)) int64_t BenchChain(int depth, int kind, int iterations, uintptr_t base) {
  if (depth == 0) return BenchLoop(kind, iterations, base);
  const int64_t result = BenchChain(depth - 1, kind, iterations, base);
  asm volatile("" ::: "memory");
  return result + 1;
}

// Nanoseconds per iteration, from a thread of its own (a shallow, predictable stack). The machine is shared,
// so each figure is the fastest of several rounds, the rounds of the three loops interleaved.
void TimeOnThread(int iterations, double* traced, double* unwind, double* plain) {
  std::thread([&] {
    *traced = *unwind = *plain = 1e30;
    BenchChain(6, 0, iterations / 10, 0x100000000000);  // warm the caches
    for (int round = 0; round < 7; ++round) {
      double* results[] = {traced, unwind, plain};
      for (int kind = 0; kind < 3; ++kind) {
        const auto start = std::chrono::steady_clock::now();
        BenchChain(6, kind, iterations, 0x100000000000);
        const double ns =
            std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / iterations;
        *results[kind] = std::min(*results[kind], ns);
      }
    }
  }).join();
}

TEST_CASE("full: cost per traced allocation + free (printed, not asserted)") {
  constexpr int kIterations = 300000;
  double traced = 0;
  double unwind = 0;
  double plain = 0;
  TimeOnThread(kIterations, &traced, &unwind, &plain);
  // Two threads at once, each on its own addresses, both from the same stack (the worst case: one site).
  double two_threads = 1e30;
  for (int round = 0; round < 3; ++round) {
    std::atomic<int> ready{0};
    std::vector<double> each(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < 2) {
        }
        const auto start = std::chrono::steady_clock::now();
        BenchChain(6, 0, kIterations, 0x200000000000 + uintptr_t(t) * 0x10000000);
        each[t] =
            std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kIterations;
      });
    }
    for (auto& thread : threads) thread.join();
    two_threads = std::min(two_threads, (each[0] + each[1]) / 2);
  }
  // The depth the module recorded for the benchmark's stack.
  size_t depth = 0;
  const nlohmann::json trace = Snapshot();
  for (const auto& site : trace["sites"]) {
    if (site["allocations"].get<int64_t>() >= 7 * kIterations) {
      for (const auto& stack : trace["stacks"]) {
        if (stack["id"] == site["stack"]) depth = stack["frames"].size();
      }
    }
  }
  MESSAGE("full mode, " << depth << "-frame stack: on_allocation + on_free " << traced << " ns (unw_backtrace alone "
                        << unwind << " ns, everything else " << traced - unwind << " ns); 2 threads at once: "
                        << two_threads << " ns per pair per thread; plain malloc(48) + free " << plain << " ns");
  CHECK(traced > 0);
}

// Last in this file (doctest runs the cases in order): the exit trace.
TEST_CASE("full: at_exit writes the trace once, with the leaks and one summary line") {
  const MemtideTracerApi* api = TheModule().api;
  api->at_exit(-1, &t_words);
  const std::string path = TheModule().folder + "/trace." + std::to_string(getpid()) + ".json";
  const nlohmann::json trace = Unrolled(ReadJson(path));
  CHECK(trace["kind"] == "exit");
  CHECK(trace["exit_code"].is_null());
  CHECK(trace["command"][0].get<std::string>().find("tracer_module_") != std::string::npos);
  const std::vector<uint32_t> ids = StacksFromAllocateHere(trace);
  CHECK(SumOverSites(trace, ids, "live_blocks") == static_cast<double>(g_kept.size()));
  int summaries = 0;
  for (const std::string& line : LogLines()) {
    if (line.find("not freed at exit") != std::string::npos) {
      ++summaries;
      CHECK(line.find(path) != std::string::npos);
    }
  }
  CHECK(summaries == 1);
  // Idempotent: a second call (the _exit hook, then the destructor) writes nothing and says nothing.
  unlink(path.c_str());
  api->at_exit(0, &t_words);
  CHECK(access(path.c_str(), F_OK) != 0);
  int after = 0;
  for (const std::string& line : LogLines()) after += line.find("not freed at exit") != std::string::npos;
  CHECK(after == 1);
  for (const Block& block : g_kept) free(block.pointer);
  RemoveFolderUnlessKept();
}

#else  // sample

TEST_CASE("sample: estimates per site from the module match the truth; untracked frees return 0") {
  const MemtideTracerApi* api = TheModule().api;
  struct Kind {
    size_t size;
    int count;
  };
  // Per thread: many small blocks and some larger ones; the module sees only the sampled ones.
  const Kind kinds[] = {{48, 60000}, {2000, 6000}, {40000, 300}};
  std::atomic<int64_t> tracked_total{0};
  std::atomic<int64_t> freed_tracked{0};
  std::vector<std::thread> threads;
  double true_live_bytes = 0;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      ThreadSampler sampler;  // a new thread: countdown 0, rng 0
      std::vector<void*> mine;
      for (const Kind& kind : kinds) {
        for (int i = 0; i < kind.count; ++i) {
          void* pointer = malloc(kind.size);
          tracked_total += Level1(pointer, kind.size, &sampler);
          mine.push_back(pointer);
        }
      }
      // Free every second block: the preload may call on_free for any block, tracked or not. The others
      // are leaked on purpose: they stay live for the trace.
      for (size_t i = 0; i < mine.size(); i += 2) {
        freed_tracked += api->on_free(mine[i], &t_words);
        free(mine[i]);
      }
      api->on_thread_exit(&t_words);
    });
  }
  for (auto& thread : threads) thread.join();
  for (const Kind& kind : kinds) true_live_bytes += 2.0 * (kind.count / 2) * static_cast<double>(kind.size);

  CHECK(tracked_total.load() > 0);
  CHECK(tracked_total.load() < 2 * (60000 + 6000 + 300));  // sampled, not everything
  CHECK(freed_tracked.load() > 0);
  const nlohmann::json trace = Snapshot();
  CHECK(trace["mode"] == "sample");
  CHECK(trace["sample_mean_bytes"] == kSampleMean);
  const std::vector<uint32_t> ids = StacksFromAllocateHere(trace);
  REQUIRE_FALSE(ids.empty());
  const double estimated = SumOverSites(trace, ids, "live_bytes");
  double true_allocated = 0;
  for (const Kind& kind : kinds) true_allocated += 2.0 * kind.count * static_cast<double>(kind.size);
  // About 54 MB allocated in all; the live estimate's sigma is under 1% here, so 10% is over 10 sigma.
  MESSAGE("sample mode: live bytes estimated " << estimated << ", true " << true_live_bytes << "; allocated "
                                               << SumOverSites(trace, ids, "allocated_bytes") << " vs "
                                               << true_allocated);
  CHECK(std::fabs(estimated / true_live_bytes - 1) < 0.10);
  CHECK(std::fabs(SumOverSites(trace, ids, "allocated_bytes") / true_allocated - 1) < 0.10);
  int local = 0;
  CHECK(api->on_free(&local, &t_words) == 0);
}

TEST_CASE("sample: at_exit writes the sample-mode trace") {
  TheModule().api->at_exit(0, &t_words);
  const nlohmann::json trace = ReadJson(TheModule().folder + "/trace." + std::to_string(getpid()) + ".json");
  CHECK(trace["kind"] == "exit");
  CHECK(trace["exit_code"] == 0);
  CHECK(trace["mode"] == "sample");
  CHECK(trace["totals"]["live_bytes"].get<int64_t>() > 0);
  bool summary = false;
  for (const std::string& line : LogLines()) summary |= line.find("(sampled estimate)") != std::string::npos;
  CHECK(summary);
  RemoveFolderUnlessKept();
}

#endif

}  // namespace
