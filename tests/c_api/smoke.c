/* Pure C caller of libkiln.so (tests/c_api.cmake): proves the header is C and that the kiln_* symbols are exported
 * from the shared library. Builds the demo CNN (argv[1]) on the CPU, runs batch 2 and checks the softmax output,
 * then one failing call. Prints "c api OK" on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/c_api.h"

#define CHECK(call)                                                                      \
  do {                                                                                   \
    int st_ = (call);                                                                    \
    if (st_ != KILN_OK) {                                                                \
      fprintf(stderr, "%s failed: %s: %s\n", #call, kiln_status_name(st_), kiln_last_error()); \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

int main(int argc, char** argv) {
  kiln_build_config* cfg = NULL;
  kiln_engine* engine = NULL;
  kiln_context* ctx = NULL;
  const int64_t mn[4] = {1, 3, 64, 64}, opt[4] = {2, 3, 64, 64}, mx[4] = {4, 3, 64, 64};
  float* x = NULL;
  float probs[20];
  kiln_tensor in, out;
  int p = -1, i, st;
  if (argc != 2) {
    fprintf(stderr, "usage: kiln_c_api_smoke kiln_demo_cnn.onnx\n");
    return 2;
  }
  printf("kiln %s\n", kiln_version());
  CHECK(kiln_build_config_create(&cfg));
  CHECK(kiln_build_config_set_precision(cfg, "fp32"));
  CHECK(kiln_build_config_add_profile(cfg, &p));
  CHECK(kiln_build_config_set_shape(cfg, p, "input", 4, mn, opt, mx));
  CHECK(kiln_engine_build(argv[1], cfg, &engine));
  kiln_build_config_destroy(cfg);
  CHECK(kiln_context_create(engine, -1, 0, &ctx));

  x = (float*)malloc(sizeof(float) * 2 * 3 * 64 * 64);
  for (i = 0; i < 2 * 3 * 64 * 64; ++i) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  memset(&in, 0, sizeof in);
  in.name = "input";
  in.dtype = KILN_FLOAT32;
  in.rank = 4;
  in.shape[0] = 2, in.shape[1] = 3, in.shape[2] = 64, in.shape[3] = 64;
  in.data = x;
  memset(&out, 0, sizeof out);
  out.name = "probs";
  out.data = probs;
  out.capacity = sizeof probs;
  CHECK(kiln_context_run(ctx, &in, 1, &out, 1));
  if (out.rank != 2 || out.shape[0] != 2 || out.shape[1] != 10 || out.dtype != KILN_FLOAT32) {
    fprintf(stderr, "probs: unexpected rank %d shape [%lld,%lld] dtype %d\n", out.rank, (long long)out.shape[0],
            (long long)out.shape[1], out.dtype);
    return 1;
  }
  for (p = 0; p < 2; ++p) {
    double s = 0;
    for (i = 0; i < 10; ++i) s += probs[p * 10 + i];
    if (fabs(s - 1.0) > 1e-4) {
      fprintf(stderr, "probs row %d sums to %f\n", p, s);
      return 1;
    }
  }
  /* A failing call: a status code and a message naming the input. */
  in.name = "image";
  st = kiln_context_run(ctx, &in, 1, NULL, 0);
  if (st != KILN_ERR_INVALID_ARGUMENT || strstr(kiln_last_error(), "'image'") == NULL) {
    fprintf(stderr, "bad input name: status %d (%s), message '%s'\n", st, kiln_status_name(st), kiln_last_error());
    return 1;
  }
  kiln_context_destroy(ctx);
  kiln_engine_destroy(engine);
  free(x);
  printf("c api OK\n");
  return 0;
}
