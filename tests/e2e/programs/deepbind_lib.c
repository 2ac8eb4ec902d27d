/* Opened by deepbind with RTLD_DEEPBIND: allocates and frees on the program's behalf, with whatever malloc and
 * free its own lookups find. */
#include <stdlib.h>

__attribute__((visibility("default"))) void *DeepbindAllocate(size_t bytes) { return malloc(bytes); }
__attribute__((visibility("default"))) void DeepbindRelease(void *block) { free(block); }
