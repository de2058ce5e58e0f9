/* Cluster-parallel row-wise ops and transpose: see trm_rows_cl.h. Each core owns a private L1 slice and its rows;
 * per chunk: DMA the operand rows in, wait, run the reference kernel on L1, DMA the result rows out, wait. */
#include "trm_rows_cl.h"

#include <stddef.h>

#include "pmsis.h"
#include "trm_cl.h"
#include "trm_kernels.h"
#include "trm_linear_cl.h" /* TRM_CL_OK, TRM_CL_E_* */

#define ROUND8(n) (((uint32_t)(n) + 7u) & ~7u)
#define MAX_DMA_BYTES 65535u

typedef struct {
  const void *a;
  uint8_t *l1;
  uint32_t slice;
} cl_ctx_t;

static int out_bytes(const trm_rows_cl_args_t *a) { return a->op == TRM_ROWS_ADD_S32 ? 4 : 1; }
static int n_operands(const trm_rows_cl_args_t *a) { return a->op == TRM_ROWS_RMSNORM ? 0 : a->n_in; }

/* Slice layout: [constants][operand 0..n-1 chunk][rmsnorm int32 chunk][output chunk], each rounded to 8. */
static uint32_t const_bytes(const trm_rows_cl_args_t *a) {
  return a->op == TRM_ROWS_LUT ? 256u : a->op == TRM_ROWS_RMSNORM ? ROUND8(8 * a->cols) : 0u;
}

uint32_t trm_rows_cl_slice_bytes(const trm_rows_cl_args_t *a) {
  uint32_t chunk = (uint32_t)(a->chunk_rows * a->cols);
  return const_bytes(a) + (uint32_t)n_operands(a) * ROUND8(chunk) +
         (a->op == TRM_ROWS_RMSNORM ? ROUND8(4 * chunk) : 0u) + ROUND8((uint32_t)out_bytes(a) * chunk);
}

static void dma(pi_cl_dma_copy_t *d, const void *ext, void *loc, uint32_t bytes, pi_cl_dma_dir_e dir) {
  d->ext = (uint32_t)(uintptr_t)ext, d->loc = (uint32_t)(uintptr_t)loc, d->size = (uint16_t)bytes;
  d->dir = dir, d->merge = 0;
  pi_cl_dma_memcpy(d);
}

static void compute_chunk(const trm_rows_cl_args_t *a, int8_t *const *in, const int32_t *in32,
                          const int8_t *consts, void *out, int n) {
  int len = n * a->cols;
  switch (a->op) {
    case TRM_ROWS_ADD_S8: trm_add_s8_ref((const int8_t *const *)in, a->m, a->n_in, a->s, out, len); break;
    case TRM_ROWS_ADD_S32: trm_add_s32_ref((const int8_t *const *)in, a->m, a->n_in, out, len); break;
    case TRM_ROWS_MUL: trm_mul_s8_ref(in[0], in[1], a->m[0], a->s, out, len); break;
    case TRM_ROWS_LUT: trm_lut_s8_ref(in[0], consts, out, len); break;
    case TRM_ROWS_RMSNORM:
      trm_rmsnorm_s32_ref(in32, a->eps, (const int32_t *)consts, (const int32_t *)consts + a->cols, out, n, a->cols);
      break;
  }
}

static void rows_worker(void *arg) {
  const cl_ctx_t *c = arg;
  const trm_rows_cl_args_t *a = c->a;
  int core = (int)pi_core_id(), cores = pi_cl_team_nb_cores();
  int lo = a->rows * core / cores, hi = a->rows * (core + 1) / cores;
  if (lo == hi) return;
  uint8_t *p = c->l1 + (uint32_t)core * c->slice, *consts = p;
  uint32_t chunk = (uint32_t)(a->chunk_rows * a->cols);
  pi_cl_dma_copy_t d[5];
  if (a->op == TRM_ROWS_LUT) dma(&d[0], a->table, consts, 256, PI_CL_DMA_DIR_EXT2LOC), pi_cl_dma_wait(&d[0]);
  if (a->op == TRM_ROWS_RMSNORM) {
    dma(&d[0], a->mult, consts, 4u * (uint32_t)a->cols, PI_CL_DMA_DIR_EXT2LOC);
    dma(&d[1], a->shift, consts + 4 * a->cols, 4u * (uint32_t)a->cols, PI_CL_DMA_DIR_EXT2LOC);
    pi_cl_dma_wait(&d[0]), pi_cl_dma_wait(&d[1]);
  }
  p += const_bytes(a);
  int8_t *in[3];
  for (int j = 0; j < n_operands(a); j++) in[j] = (int8_t *)p, p += ROUND8(chunk);
  int32_t *in32 = (int32_t *)p;
  if (a->op == TRM_ROWS_RMSNORM) p += ROUND8(4 * chunk);
  uint8_t *out = p;
  int ob = out_bytes(a);
  for (int r = lo; r < hi; r += a->chunk_rows) {
    int n = hi - r < a->chunk_rows ? hi - r : a->chunk_rows;
    uint32_t len = (uint32_t)(n * a->cols);
    for (int j = 0; j < n_operands(a); j++) dma(&d[j], a->in[j] + (uint32_t)r * a->cols, in[j], len, PI_CL_DMA_DIR_EXT2LOC);
    if (a->op == TRM_ROWS_RMSNORM) dma(&d[0], a->in32 + (uint32_t)r * a->cols, in32, 4 * len, PI_CL_DMA_DIR_EXT2LOC);
    for (int j = 0; j < (a->op == TRM_ROWS_RMSNORM ? 1 : n_operands(a)); j++) pi_cl_dma_wait(&d[j]);
    for (int j = 0; j < n_operands(a); j++) TRM_CL_READS(in[j], len);
    if (a->op == TRM_ROWS_RMSNORM) TRM_CL_READS(in32, 4 * len);
    if (a->op == TRM_ROWS_LUT) TRM_CL_READS(consts, 256);
    if (a->op == TRM_ROWS_RMSNORM) TRM_CL_READS(consts, 8 * a->cols);
    TRM_CL_WRITES(out, (uint32_t)ob * len);
    compute_chunk(a, in, in32, (const int8_t *)consts, out, n);
    dma(&d[4], (uint8_t *)a->out + (uint32_t)r * a->cols * (uint32_t)ob, out, (uint32_t)ob * len, PI_CL_DMA_DIR_LOC2EXT);
    pi_cl_dma_wait(&d[4]);
  }
}

