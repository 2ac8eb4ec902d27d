// GPU memory accounting without a GPU: the programs in tests/gpu/programs/ run under LD_PRELOAD=libmemtide.so
// against the fake driver (fake_libcuda.c) and check memtide's per-device counters against the driver's
// ground truth in process, exact to the byte; this driver runs them and checks what only the outside sees:
// the report's and `memtide show`'s "gpu" array, --max-gpu-peak, the exported symbols, and the real CUDA
// runtime's lookups (when nvcc was found at configure time).
//
// Paths come from tests/gpu/CMakeLists.txt; run_process.{h,cc} is shared with tests/e2e.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "run_process.h"
#include "test_scratch.h"

namespace memtide::gpu_test {
namespace {

using memtide::e2e::ProcessOptions;
using memtide::e2e::ProcessResult;
using memtide::e2e::Execute;
using memtide::e2e::Run;
using memtide::e2e::RunProcess;
using memtide::e2e::TempDir;
using nlohmann::json;

// A program under LD_PRELOAD=libmemtide.so (plus `extra_preload`), segments in `dir`, the fake driver found
// through LD_LIBRARY_PATH.
Run RunPreloaded(const TempDir& dir, std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                 const std::string& driver_dir = MEMTIDE_GPU_FAKE_DRIVER_DIR, const std::string& extra_preload = "") {
  env.emplace("LD_PRELOAD", extra_preload.empty() ? MEMTIDE_GPU_PRELOAD : MEMTIDE_GPU_PRELOAD " " + extra_preload);
  env.emplace("MEMTIDE_DIR", dir.path());
  env.emplace("LD_LIBRARY_PATH", driver_dir);
  return Execute({std::move(argv), std::move(env)});
}

// `memtide run --report <dir>/report.json --dir <dir> [flags] -- argv...`.
Run RunUnderMemtide(const TempDir& dir, const std::vector<std::string>& flags, const std::vector<std::string>& argv) {
  std::vector<std::string> command = {MEMTIDE_GPU_CLI, "run", "--report", dir.File("report.json"), "--dir", dir.path()};
  command.insert(command.end(), flags.begin(), flags.end());
  command.push_back("--");
  command.insert(command.end(), argv.begin(), argv.end());
  return Execute({std::move(command), {{"MEMTIDE_DIR", dir.path()}, {"LD_LIBRARY_PATH", MEMTIDE_GPU_FAKE_DRIVER_DIR}}});
}

json ReadJson(const std::string& path) {
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "cannot read " << path);
  json parsed = json::parse(file, nullptr, /*allow_exceptions=*/false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), path << " is not valid JSON");
  return parsed;
}

// The program ran to a clean exit and printed `expected`.
void CheckSucceeded(const Run& run, const std::string& expected = "ok") {
  INFO(run.Describe());
  CHECK(!run.result.timed_out);
  CHECK(run.result.exit_code == 0);
  CHECK(run.result.out.find(expected) != std::string::npos);
}

// The number after "key=" in `text`.
long long Field(const std::string& text, const std::string& key) {
  std::smatch match;
  REQUIRE_MESSAGE(std::regex_search(text, match, std::regex("(^|[ \\n])" + key + "=(-?[0-9]+)")),
                  "no '" << key << "=' in: " << text);
  return std::stoll(match[2]);
}

std::string Output(const std::string& command) {
  std::string text;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "cannot run " << command);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  pclose(pipe);
  return text;
}

// ---- The four ways programs reach the driver ----

TEST_CASE("reach.cudart_way") { CheckSucceeded(RunPreloaded(TempDir(), {MEMTIDE_GPU_CUDART_WAY})); }

TEST_CASE("reach.cudart_way_driver_hands_out_memtide_exports") {
  // The fake driver built without -Bsymbolic: its cuGetProcAddress answers with memtide's own exports.
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_GPU_CUDART_WAY, "interposable"}, {{"MEMTIDE_VERBOSE", "1"}},
                         MEMTIDE_GPU_FAKE_DRIVER_INTERPOSABLE_DIR);
  CheckSucceeded(run);
  std::smatch match;
  INFO(run.Describe());
  REQUIRE(std::regex_search(run.result.err, match, std::regex("([0-9]+) own wrappers refused")));
  CHECK(std::stoll(match[1]) > 0);
}

TEST_CASE("reach.linked_with_lcuda") { CheckSucceeded(RunPreloaded(TempDir(), {MEMTIDE_GPU_LINKED_LCUDA})); }

TEST_CASE("reach.xla_dlsym_per_function") { CheckSucceeded(RunPreloaded(TempDir(), {MEMTIDE_GPU_XLA_WAY})); }

TEST_CASE("reach.through_a_runtime") { CheckSucceeded(RunPreloaded(TempDir(), {MEMTIDE_GPU_VIA_FAKE_CUDART})); }

// ---- Lifecycle and concurrency ----

