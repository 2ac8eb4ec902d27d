// Links early_thread_lib (a thread started by a library constructor, before main); see that file.
#include <stdio.h>

void RunEarlyThread(void);

int main(void) {
  RunEarlyThread();
  printf("joined\n");
  return 0;
}
