/* Self-test runtime: the PRNG fill helpers and the bump allocator used by the generated wrappers. */
#include <string.h>
#include "trm_rpc.h"
#include "trm_selftest.h"

void *trm_st_alloc(trm_st_ctx_t *ctx, uint64_t bytes) {
  uint8_t *p = ctx->next;
  uint64_t rounded = (bytes + 7u) & ~(uint64_t)7u;
  if (rounded > (uint64_t)(ctx->end - p)) return 0;
  ctx->next = p + rounded;
  return p;
}

void trm_st_fill(trm_st_ctx_t *ctx, void *dst, uint32_t elem_bytes, uint32_t n, int64_t lo, int64_t hi) {
  uint8_t *d = (uint8_t *)dst;
  for (uint32_t i = 0; i < n; i++) {
    int64_t v = trm_prng_range(ctx->seed, ctx->counter++, lo, hi);
    memcpy(d + (size_t)i * elem_bytes, &v, elem_bytes); /* little-endian: the low bytes */
  }
}

int64_t trm_st_scalar(trm_st_ctx_t *ctx, int64_t lo, int64_t hi) {
  return trm_prng_range(ctx->seed, ctx->counter++, lo, hi);
}

int trm_st_run(uint32_t kernel, uint32_t seed, const int32_t *params, uint8_t *work, uint32_t work_bytes,
               trm_st_result_t *res) {
  trm_st_ctx_t ctx = {work, work, work + work_bytes, seed, 0};
  return trm_selftests[kernel].run(&ctx, params, res);
}
