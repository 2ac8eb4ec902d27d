// malloc/free micro-benchmark, run by scripts/bench (bench/run_bench.py) plain, under libmemtide.so and under
// heaptrack, to measure what the hooks add to every allocator call.
//
// Each thread owns a working set of `--live` blocks. A step frees a random slot and allocates a new block of a
// random size in [16, 65536], weighted toward small sizes the way real programs are (80% <= 512 B), then
// touches its first byte so the allocation is not dead. Threads never share blocks: this measures the hook
// path, not allocator contention. The workload is a pure function of --seed, so every configuration runs the
// same sequence of calls. Prints "elapsed_s <seconds>" (fill, steps and final frees, all threads) on stdout.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Options {
  int threads = 1;
  uint64_t ops = 4000000;  // steps per thread
  uint64_t live = 4096;    // blocks each thread keeps alive
  uint64_t seed = 42;
};

// splitmix64: tiny, fast and good enough to spread slots and sizes; std::mt19937 would cost as much as the
// malloc it is choosing for, diluting the ratio we want to see.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// 80% in [16, 512], 15% in (512, 8 KiB], 5% in (8 KiB, 64 KiB]: every size stays below glibc's default mmap
// threshold, so all of them are heap allocations.
size_t NextSize(Rng& rng) {
  const uint64_t r = rng.Next();
  const uint64_t bucket = r % 100;
  const uint64_t pick = r >> 8;
  if (bucket < 80) return 16 + pick % (512 - 16 + 1);
  if (bucket < 95) return 513 + pick % (8192 - 513 + 1);
  return 8193 + pick % (65536 - 8193 + 1);
}

// Returns a checksum of the touched bytes so the work cannot be optimised away.
uint64_t RunThread(const Options& options, int index) {
  Rng rng(options.seed * 1000003u + static_cast<uint64_t>(index));
  std::vector<unsigned char*> slots(options.live);
  uint64_t checksum = 0;
  for (uint64_t i = 0; i < options.live; ++i) {
    slots[i] = static_cast<unsigned char*>(malloc(NextSize(rng)));
    slots[i][0] = static_cast<unsigned char>(i);
  }
  for (uint64_t i = 0; i < options.ops; ++i) {
    const uint64_t slot = rng.Next() % options.live;
    checksum += slots[slot][0];
    free(slots[slot]);
    unsigned char* block = static_cast<unsigned char*>(malloc(NextSize(rng)));
    if (block == nullptr) {
      fprintf(stderr, "malloc_micro: out of memory\n");
      exit(1);
    }
    block[0] = static_cast<unsigned char>(i);
    slots[slot] = block;
  }
  for (unsigned char* block : slots) {
    checksum += block[0];
    free(block);
  }
  return checksum;
}

bool ParseUint(const char* text, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long value = strtoull(text, &end, 10);
  if (end == text || *end != '\0') return false;
  *out = value;
  return true;
}

[[noreturn]] void Usage() {
  fprintf(stderr, "usage: malloc_micro [--threads N] [--ops STEPS_PER_THREAD] [--live BLOCKS] [--seed S]\n");
  exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) Usage();
    uint64_t value = 0;
    if (!ParseUint(argv[i + 1], &value)) Usage();
    if (strcmp(argv[i], "--threads") == 0 && value >= 1 && value <= 256) {
      options.threads = static_cast<int>(value);
    } else if (strcmp(argv[i], "--ops") == 0) {
      options.ops = value;
    } else if (strcmp(argv[i], "--live") == 0 && value >= 1) {
      options.live = value;
    } else if (strcmp(argv[i], "--seed") == 0) {
      options.seed = value;
    } else {
      Usage();
    }
    ++i;
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  std::vector<uint64_t> checksums(options.threads);
  const auto start = std::chrono::steady_clock::now();
  if (options.threads == 1) {
    // No extra thread: the 1-thread figure must not include thread creation or a second arena.
    checksums[0] = RunThread(options, 0);
  } else {
    std::vector<std::thread> threads;
    for (int t = 0; t < options.threads; ++t) {
      threads.emplace_back([&options, &checksums, t] { checksums[t] = RunThread(options, t); });
    }
    for (std::thread& thread : threads) thread.join();
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  uint64_t checksum = 0;
  for (uint64_t value : checksums) checksum += value;
  printf("elapsed_s %.6f\nchecksum %llu\n", elapsed.count(), static_cast<unsigned long long>(checksum));
  return 0;
}
