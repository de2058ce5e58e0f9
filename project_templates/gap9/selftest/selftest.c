/* Self-test of the functional GAP9 build (tests/test_gap9_compat.py generates selftest_data.h).
 *
 * Mode TRM_SELFTEST_LINEAR: trm_linear_cl on the operands of selftest_data.h once per schedule of its `st_cases`
 * table (one cluster task each, e.g. a tuning batch; a case may name generated per-core kernels, trm_gap9_tir.c); per case the FC prints "CASE <i>", "L1PEAK <hex>" (that
 * call's L1 peak), "RC <int>" and the output bytes as hex on "OUT" lines, then exits 0.
 * Mode TRM_SELFTEST_RACE=<n>: a small two-stage parallel kernel with one deliberate bug n, which the compat
 * checker must stop (exit 3, "TRM-COMPAT-ERROR"):
 *   0 no bug (must pass)    1 overlapping output ranges    2 missing barrier between the stages
 *   3 DMA into a tile other cores read in the same phase    4 compute reads a tile before its DMA is waited
 */
#include <stdint.h>

#include "pmsis.h"
#include "trm_cl.h"
#include "trm_linear_cl.h"

uint32_t trm_compat_l1_peak(void);

static struct pi_device uart;

static void put(const char *s) {
  int n = 0;
  while (s[n]) n++;
  pi_uart_write(&uart, (void *)s, (uint32_t)n);
}
static __attribute__((unused)) void put_hex(uint32_t v, int digits) {
  char b[9];
  for (int i = 0; i < digits; i++) b[i] = "0123456789abcdef"[(v >> (4 * (digits - 1 - i))) & 15];
  b[digits] = 0;
  put(b);
}

#ifdef TRM_SELFTEST_LINEAR
typedef struct {
  int tile_tokens, tile_out, split_tokens, double_buffer;
  const uint8_t *packed;        /* the case's packed weight tiles, or 0 */
  trm_linear_cl_share_fn share; /* generated per-core kernels (trm_gap9_tir.h), or 0 */
  const void *w;                /* the weights in the layout the case's kernel reads (trm_tvm/gap9/tir_kernels.py) */
} st_case_t;
#include "selftest_data.h"
void trm_compat_l1_peak_reset(void);
static int8_t out[ST_TOKENS * ST_N_OUT];
static int rc;

static void cluster_entry(void *arg) {
  const st_case_t *c = arg;
  trm_linear_cl_args_t a = {
      .in = st_in, .w = c->w, .bias = st_bias, .mult = st_mult, .shift = st_shift, .out = out,
      .tokens = ST_TOKENS, .n_in = ST_N_IN, .n_out = ST_N_OUT, .wbits = ST_WBITS,
      .tile_tokens = c->tile_tokens, .tile_out = c->tile_out, .split_tokens = c->split_tokens,
      .double_buffer = c->double_buffer, .packed = c->packed, .share = c->share,
  };
  rc = trm_linear_cl(&a);
}

static int run(struct pi_device *cluster) {
  for (int k = 0; k < (int)(sizeof st_cases / sizeof st_cases[0]); k++) {
    struct pi_cluster_task task;
    for (int i = 0; i < ST_TOKENS * ST_N_OUT; i++) out[i] = 0x5A; /* a case that writes nothing cannot pass */
    trm_compat_l1_peak_reset();
    pi_cluster_send_task_to_cl(cluster, pi_cluster_task(&task, cluster_entry, (void *)&st_cases[k]));
    put("CASE ");
    put_hex((uint32_t)k, 4);
    put("\nL1PEAK ");
    put_hex(trm_compat_l1_peak(), 8);
    put(rc == 0 ? "\nRC 0\n" : rc == -1 ? "\nRC -1\n" : "\nRC -2\n");
    for (int i = 0; i < ST_TOKENS * ST_N_OUT; i += 32) {
      put("OUT ");
      for (int j = i; j < i + 32 && j < ST_TOKENS * ST_N_OUT; j++) put_hex((uint8_t)out[j], 2);
      put("\n");
    }
  }
  return 0;
}
#else
/* Stage 1: y[i] = 3 * x[i] over each core's chunk of an L1 tile; stage 2: z[i] = y[i] + y[i + 1 (wrapping)]. */
#define N 96
static int8_t x_l2[N], z_l2[N];
typedef struct {
  int8_t *x, *y, *z;
  pi_cl_dma_copy_t dma;
} race_ctx_t;

