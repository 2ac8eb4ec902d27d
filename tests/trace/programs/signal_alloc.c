// Stacks through signal frames: a SIGUSR1 handler, raised synchronously (so calling malloc in it is safe),
// leaks 21021 bytes; its stack must reach through the signal trampoline to main. Meanwhile a 200 µs
// SIGPROF timer interrupts the malloc/free loop (and memtide's unwinding inside it) thousands of times.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

void* g_from_handler;
volatile sig_atomic_t g_ticks;

__attribute__((noinline)) void AllocateInHandler(int signal_number) {
  (void)signal_number;
  g_from_handler = malloc(21021);
  g_from_handler = NULL;  // leaked
}

void Tick(int signal_number) {
  (void)signal_number;
  g_ticks = g_ticks + 1;
}

__attribute__((noinline)) void RaiseFromMain(void) { raise(SIGUSR1); }

int main(void) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = AllocateInHandler;
  sigaction(SIGUSR1, &action, NULL);
  action.sa_handler = Tick;
  action.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &action, NULL);
  struct itimerval timer = {{0, 200}, {0, 200}};
  setitimer(ITIMER_PROF, &timer, NULL);
  for (int i = 0; i < 300000; ++i) free(malloc(16 + (i & 1023)));
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &off, NULL);
  RaiseFromMain();
  printf("ticks %d\n", g_ticks > 0);
  return 0;
}
