// Sample mode's arithmetic: the per-thread geometric byte countdown and the weights that make every estimate
// unbiased (DESIGN.md decision 7). Runs on the hot path, inside the program's malloc, on the thread whose
// countdown ran out: allocation-free, lock-free, no TLS of its own (the preload owns the thread's RNG word).
//
// Model: sample points fall on the stream of usable bytes a thread allocates as a Poisson process of rate
// 1/mean. A block of u usable bytes holds at least one point with probability p(u) = 1 - exp(-u/mean), and is
// then sampled; weighting it by 1/p (blocks) and requested/p (bytes) makes each estimate unbiased, whatever the
// size mix (jemalloc's and tcmalloc's heap profilers do the same). Because the process is memoryless, the
// distance from the end of a sampled block to the next point is a fresh exponential draw: that is the countdown
// the module hands back. The preload (preload/trace_hooks.h) lowers it by each block's usable size and calls
// the module when it drops below zero, so a point at distance x lands in a block that ends c bytes further
// exactly when floor(x) < c, i.e. x < c: the countdown is floor(x), and p(u) above is exact.
#ifndef MEMTIDE_TRACER_SAMPLING_H_
#define MEMTIDE_TRACER_SAMPLING_H_

#include <stdint.h>

namespace memtide::internal {

// Seeds *state when it is zero (a thread's first call) from its address and the clock. Never leaves it zero.
void SeedSamplingRng(uint64_t* state);

// Uniform in (0, 1], 53 random bits; advances *state (splitmix64). *state must have been seeded.
double NextUniform(uint64_t* state);

// Bytes from here to the next sample point, floor(-ln(U) * mean) (0 or more): with the preload's "below zero"
// trigger, a block of u bytes then contains the point exactly when x < u.
int64_t NextCountdown(uint64_t* state, double mean_bytes);

// p(u) = 1 - exp(-u/mean), computed with expm1 so tiny blocks keep their precision. A zero-sized block is
// weighed as one byte (its weight must stay finite; its bytes are zero anyway).
double SampleProbability(uint64_t usable_bytes, double mean_bytes);

// What to do with the block that made the preload call on_allocation in sample mode.
struct SampleDecision {
  bool sample;        // record this block
  int64_t countdown;  // the thread's next countdown (usable bytes)
};

// A thread's first call (*state zero, tracer_module.h): sampling that block unconditionally would weigh it 1/p
// although it was taken with probability 1. So the module seeds the state, draws the distance to the first
// point itself and samples the block only if the point falls inside it (floor(x) < usable); otherwise the
// countdown returned is what is left after the block. The preload makes that first call with a null pointer
// and usable 0 (only the draw), then charges the block to the countdown like any other; both ways are
// unbiased. Every later call samples: the countdown ran out inside this block.
SampleDecision DecideSample(uint64_t* state, uint64_t usable_bytes, double mean_bytes);

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_SAMPLING_H_