static int run_sliced(void (*worker)(void *), const void *args, uint32_t slice) {
  int cores = pi_cl_cluster_nb_cores();
  cl_ctx_t c = {args, pi_cl_l1_malloc(NULL, slice * (uint32_t)cores), slice};
  if (!c.l1) return TRM_CL_E_L1;
  pi_cl_team_fork(cores, worker, &c);
  pi_cl_l1_free(NULL, c.l1, slice * (uint32_t)cores);
  return TRM_CL_OK;
}

int trm_rows_cl(const trm_rows_cl_args_t *a) {
  int bad_n = a->op == TRM_ROWS_RMSNORM ? 0 : a->op == TRM_ROWS_MUL ? a->n_in != 2
              : a->op == TRM_ROWS_LUT ? a->n_in != 1 : (a->n_in < 1 || a->n_in > 3);
  uint32_t chunk = (uint32_t)(a->chunk_rows * a->cols);
  if (bad_n || a->chunk_rows < 1 || 4 * chunk > MAX_DMA_BYTES) return TRM_CL_E_ARGS;
  return run_sliced(rows_worker, a, trm_rows_cl_slice_bytes(a));
}

/* ---- transpose: output rows [c_lo, c_hi) of out [cols][rows] per core, in column chunks ---- */
uint32_t trm_transpose_cl_slice_bytes(const trm_transpose_cl_args_t *a) {
  return 2u * ROUND8(a->rows * a->chunk_cols);
}

static void transpose_worker(void *arg) {
  const cl_ctx_t *c = arg;
  const trm_transpose_cl_args_t *a = c->a;
  int core = (int)pi_core_id(), cores = pi_cl_team_nb_cores();
  int lo = a->cols * core / cores, hi = a->cols * (core + 1) / cores;
  int8_t *gathered = (int8_t *)(c->l1 + (uint32_t)core * c->slice);
  int8_t *transposed = gathered + ROUND8(a->rows * a->chunk_cols);
  pi_cl_dma_copy_2d_t d;
  for (int col = lo; col < hi; col += a->chunk_cols) {
    int w = hi - col < a->chunk_cols ? hi - col : a->chunk_cols;
    uint32_t len = (uint32_t)(a->rows * w);
    d.ext = (uint32_t)(uintptr_t)(a->in + col), d.loc = (uint32_t)(uintptr_t)gathered, d.size = (uint16_t)len;
    d.stride = (uint32_t)a->cols, d.length = (uint32_t)w, d.dir = PI_CL_DMA_DIR_EXT2LOC, d.merge = 0;
    pi_cl_dma_memcpy_2d(&d); /* in[:, col:col+w] -> gathered [rows][w] */
    pi_cl_dma_wait(&d);
    TRM_CL_READS(gathered, len);
    TRM_CL_WRITES(transposed, len);
    trm_transpose_s8_ref(gathered, transposed, a->rows, w); /* -> [w][rows] = out rows col..col+w */
    dma(&d, a->out + (uint32_t)col * a->rows, transposed, len, PI_CL_DMA_DIR_LOC2EXT);
    pi_cl_dma_wait(&d);
  }
}

int trm_transpose_cl(const trm_transpose_cl_args_t *a) {
  if (a->chunk_cols < 1 || (uint32_t)(a->rows * a->chunk_cols) > MAX_DMA_BYTES) return TRM_CL_E_ARGS;
  return run_sliced(transpose_worker, a, trm_transpose_cl_slice_bytes(a));
}
