// A small library with known functions, lines and an inlined function, for symbolizer_test.cc: the test
// takes return addresses here and checks that the symbolizer names them exactly. The lines that matter carry
// a marker comment the test looks up in this file, so editing it does not break the test.
#include "symbolizer_fixture.h"

extern "C" __attribute__((noinline, visibility("default"))) void* FixtureReturnAddress() {
  void* address = __builtin_return_address(0);
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

namespace fixture {
namespace {

inline __attribute__((always_inline)) void* InlinedHelper() {
  void* address = FixtureReturnAddress();  // MARK:inlined_call
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

}  // namespace

__attribute__((noinline)) void* DirectCaller() {
  void* address = FixtureReturnAddress();  // MARK:direct_call
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

__attribute__((noinline)) void* OuterFunction(int value) {
  void* address = InlinedHelper();  // MARK:outer_call
  asm volatile("" : : "r"(address), "r"(value) : "memory");
  return address;
}

}  // namespace fixture
