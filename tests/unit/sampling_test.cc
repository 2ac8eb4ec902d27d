// Sample mode's countdown and weights (tracer/sampling.h): the estimates must be unbiased for any size mix,
// including a thread's first block, which the module samples itself.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "sampling.h"

#include <doctest/doctest.h>
#include <math.h>

#include <cmath>
#include <vector>

namespace memtide::internal {
namespace {

struct SiteTruth {
  uint64_t requested;
  uint64_t usable;
  int share;  // percent of the blocks
  double true_bytes = 0;
  double true_blocks = 0;
  double estimated_bytes = 0;
  double estimated_blocks = 0;
};

// Plays the preload's part for one thread (preload/trace_hooks.h): lower the countdown by each block's usable
// size; when it drops below zero, ask the module (DecideSample) and take its countdown. Blocks pick a site
// with a fixed LCG.
void Simulate(std::vector<SiteTruth>& sites, uint64_t seed, int blocks, double mean) {
  uint64_t rng = seed;
  int64_t countdown = NextCountdown(&rng, mean);
  uint64_t pick = seed * 6364136223846793005ull + 1;
  for (int i = 0; i < blocks; ++i) {
    pick = pick * 6364136223846793005ull + 1442695040888963407ull;
    int percent = static_cast<int>((pick >> 33) % 100);
    size_t index = 0;
    while (percent >= sites[index].share) percent -= sites[index++].share;
    SiteTruth& site = sites[index];
    site.true_bytes += static_cast<double>(site.requested);
    site.true_blocks += 1;
    countdown -= static_cast<int64_t>(site.usable);
    if (countdown >= 0) continue;
    const SampleDecision decision = DecideSample(&rng, site.usable, mean);
    REQUIRE(decision.sample);
    countdown = decision.countdown;
    const double inverse = 1.0 / SampleProbability(site.usable, mean);
    site.estimated_bytes += static_cast<double>(site.requested) * inverse;
    site.estimated_blocks += inverse;
  }
}

std::vector<SiteTruth> SizeMix() {
  // Requested and usable sizes as glibc would round them, mostly small blocks as in real programs; the
  // estimator must not care about the mix.
  return {{32, 40, 70}, {500, 504, 20}, {4000, 4008, 8}, {65536, 65544, 2}};
}

// Relative standard deviation of a site's byte estimate: each of its n blocks contributes r/p with
// probability p, so the variance is n r^2 (1 - p) / p.
double RelativeSigma(const SiteTruth& site, double mean) {
  const double p = SampleProbability(site.usable, mean);
  return sqrt((1 - p) / (site.true_blocks * p));
}

TEST_CASE("uniform draws stay in (0, 1] and the countdown's mean is the configured mean") {
  uint64_t rng = 12345;
  double sum = 0;
  constexpr int kDraws = 200000;
  for (int i = 0; i < kDraws; ++i) {
    const double u = NextUniform(&rng);
    REQUIRE(u > 0.0);
    REQUIRE(u <= 1.0);
    sum += static_cast<double>(NextCountdown(&rng, 4096.0));
  }
  // floor takes half a byte off on average.
  CHECK(sum / kDraws == doctest::Approx(4095.5).epsilon(0.01));
}

TEST_CASE("a zero rng state is seeded, never left zero") {
  uint64_t rng = 0;
  SeedSamplingRng(&rng);
  CHECK(rng != 0);
  uint64_t other = 0;
  SeedSamplingRng(&other);
  CHECK(other != rng);  // different addresses
}

// The tolerance is 5 standard deviations of each site's estimate, which the mix and mean keep at or below
// 10% (the smallest site: 140k blocks of 40 usable bytes, ~2700 samples, sigma 1.9%).
TEST_CASE("200k blocks of a known size mix: estimated bytes and blocks per site within 10% (fixed seed)") {
  constexpr double kMean = 2048.0;
  std::vector<SiteTruth> sites = SizeMix();
  Simulate(sites, /*seed=*/42, 200000, kMean);
  for (const SiteTruth& site : sites) {
    const double tolerance = 5 * RelativeSigma(site, kMean) + 1e-9;
    INFO("site of requested size " << site.requested << ", tolerance " << tolerance);
    REQUIRE(tolerance <= 0.10);
    CHECK(fabs(site.estimated_bytes / site.true_bytes - 1) <= tolerance);
    CHECK(fabs(site.estimated_blocks / site.true_blocks - 1) <= tolerance);
    MESSAGE("requested " << site.requested << ": estimate/truth " << site.estimated_bytes / site.true_bytes);
  }
}

TEST_CASE("over 400 seeds the estimates converge on the truth (no bias)") {
  constexpr double kMean = 2048.0;
  std::vector<SiteTruth> sites = SizeMix();
  for (uint64_t seed = 1; seed <= 400; ++seed) Simulate(sites, seed * 7919, 20000, kMean);
  for (const SiteTruth& site : sites) {
    // 8M blocks: sigma is 6x smaller than above (0.3% for the smallest site), so a bias of 2% would show.
    const double tolerance = 5 * RelativeSigma(site, kMean) + 1e-9;
    INFO("site of requested size " << site.requested << ", tolerance " << tolerance);
    REQUIRE(tolerance <= 0.02);
    CHECK(fabs(site.estimated_bytes / site.true_bytes - 1) <= tolerance);
    CHECK(fabs(site.estimated_blocks / site.true_blocks - 1) <= tolerance);
  }
}

TEST_CASE("a thread's first block is sampled with probability p(u), not always") {
  constexpr double kMean = 4096.0;
  constexpr uint64_t kUsable = 1024;
  constexpr int kTrials = 40000;
  int sampled = 0;
  double leftover_sum = 0;
  int leftovers = 0;
  for (int i = 0; i < kTrials; ++i) {
    uint64_t rng = 0;  // a new thread
    const SampleDecision decision = DecideSample(&rng, kUsable, kMean);
    CHECK(rng != 0);
    CHECK(decision.countdown >= 0);
    if (decision.sample) {
      ++sampled;
    } else {
      leftover_sum += static_cast<double>(decision.countdown);
      ++leftovers;
    }
  }
  const double p = SampleProbability(kUsable, kMean);
  const double sigma = sqrt(kTrials * p * (1 - p));
  CHECK(fabs(sampled - kTrials * p) < 5 * sigma);
  // Memoryless: what remains after an unsampled first block is again exponential with the same mean.
  CHECK(leftover_sum / leftovers == doctest::Approx(kMean).epsilon(0.05));
}

TEST_CASE("the preload's first call (only the draw, usable 0) never samples and returns the whole distance") {
  int sampled_after = 0;
  constexpr int kTrials = 40000;
  constexpr double kMean = 4096.0;
  constexpr uint64_t kUsable = 1024;
  for (int i = 0; i < kTrials; ++i) {
    uint64_t rng = 0;
    const SampleDecision first = DecideSample(&rng, 0, kMean);
    REQUIRE_FALSE(first.sample);
    // Then the preload charges the block: below zero means the point fell inside it.
    sampled_after += first.countdown - static_cast<int64_t>(kUsable) < 0;
  }
  const double p = SampleProbability(kUsable, kMean);
  CHECK(std::fabs(sampled_after - kTrials * p) < 5 * sqrt(kTrials * p * (1 - p)));
}

TEST_CASE("probabilities") {
  CHECK(SampleProbability(0, 100.0) == doctest::Approx(1 - exp(-0.01)));
  CHECK(SampleProbability(100, 100.0) == doctest::Approx(1 - exp(-1.0)));
  CHECK(SampleProbability(1, 1e12) > 0.0);  // expm1 keeps tiny probabilities exact
  CHECK(SampleProbability(1, 1e12) == doctest::Approx(1e-12));
}

}  // namespace
}  // namespace memtide::internal
