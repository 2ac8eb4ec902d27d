// A known peak through realloc, calloc and aligned blocks (requested bytes):
//   a = malloc(300000); b = calloc(1000, 100) (100000); b = realloc(b, 250000): 550000 live (realloc frees
//   the old block as it makes the new one: 650000 never counts); c = posix_memalign(4096, 120000): 670000;
//   free(a); b = realloc(b, 600000): 720000 (the peak); free everything; d = realloc(NULL, 500000) and
//   realloc(d, 0) frees it.
#include <stdlib.h>

void* volatile g_sink;

int main(void) {
  char* a = malloc(300000);
  char* b = calloc(1000, 100);
  b = realloc(b, 250000);
  void* c = NULL;
  if (posix_memalign(&c, 4096, 120000) != 0) return 1;
  free(a);
  b = realloc(b, 600000);
  free(b);
  free(c);
  char* d = realloc(NULL, 500000);
  g_sink = d;
  d = realloc(d, 0);
  free(d);  // realloc(p, 0) freed it and returned NULL (glibc); free(NULL) does nothing
  return 0;
}
