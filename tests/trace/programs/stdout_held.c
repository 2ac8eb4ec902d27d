// Exits while another thread holds standard output's lock (as a thread blocked in a printf on a full pipe
// does), after leaking one block of 4321 bytes. Plain, exit() does not wait for that lock; under tracing it
// must not either (a static std::ios_base::Init in memtide's modules or their libraries flushes std::cout at
// exit, which takes the lock).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void* volatile g_leak;

static void* HoldStdout(void* unused) {
  (void)unused;
  flockfile(stdout);
  for (;;) pause();
  return NULL;
}

__attribute__((noinline)) void LeakWhileHeld(void) { g_leak = malloc(4321); }

int main(void) {
  pthread_t holder;
  if (pthread_create(&holder, NULL, HoldStdout, NULL) != 0) return 2;
  while (ftrylockfile(stdout) == 0) {  // until the other thread has it
    funlockfile(stdout);
    usleep(1000);
  }
  LeakWhileHeld();
  exit(0);
}
