// See own_thread.h.
#include "own_thread.h"

#include <signal.h>

namespace memtide::internal {

int StartOwnThread(void* (*main)(void*), void* stack, size_t stack_bytes, pthread_t* thread) {
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_JOINABLE);
  if (stack != nullptr) {
    pthread_attr_setstack(&attributes, stack, stack_bytes);
  } else {
    pthread_attr_setstacksize(&attributes, stack_bytes);
  }
  // The new thread inherits the creator's mask: block everything for the call only.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const int status = pthread_create(thread, &attributes, main, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_attr_destroy(&attributes);
  return status;
}

}  // namespace memtide::internal
