// The live-allocation tables the tracer module uses (see live_allocations.h; hot path).
#include "live_allocations.h"

namespace memtide::internal {

static_assert(sizeof(FullLiveValue) == 8, "a full-mode entry must stay 16 bytes");

template class LiveAllocations<FullLiveValue, PendingSiteChanges>;
template class LiveAllocations<SampleLiveValue, PendingSiteChanges>;
template class LiveAllocations<FullLiveValue>;
template class LiveAllocations<SampleLiveValue>;
template class LiveAllocations<uint64_t>;

}  // namespace memtide::internal