TEST_CASE("threads.sixteen_threads_two_devices") { CheckSucceeded(RunPreloaded(TempDir(), {MEMTIDE_GPU_THREADS})); }

TEST_CASE("fork.child_counts_afresh") {
  Run run = RunPreloaded(TempDir(), {MEMTIDE_GPU_FORK_CHILD});
  CheckSucceeded(run, "parent ok");
  CHECK(run.result.out.find("child ok") != std::string::npos);
}

// ---- dlsym keeps its meaning ----

TEST_CASE("dlsym.rtld_next_default_dlvsym_dlerror") {
  CheckSucceeded(RunPreloaded(TempDir(), {MEMTIDE_GPU_DLSYM_SEMANTICS, MEMTIDE_GPU_LOCAL_A}, {},
                              MEMTIDE_GPU_FAKE_DRIVER_DIR, MEMTIDE_GPU_NEXT_INTERPOSER));
}

TEST_CASE("dlsym.exported_unversioned_with_the_driver_names") {
  std::string symbols = Output("readelf -W --dyn-syms '" MEMTIDE_GPU_PRELOAD "' 2>&1");
  INFO(symbols);
  // Unversioned: ld.so then binds references to dlsym@GLIBC_2.2.5 and dlsym@GLIBC_2.34 alike.
  CHECK(std::regex_search(symbols, std::regex(" FUNC +GLOBAL +DEFAULT +[0-9]+ dlsym\\n")));
  for (const char* name : {"cuGetProcAddress", "cuGetProcAddress_v2", "cuMemAlloc_v2", "cuMemFree_v2",
                           "cuMemAllocAsync", "cuMemAllocAsync_ptsz", "cuMemCreate", "cuMemRelease", "cuMemHostAlloc",
                           "cuMemFreeHost", "cuArray3DCreate_v2", "cuIpcOpenMemHandle_v2"}) {
    CAPTURE(name);
    CHECK(std::regex_search(symbols, std::regex(std::string(" FUNC +GLOBAL +DEFAULT +[0-9]+ ") + name + "\\n")));
  }
  // No runtime names: memtide counts at the driver layer only.
  CHECK(symbols.find(" cudaMalloc") == std::string::npos);
  // And no dependency on the driver: libmemtide.so needs libc alone.
  std::string dynamic = Output("readelf -d '" MEMTIDE_GPU_PRELOAD "' 2>&1");
  INFO(dynamic);
  CHECK(dynamic.find("libcuda") == std::string::npos);
}

TEST_CASE("no_cuda.nothing_loaded_nothing_counted") {
  TempDir dir;
  Run run = RunUnderMemtide(dir, {}, {MEMTIDE_GPU_NO_CUDA});
  CheckSucceeded(run);
  json report = ReadJson(dir.File("report.json"));
  INFO(report.dump());
  REQUIRE(report.contains("gpu"));
  CHECK(report["gpu"].is_array());
  CHECK(report["gpu"].empty());
}

// ---- What the outside sees ----

const char* const kUuid0 = "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f";
const char* const kUuid1 = "GPU-10111213-1415-1617-1819-1a1b1c1d1e1f";

void CheckGpuArray(const json& gpu) {
  INFO(gpu.dump(2));
  REQUIRE(gpu.is_array());
  REQUIRE(gpu.size() == 2);
  const json& d0 = gpu[0]["index"] == 0 ? gpu[0] : gpu[1];
  const json& d1 = gpu[0]["index"] == 0 ? gpu[1] : gpu[0];
  CHECK(d0["index"] == 0);
  CHECK(d0["uuid"] == kUuid0);
  CHECK(d0["current_bytes"] == 3 << 20);
  CHECK(d0["peak_bytes"] == 11 << 20);
  CHECK(d0["pinned_host_bytes"] == 2 << 20);
  CHECK(d0["pinned_host_peak_bytes"] == 2 << 20);
  CHECK(d0["managed_bytes"] == 0);
  CHECK(d0["allocations"] == 3);
  CHECK(d0["frees"] == 1);
  CHECK(d0["unknown_frees"] == 0);
  CHECK(d0["device_total_bytes"] == 16ll << 30);
  CHECK(d1["index"] == 1);
  CHECK(d1["uuid"] == kUuid1);
  CHECK(d1["current_bytes"] == 1 << 20);
  CHECK(d1["peak_bytes"] == 1 << 20);
  for (const char* key : {"host_registered_bytes", "imported_bytes", "array_bytes", "pool_reserved_bytes",
                          "device_used_bytes", "managed_peak_bytes"}) {
    CAPTURE(key);
    CHECK(d0.contains(key));
  }
}

TEST_CASE("report.gpu_array_exact") {
  TempDir dir;
  Run run = RunUnderMemtide(dir, {}, {MEMTIDE_GPU_LEAVES_MEMORY});
  CheckSucceeded(run, "pid=");
  json report = ReadJson(dir.File("report.json"));
  CHECK(report["status"] == "exited");
  CheckGpuArray(report["gpu"]);
  // The summary names each device with its peak and final bytes.
  CHECK(run.result.err.find("gpu 0") != std::string::npos);
  CHECK(run.result.err.find(kUuid1) != std::string::npos);
}

