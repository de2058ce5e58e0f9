/* Kernel self-test: a table of kernels (generated per project: selftest_table.c) whose inputs are drawn on the
 * device from the shared PRNG (trm_rpc.h), so the host can recompute every output. */
#ifndef TRM_SELFTEST_H
#define TRM_SELFTEST_H
#include <stdint.h>

#define TRM_ST_PARAMS 6
#define TRM_ST_OK 0
#define TRM_ST_ABSENT (-1)    /* the kernel is not linked into this firmware */
#define TRM_ST_TOO_BIG (-2)   /* its buffers do not fit the work area */

typedef struct {
  uint8_t *base, *next, *end; /* bump allocator over the work area */
  uint32_t seed, counter;     /* PRNG stream and position */
} trm_st_ctx_t;

typedef struct {
  const uint8_t *out; /* the bytes the host hashes */
  uint32_t out_bytes;
  uint64_t ticks;     /* the kernel call alone */
} trm_st_result_t;

typedef int (*trm_st_fn_t)(trm_st_ctx_t *ctx, const int32_t *params, trm_st_result_t *res);
typedef struct {
  const char *name;
  trm_st_fn_t run;
} trm_st_entry_t;

extern const trm_st_entry_t trm_selftests[];
extern const uint32_t trm_selftest_count;

/* Helpers for the generated wrappers. */
void *trm_st_alloc(trm_st_ctx_t *ctx, uint64_t bytes);
/* n values in [lo, hi] from the PRNG, stored as elem_bytes-wide little-endian integers. */
void trm_st_fill(trm_st_ctx_t *ctx, void *dst, uint32_t elem_bytes, uint32_t n, int64_t lo, int64_t hi);
int64_t trm_st_scalar(trm_st_ctx_t *ctx, int64_t lo, int64_t hi);

int trm_st_run(uint32_t kernel, uint32_t seed, const int32_t *params, uint8_t *work, uint32_t work_bytes,
               trm_st_result_t *res);
#endif
