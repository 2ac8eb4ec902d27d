/* A library that imports one libc function, built three ways by tests/unit/CMakeLists.txt (lazy binding,
 * -z now, -fno-plt) for import_slots_test. */
#include <unistd.h>

int FixtureParentId(void) { return (int)getppid(); }
