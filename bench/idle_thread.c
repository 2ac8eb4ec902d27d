// A preload that starts one thread which never runs again, for scripts/bench's "idle thread" configuration.
//
// glibc's malloc skips its arena locks and atomics while a process has a single thread (SINGLE_THREAD_P) and
// takes them for good once a second thread exists. memtide's monitor thread is such a thread, so in a
// single-threaded program part of memtide's ratio is this switch, not its hooks: the same program with this
// thread and nothing else measures that part. All signals stay blocked in the thread, as in memtide's monitor,
// so the program's signals are never delivered to it.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void* WaitForever(void* unused) {
  for (;;) pause();  // every signal is blocked: never returns; the process's exit ends the thread
  return unused;
}

__attribute__((constructor)) static void StartIdleThread(void) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 64 * 1024);
  pthread_t thread;
  int status = pthread_create(&thread, &attributes, WaitForever, NULL);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  if (status != 0) fprintf(stderr, "idle_thread: cannot start the thread: %s\n", strerror(status));
}