TEST_CASE("show.gpu_json_and_text") {
  TempDir dir;
  Run run = RunPreloaded(dir, {MEMTIDE_GPU_LEAVES_MEMORY}, {{"MEMTIDE_KEEP_SEGMENT", "1"}});
  CheckSucceeded(run, "pid=");
  std::string pid = std::to_string(Field(run.result.out, "pid"));
  Run show_json = Execute({{MEMTIDE_GPU_CLI, "show", pid, "--json", "--dir", dir.path()}, {}});
  INFO(show_json.Describe());
  REQUIRE(show_json.result.exit_code == 0);
  json shown = json::parse(show_json.result.out, nullptr, false);
  REQUIRE(!shown.is_discarded());
  CheckGpuArray(shown["gpu"]);
  Run show_text = Execute({{MEMTIDE_GPU_CLI, "show", pid, "--dir", dir.path()}, {}});
  INFO(show_text.Describe());
  REQUIRE(show_text.result.exit_code == 0);
  CHECK(show_text.result.out.find(kUuid0) != std::string::npos);
  CHECK(show_text.result.out.find("gpu 1") != std::string::npos);
}

TEST_CASE("run.max_gpu_peak") {
  {
    TempDir dir;
    Run over = RunUnderMemtide(dir, {"--max-gpu-peak", "10MiB"}, {MEMTIDE_GPU_LEAVES_MEMORY});
    INFO(over.Describe());
    CHECK(over.result.exit_code == 3);
    CHECK(over.result.err.find("exceeds --max-gpu-peak") != std::string::npos);
  }
  {
    TempDir dir;
    Run within = RunUnderMemtide(dir, {"--max-gpu-peak", "11MiB"}, {MEMTIDE_GPU_LEAVES_MEMORY});
    INFO(within.Describe());
    CHECK(within.result.exit_code == 0);
  }
  {
    TempDir dir;  // a program without GPU memory has a GPU peak of zero
    Run none = RunUnderMemtide(dir, {"--max-gpu-peak", "1"}, {MEMTIDE_GPU_NO_CUDA});
    INFO(none.Describe());
    CHECK(none.result.exit_code == 0);
  }
  {
    Run bad = Execute({{MEMTIDE_GPU_CLI, "run", "--max-gpu-peak", "lots", "--", "/bin/true"}, {}});
    INFO(bad.Describe());
    CHECK(bad.result.exit_code == 2);
  }
}

// ---- The real CUDA runtime against the fake driver ----

#if defined(MEMTIDE_GPU_REAL_CUDART_STATIC) && defined(MEMTIDE_GPU_REAL_CUDART_SHARED)

// cudart dlopens the driver, looks up cuGetProcAddress_v2 with dlsym, asks it for itself, then makes ~440
// lookups through the answer before it stops at cuGetExportTable (which the fake lacks). Every one of them
// must have passed through memtide's wrapper, and the program must see the same result as without memtide.
void CheckRealRuntime(const char* program) {
  TempDir dir;
  Run plain = Execute({{program}, {{"LD_LIBRARY_PATH", MEMTIDE_GPU_FAKE_DRIVER_DIR}}});
  INFO(plain.Describe());
  REQUIRE(plain.result.exit_code == 0);
  Run traced = RunPreloaded(dir, {program}, {{"MEMTIDE_VERBOSE", "1"}});
  INFO(traced.Describe());
  REQUIRE(traced.result.exit_code == 0);
  CHECK(Field(traced.result.out, "cudaMalloc") == Field(plain.result.out, "cudaMalloc"));
  long long driver_lookups = Field(traced.result.out, "fake_lookups");
  CHECK(driver_lookups > 400);
  std::smatch match;
  REQUIRE(std::regex_search(traced.result.err, match,
                            std::regex("driver lookups ([0-9]+) through dlsym and ([0-9]+) through cuGetProcAddress, "
                                       "([0-9]+) routed to wrappers, ([0-9]+) unidentified, ([0-9]+) conflicting")));
  CHECK(std::stoll(match[1]) >= 1);               // dlsym(libcuda, "cuGetProcAddress_v2")
  CHECK(std::stoll(match[2]) == driver_lookups);  // the self-query was wrapped: every lookup came through memtide
  CHECK(std::stoll(match[3]) >= 20);              // cuGetProcAddress x2 and the allocation family
  CHECK(std::stoll(match[4]) == 0);
  CHECK(std::stoll(match[5]) == 0);
}

TEST_CASE("real_cudart.static") { CheckRealRuntime(MEMTIDE_GPU_REAL_CUDART_STATIC); }
TEST_CASE("real_cudart.shared") { CheckRealRuntime(MEMTIDE_GPU_REAL_CUDART_SHARED); }

#endif

}  // namespace
}  // namespace memtide::gpu_test
