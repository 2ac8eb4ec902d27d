// murmur3's 64-bit finalizer: spreads a key over every bit, for the tracer's tables (live blocks by address,
// stacks by their frames' weighted sum). Hot path; pure.
#ifndef MEMTIDE_TRACER_MIX64_H_
#define MEMTIDE_TRACER_MIX64_H_

#include <stdint.h>

namespace memtide::internal {

inline uint64_t Mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_MIX64_H_
