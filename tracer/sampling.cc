// Sample mode's countdown and weights (see sampling.h). Hot path: allocation-free, lock-free.
#include "sampling.h"

#include <math.h>
#include <time.h>

namespace memtide::internal {
namespace {

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

void SeedSamplingRng(uint64_t* state) {
  if (*state != 0) return;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t seed = Mix(reinterpret_cast<uintptr_t>(state) ^
                      Mix(static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec)));
  *state = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
}

double NextUniform(uint64_t* state) {
  *state += 0x9e3779b97f4a7c15ull;
  const uint64_t bits = Mix(*state) >> 11;
  return static_cast<double>(bits + 1) * 0x1.0p-53;
}

int64_t NextCountdown(uint64_t* state, double mean_bytes) {
  const double distance = -log(NextUniform(state)) * mean_bytes;
  // -ln(2^-53) * mean stays far below 2^62 for every mean the options allow (at most 2^40).
  if (!(distance < 4.0e18)) return int64_t{4000000000000000000};
  return static_cast<int64_t>(distance);  // floor: distance >= 0
}

double SampleProbability(uint64_t usable_bytes, double mean_bytes) {
  const double u = usable_bytes == 0 ? 1.0 : static_cast<double>(usable_bytes);
  return -expm1(-u / mean_bytes);
}

SampleDecision DecideSample(uint64_t* state, uint64_t usable_bytes, double mean_bytes) {
  if (*state == 0) {
    SeedSamplingRng(state);
    const int64_t first_point = NextCountdown(state, mean_bytes);
    if (static_cast<uint64_t>(first_point) >= usable_bytes) {
      return {false, first_point - static_cast<int64_t>(usable_bytes)};
    }
  }
  return {true, NextCountdown(state, mean_bytes)};
}

}  // namespace memtide::internal
