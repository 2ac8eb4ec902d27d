// The functions of symbolizer_fixture.cc (a shared library built with -g for symbolizer_test.cc).
#ifndef MEMTIDE_TESTS_UNIT_SYMBOLIZER_FIXTURE_H_
#define MEMTIDE_TESTS_UNIT_SYMBOLIZER_FIXTURE_H_

extern "C" void* FixtureReturnAddress();

namespace fixture {

// The return address of a call made on the line marked direct_call.
__attribute__((visibility("default"))) void* DirectCaller();
// The return address of a call made on the line marked inlined_call, inside InlinedHelper, which is inlined
// into OuterFunction on the line marked outer_call.
__attribute__((visibility("default"))) void* OuterFunction(int value);

}  // namespace fixture

#endif  // MEMTIDE_TESTS_UNIT_SYMBOLIZER_FIXTURE_H_
