// A known peak (requested bytes): 5 x 100000 live (500000), free 3, then 2 x 300000: 800000 at the top;
// after freeing everything, 700000 in one block stays under it. No stdio: the program's blocks are the only
// ones a tracer sees after start-up.
#include <stdlib.h>

void* volatile g_sink;

int main(void) {
  void* small[5];
  for (int i = 0; i < 5; ++i) small[i] = malloc(100000);
  for (int i = 0; i < 3; ++i) free(small[i]);
  void* big[2];
  for (int i = 0; i < 2; ++i) big[i] = malloc(300000);  // peak: 2 x 100000 + 2 x 300000 = 800000
  for (int i = 0; i < 2; ++i) free(big[i]);
  for (int i = 3; i < 5; ++i) free(small[i]);
  void* last = malloc(700000);
  g_sink = last;
  free(last);
  return 0;
}
