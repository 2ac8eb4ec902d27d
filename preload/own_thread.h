// memtide's own threads (the monitor, the private-descriptor thread, the bookkeeping thread) all start the
// same way: joinable, so that a credential change can wait until one is gone, and with every signal blocked,
// so that signals meant for the program never land on them.
#ifndef MEMTIDE_PRELOAD_OWN_THREAD_H_
#define MEMTIDE_PRELOAD_OWN_THREAD_H_

#include <pthread.h>
#include <stddef.h>

namespace memtide::internal {

// Starts main(nullptr) on a new thread whose stack is `stack` (stack_bytes long, mapped by the caller) or,
// with stack null, one of stack_bytes from glibc. Returns pthread_create's status.
int StartOwnThread(void* (*main)(void*), void* stack, size_t stack_bytes, pthread_t* thread);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_OWN_THREAD_H_