static void race_worker(void *arg) {
  race_ctx_t *c = arg;
  int core = (int)pi_core_id(), cores = pi_cl_team_nb_cores();
  int lo = N * core / cores, hi = N * (core + 1) / cores;
  if (core == 0) {
    c->dma.ext = (uint32_t)(uintptr_t)x_l2, c->dma.loc = (uint32_t)(uintptr_t)c->x, c->dma.size = N;
    c->dma.dir = PI_CL_DMA_DIR_EXT2LOC, c->dma.merge = 0;
    pi_cl_dma_memcpy(&c->dma);
    if (TRM_SELFTEST_RACE != 4) pi_cl_dma_wait(&c->dma);
  }
  if (TRM_SELFTEST_RACE != 4) pi_cl_team_barrier();
  int w_hi = TRM_SELFTEST_RACE == 1 && core < cores - 1 ? hi + 1 : hi;
  TRM_CL_READS(c->x + lo, hi - lo);
  TRM_CL_WRITES(c->y + lo, w_hi - lo);
  for (int i = lo; i < w_hi; i++) TRM_CL_ST8(c->y + i, (int8_t)(3 * c->x[i]));
  if (TRM_SELFTEST_RACE == 3 && core == 0) { /* reload x while the other cores may still read it */
    pi_cl_dma_memcpy(&c->dma);
    pi_cl_dma_wait(&c->dma);
  }
  if (TRM_SELFTEST_RACE != 2) pi_cl_team_barrier();
  TRM_CL_READS(c->y + lo, hi - lo + (hi < N ? 1 : 0));
  if (hi == N) TRM_CL_READS(c->y, 1);
  TRM_CL_WRITES(c->z + lo, hi - lo);
  for (int i = lo; i < hi; i++) TRM_CL_ST8(c->z + i, (int8_t)(c->y[i] + c->y[(i + 1) % N]));
  if (TRM_SELFTEST_RACE == 4 && core == 0) pi_cl_dma_wait(&c->dma);
}

static void cluster_entry(void *arg) {
  (void)arg;
  race_ctx_t c = {pi_cl_l1_malloc(0, N), pi_cl_l1_malloc(0, N), pi_cl_l1_malloc(0, N), {0}};
  pi_cl_team_fork(0, race_worker, &c);
  pi_cl_dma_copy_t d = {.ext = (uint32_t)(uintptr_t)z_l2, .loc = (uint32_t)(uintptr_t)c.z, .size = N,
                        .dir = PI_CL_DMA_DIR_LOC2EXT};
  pi_cl_dma_memcpy(&d);
  pi_cl_dma_wait(&d);
  pi_cl_l1_free(0, c.z, N), pi_cl_l1_free(0, c.y, N), pi_cl_l1_free(0, c.x, N);
}

static int run(struct pi_device *cluster) {
  for (int i = 0; i < N; i++) x_l2[i] = (int8_t)(i - 40);
  struct pi_cluster_task task;
  pi_cluster_send_task_to_cl(cluster, pi_cluster_task(&task, cluster_entry, 0));
  for (int i = 0; i < N; i++)
    if (z_l2[i] != (int8_t)(3 * (i - 40) + 3 * ((i + 1) % N - 40))) {
      put("RACE-RESULT-WRONG\n");
      return 1;
    }
  put("RACE-RESULT-OK\n");
  return 0;
}
#endif

static int app_main(void) {
  struct pi_uart_conf uc;
  struct pi_cluster_conf cc;
  struct pi_device cluster;
  pi_uart_conf_init(&uc);
  pi_open_from_conf(&uart, &uc);
  pi_uart_open(&uart);
  pi_cluster_conf_init(&cc);
  pi_open_from_conf(&cluster, &cc);
  if (pi_cluster_open(&cluster)) return 2;
  int r = run(&cluster);
  pi_cluster_close(&cluster);
  return r;
}

int main(void) { return pmsis_kickoff((void *)app_main); }
