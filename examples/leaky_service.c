/* The bundled example for `scripts/demo`: a toy inference service. Each request builds a "tensor",
 * runs, frees it, and leaks a small cache entry: the kind of slow leak memtide makes visible.
 * Marks before/after each request show up in the report, as the seed's monitor_memory_usage did. */
#include <memtide/memtide.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *load_model(size_t bytes) {
  char *weights = malloc(bytes);
  if (weights != NULL) memset(weights, 1, bytes);
  return weights;
}

/* Stands in for the model: touches every activation so the buffer is really used. */
__attribute__((noinline)) static float run_model(float *activations, size_t count) {
  float sum = 0;
  for (size_t i = 0; i < count; i += 1024) sum += activations[i] = (float)i;
  return sum;
}

static float serve(int request, char ***cache, size_t *cached) {
  char label[48];
  snprintf(label, sizeof(label), "before_inference_%d", request);
  if (memtide_mark) memtide_mark(label);
  size_t activation_bytes = 8u << 20;
  float *activations = malloc(activation_bytes);
  float result = activations != NULL ? run_model(activations, activation_bytes / sizeof(float)) : 0;
  free(activations);
  /* The leak: a per-request cache entry nobody evicts. */
  *cache = realloc(*cache, (*cached + 1) * sizeof(char *));
  (*cache)[(*cached)++] = strdup("request result that nobody evicts: 64 bytes of text padded out....");
  snprintf(label, sizeof(label), "after_inference_%d", request);
  if (memtide_mark) memtide_mark(label);
  return result;
}

int main(int argc, char **argv) {
  int requests = argc > 1 ? atoi(argv[1]) : 5;
  char *model = load_model(32u << 20);
  char **cache = NULL;
  size_t cached = 0;
  float checksum = 0;
  for (int request = 0; request < requests; ++request) checksum += serve(request, &cache, &cached);
  size_t current = 0, peak = 0;
  if (memtide_get_traced_memory) memtide_get_traced_memory(&current, &peak);
  printf("served %d requests (checksum %.0f); memtide sees %zu bytes live, %zu at the peak%s\n", requests, checksum, current, peak,
         memtide_get_traced_memory ? "" : " (not running under memtide)");
  free(model);
  return 0;
}
