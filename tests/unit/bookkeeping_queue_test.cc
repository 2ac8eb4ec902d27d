// The bookkeeping queue (tracer/bookkeeping_queue.h): one owner's records applied once each and in order by a
// concurrent drainer; a full ring applied by the owner; the hand-over when the owner ends; the revocation
// by a second thread, raced many times (every record the owner queued is applied before the revoker goes on
// in place); and a fork child, which applies what the parent had queued and works in place.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "bookkeeping_queue.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace memtide::internal {
namespace {

// Checks that records arrive with keys 1, 2, 3, ... and counts them.
struct InOrder {
  std::atomic<uint64_t> applied{0};
  std::atomic<uint64_t> out_of_order{0};
};

void ApplyInOrder(void* context, const BookkeepingRecord* records, size_t count) {
  auto* order = static_cast<InOrder*>(context);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t expected = order->applied.load(std::memory_order_relaxed) + 1;
    if (records[i].key != expected) order->out_of_order.fetch_add(1, std::memory_order_relaxed);
    order->applied.store(expected, std::memory_order_relaxed);
  }
}

BookkeepingRecord Allocation(uint64_t key) { return BookkeepingRecord{key, 16, 1, 0}; }

std::unique_ptr<BookkeepingQueue> EnabledQueue(InOrder* order) {
  auto queue = std::make_unique<BookkeepingQueue>();
  std::string why;
  REQUIRE_MESSAGE(queue->Enable(ApplyInOrder, order, &why), why);
  return queue;
}

TEST_CASE("a queue never enabled takes nothing and has nothing to drain") {
  BookkeepingQueue queue;
  int thread = 0;
  CHECK_FALSE(queue.MayQueue());
  CHECK_FALSE(queue.Push(&thread, Allocation(1)));
  CHECK(queue.Drain(SIZE_MAX) == -1);
}

TEST_CASE("one owner's records are applied once each and in order while a drainer runs beside it") {
  InOrder order;
  auto queue = EnabledQueue(&order);
  constexpr uint64_t kRecords = 2000000;
  std::atomic<bool> done{false};
  std::thread drainer([&] {
    while (!done.load(std::memory_order_acquire)) queue->Drain(BookkeepingQueue::kBatch);
  });
  int owner = 0;
  uint64_t queued = 0;
  for (uint64_t key = 1; key <= kRecords; ++key) queued += queue->Push(&owner, Allocation(key)) ? 1 : 0;
  done.store(true, std::memory_order_release);
  drainer.join();
  queue->Drain(SIZE_MAX);
  CHECK(queued == kRecords);
  CHECK(order.applied.load() == kRecords);
  CHECK(order.out_of_order.load() == 0);
}

TEST_CASE("with nobody draining, the owner applies a full ring itself") {
  InOrder order;
  auto queue = EnabledQueue(&order);
  int owner = 0;
  const uint64_t records = 3 * BookkeepingQueue::kCapacity + 5;
  for (uint64_t key = 1; key <= records; ++key) REQUIRE(queue->Push(&owner, Allocation(key)));
  // Everything but the last partial ring was applied on the owner's own thread.
  const uint64_t applied_by_owner = order.applied.load();
  CHECK(applied_by_owner >= records - BookkeepingQueue::kCapacity);
  CHECK(queue->Drain(SIZE_MAX) == static_cast<int64_t>(records - applied_by_owner));
  CHECK(order.applied.load() == records);
  CHECK(order.out_of_order.load() == 0);
  CHECK(queue->Drain(SIZE_MAX) == 0);  // empty, but records may still come
}

TEST_CASE("a thread that ends hands the queue to the next one, which queues without revoking") {
  InOrder order;
  auto queue = EnabledQueue(&order);
  int first = 0;
  int second = 0;
  std::thread([&] {
    for (uint64_t key = 1; key <= 100; ++key) CHECK(queue->Push(&first, Allocation(key)));
    queue->Release(&first);
  }).join();
  std::thread([&] {
    for (uint64_t key = 101; key <= 200; ++key) CHECK(queue->Push(&second, Allocation(key)));
  }).join();
  CHECK(queue->MayQueue());
  CHECK(queue->Drain(SIZE_MAX) == 200);
  CHECK(order.out_of_order.load() == 0);
}

TEST_CASE("a second thread revokes the queue: all the owner queued is applied before it goes on in place") {
  // Raced many times: the revocation lands at a different point of the owner's pushes each time.
  for (int round = 0; round < 200; ++round) {
    InOrder order;
    auto queue = EnabledQueue(&order);
    int owner = 0;
    int other = 0;
    std::atomic<bool> started{false};
    std::atomic<uint64_t> queued_by_owner{0};
    std::atomic<uint64_t> in_place_by_owner{0};
    std::thread drainer([&] {
      while (queue->Drain(BookkeepingQueue::kBatch) >= 0) {
      }
    });
    std::thread producer([&] {
      uint64_t key = 1;
      for (int i = 0; i < 20000; ++i) {
        if (queue->Push(&owner, Allocation(key))) {
          ++key;
          queued_by_owner.store(key - 1, std::memory_order_relaxed);
        } else {
          in_place_by_owner.fetch_add(1, std::memory_order_relaxed);
        }
        if (i == 100) started.store(true, std::memory_order_release);
      }
    });
    while (!started.load(std::memory_order_acquire)) {
    }
    const bool queued = queue->Push(&other, Allocation(0));
    // The revoker goes on in place only once everything queued before is applied.
    const uint64_t applied_when_revoked = order.applied.load();
    producer.join();
    drainer.join();  // Drain returned -1: nothing queued and nothing ever will be
    CHECK_FALSE(queued);
    CHECK_FALSE(queue->MayQueue());
    CHECK(order.out_of_order.load() == 0);
    CHECK(applied_when_revoked == queued_by_owner.load());
    CHECK(order.applied.load() == queued_by_owner.load());
    CHECK(queued_by_owner.load() + in_place_by_owner.load() == 20000);
    CHECK(queue->Drain(SIZE_MAX) == -1);
    if (order.out_of_order.load() != 0 || applied_when_revoked != queued_by_owner.load()) break;
  }
}

TEST_CASE("a fork child applies what the parent had queued and works in place; the parent goes on queueing") {
  InOrder order;
  auto queue = EnabledQueue(&order);
  int owner = 0;
  for (uint64_t key = 1; key <= 1000; ++key) REQUIRE(queue->Push(&owner, Allocation(key)));
  queue->LockForFork();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    queue->ResetAfterFork();
    const bool ok = order.applied.load() == 1000 && order.out_of_order.load() == 0 &&
                    !queue->Push(&owner, Allocation(1001)) && !queue->MayQueue() && queue->Drain(SIZE_MAX) == -1;
    _exit(ok ? 0 : 1);
  }
  queue->UnlockAfterFork();
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(order.applied.load() == 0);
  CHECK(queue->Push(&owner, Allocation(1001)));
  CHECK(queue->Drain(SIZE_MAX) == 1001);
  CHECK(order.out_of_order.load() == 0);
}

}  // namespace
}  // namespace memtide::internal
