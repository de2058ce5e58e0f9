/* Cluster-parallel tiled linear layer: see trm_linear_cl.h. One tile = `tile_tokens` tokens x `tile_out` output
 * channels. Per tile the master core moves data (phase A), then every core computes its share (phase B):
 *
 *   A (core 0): load the input rows when a new token tile starts; wait for this tile's weights and multipliers;
 *               start the next tile's weights into the other buffer; make sure the output buffer is free
 *   barrier
 *   B (all):    out[t][o] = sat8(rq(bias[o] + sum_k in[t][k] * w[o][k], mult[o], shift[o])) for the core's share
 *   barrier
 *   A' (core 0): start the DMA of the output tile to L2 (waited two tiles later, or now without double buffering)
 */
#include "trm_linear_cl.h"

#include <stddef.h>

#include "pmsis.h"
#include "trm_cl.h"
#include "trm_kernels.h"

#define ROUND8(n) (((uint32_t)(n) + 7u) & ~7u)
#define MAX_DMA_BYTES 65535u /* pi_cl_dma_copy_t.size is 16 bits */

typedef struct {
  const trm_linear_cl_args_t *a;
  int8_t *x;               /* [tile_tokens][n_in] */
  uint8_t *w[2];           /* [tile_out][row_bytes] */
  int32_t *prm[2];         /* [3][tile_out]: bias, mult, shift */
  int8_t *o[2];            /* [tile_tokens][tile_out] */
  pi_cl_dma_copy_t dx, dw[2][4], dout[2];
  int out_pending[2];
  uint32_t row_bytes;
  volatile int share_error; /* a core's `share` call had no kernel for its shape */
} linear_ctx_t;

static uint32_t row_bytes(const trm_linear_cl_args_t *a) { return a->wbits == 4 ? (uint32_t)(a->n_in + 1) / 2 : (uint32_t)a->n_in; }
static int n_buffers(const trm_linear_cl_args_t *a) { return a->double_buffer ? 2 : 1; }

uint32_t trm_linear_cl_l1_bytes(const trm_linear_cl_args_t *a) {
  uint32_t nb = (uint32_t)n_buffers(a);
  return ROUND8(a->tile_tokens * a->n_in) + nb * ROUND8(a->tile_out * row_bytes(a)) + nb * ROUND8(12 * a->tile_out) +
         nb * ROUND8(a->tile_tokens * a->tile_out);
}

/* Weight (o, k): int8, or the k-th nibble of a packed int4 row (element 2j low nibble, 2j+1 high). */
static inline int32_t weight(const uint8_t *row, int k, int wbits) {
  if (wbits == 8) return (int8_t)row[k];
  uint8_t b = row[k >> 1];
  return (k & 1) ? (int32_t)(int8_t)b >> 4 : (int32_t)(int8_t)(uint8_t)(b << 4) >> 4;
}

/* A register block of up to BLOCK_T tokens x BLOCK_O outputs (the 2x4 of PULP-NN's MatMul, docs/gap9.md): each
 * weight is loaded once per k and used for every token of the block. */
#define BLOCK_T 2
#define BLOCK_O 4
static void dot_block(const int8_t *const *x, int nt, const uint8_t *const *w, int no, int n_in, int wbits,
                      int32_t acc[BLOCK_T][BLOCK_O]) {
  for (int k = 0; k < n_in; k++) {
    int32_t wk[BLOCK_O];
    for (int j = 0; j < no; j++) wk[j] = weight(w[j], k, wbits);
    for (int i = 0; i < nt; i++) {
      int32_t xv = x[i][k];
      for (int j = 0; j < no; j++) acc[i][j] += xv * wk[j];
    }
  }
}

static void dma_1d(pi_cl_dma_copy_t *d, const void *ext, void *loc, uint32_t bytes, pi_cl_dma_dir_e dir) {
  d->ext = (uint32_t)(uintptr_t)ext, d->loc = (uint32_t)(uintptr_t)loc, d->size = (uint16_t)bytes;
  d->dir = dir, d->merge = 0;
  pi_cl_dma_memcpy(d);
}

/* Weights and the three per-channel arrays of output tile `to` into buffer `b` (w[b] and prm[b] are adjacent). */
static void load_weights(linear_ctx_t *c, int to, int b) {
  const trm_linear_cl_args_t *a = c->a;
  int o0 = to * a->tile_out, n = a->n_out - o0 < a->tile_out ? a->n_out - o0 : a->tile_out;
  if (a->packed) {
    uint32_t tile_bytes = ROUND8(a->tile_out * c->row_bytes) + 12u * (uint32_t)a->tile_out;
    dma_1d(&c->dw[b][0], a->packed + (uint32_t)to * tile_bytes, c->w[b], tile_bytes, PI_CL_DMA_DIR_EXT2LOC);
    return;
  }
  dma_1d(&c->dw[b][0], (const uint8_t *)a->w + (uint32_t)o0 * c->row_bytes, c->w[b], (uint32_t)n * c->row_bytes, PI_CL_DMA_DIR_EXT2LOC);
  dma_1d(&c->dw[b][1], a->bias + o0, c->prm[b], 4u * (uint32_t)n, PI_CL_DMA_DIR_EXT2LOC);
  dma_1d(&c->dw[b][2], a->mult + o0, c->prm[b] + a->tile_out, 4u * (uint32_t)n, PI_CL_DMA_DIR_EXT2LOC);
  dma_1d(&c->dw[b][3], a->shift + o0, c->prm[b] + 2 * a->tile_out, 4u * (uint32_t)n, PI_CL_DMA_DIR_EXT2LOC);
}

static void wait_weights(linear_ctx_t *c, int b) {
  for (int i = 0; i < (c->a->packed ? 1 : 4); i++) pi_cl_dma_wait(&c->dw[b][i]);
}

/* rq of docs/integer-spec.md; at sh == 32 (linear multipliers encoded at shift 32) the rounded high word, which
 * avoids the 64-bit variable shift (mul, mulh and a carried add on RV32). */
static inline int32_t rq_linear(int32_t v, int32_t mult, int32_t shift) {
  if (shift == 32) return (int32_t)(((int64_t)v * mult + ((int64_t)1 << 31)) >> 32);
  return trm_rq(v, mult, shift);
}

/* Core `core`'s share of one tile: rows [t_lo, t_hi) x channels [o_lo, o_hi) of the tile. */
static void compute_share(linear_ctx_t *c, int b, int ob, int tt_n, int to_n, int core, int cores) {
  const trm_linear_cl_args_t *a = c->a;
  int t_lo = 0, t_hi = tt_n, o_lo = 0, o_hi = to_n;
  if (a->split_tokens) t_lo = tt_n * core / cores, t_hi = tt_n * (core + 1) / cores;
  else o_lo = to_n * core / cores, o_hi = to_n * (core + 1) / cores;
  if (t_lo == t_hi || o_lo == o_hi) return;
  const int32_t *bias = c->prm[b], *mult = c->prm[b] + a->tile_out, *shift = c->prm[b] + 2 * a->tile_out;
  TRM_CL_READS(c->x + t_lo * a->n_in, (t_hi - t_lo) * a->n_in);
  TRM_CL_READS(c->w[b] + (uint32_t)o_lo * c->row_bytes, (uint32_t)(o_hi - o_lo) * c->row_bytes);
  for (int k = 0; k < 3; k++) TRM_CL_READS(c->prm[b] + k * a->tile_out + o_lo, 4 * (o_hi - o_lo));
  for (int t = t_lo; t < t_hi; t++) TRM_CL_WRITES(c->o[ob] + t * to_n + o_lo, o_hi - o_lo);
  if (a->share) { /* generated kernels: the share in one call (a channel split's rows at the tile's stride) */
    if (a->share(t_hi - t_lo, o_hi - o_lo, to_n, c->x + t_lo * a->n_in, c->w[b] + (uint32_t)o_lo * c->row_bytes,
                 bias + o_lo, mult + o_lo, shift + o_lo, c->o[ob] + t_lo * to_n + o_lo))
      c->share_error = 1;
    return;
  }
  for (int t = t_lo; t < t_hi; t += BLOCK_T) {
    int nt = t_hi - t < BLOCK_T ? t_hi - t : BLOCK_T;
    const int8_t *x[BLOCK_T] = {c->x + t * a->n_in, c->x + (t + nt - 1) * a->n_in};
    for (int o = o_lo; o < o_hi; o += BLOCK_O) {
      int no = o_hi - o < BLOCK_O ? o_hi - o : BLOCK_O;
      const uint8_t *w[BLOCK_O];
      int32_t acc[BLOCK_T][BLOCK_O];
      for (int j = 0; j < no; j++) w[j] = c->w[b] + (uint32_t)(o + j) * c->row_bytes;
      for (int i = 0; i < nt; i++)
        for (int j = 0; j < no; j++) acc[i][j] = bias[o + j];
      dot_block(x, nt, w, no, a->n_in, a->wbits, acc);
      for (int i = 0; i < nt; i++)
        for (int j = 0; j < no; j++)
          TRM_CL_ST8(c->o[ob] + (t + i) * to_n + o + j, trm_sat8(rq_linear(acc[i][j], mult[o + j], shift[o + j])));
    }
  }
}

static void linear_worker(void *arg) {
  linear_ctx_t *c = arg;
  const trm_linear_cl_args_t *a = c->a;
  int core = (int)pi_core_id(), cores = pi_cl_team_nb_cores();
  int n_to = (a->n_out + a->tile_out - 1) / a->tile_out, n_tt = (a->tokens + a->tile_tokens - 1) / a->tile_tokens;
  int n_tiles = n_to * n_tt, nb = n_buffers(a);
  for (int i = 0; i < n_tiles; i++) {
    int tt = i / n_to, to = i % n_to, b = i % nb, ob = i % nb;
    int t0 = tt * a->tile_tokens, o0 = to * a->tile_out;
    int tt_n = a->tokens - t0 < a->tile_tokens ? a->tokens - t0 : a->tile_tokens;
    int to_n = a->n_out - o0 < a->tile_out ? a->n_out - o0 : a->tile_out;
    if (core == 0) { /* phase A */
      if (i == 0 || nb == 1) load_weights(c, to, b);
      if (to == 0) {
        dma_1d(&c->dx, a->in + t0 * a->n_in, c->x, (uint32_t)(tt_n * a->n_in), PI_CL_DMA_DIR_EXT2LOC);
        pi_cl_dma_wait(&c->dx);
      }
      wait_weights(c, b);
      if (nb == 2 && i + 1 < n_tiles) load_weights(c, (i + 1) % n_to, (i + 1) % 2);
      if (c->out_pending[ob]) pi_cl_dma_wait(&c->dout[ob]), c->out_pending[ob] = 0;
    }
    pi_cl_team_barrier();
    compute_share(c, b, ob, tt_n, to_n, core, cores); /* phase B */
    pi_cl_team_barrier();
    if (core == 0) { /* phase A': output tile rows go to out[t0..][o0..] with the L2 row stride */
      pi_cl_dma_copy_2d_t *d = &c->dout[ob];
      d->ext = (uint32_t)(uintptr_t)(a->out + t0 * a->n_out + o0), d->loc = (uint32_t)(uintptr_t)c->o[ob];
      d->size = (uint16_t)(tt_n * to_n), d->stride = (uint32_t)a->n_out, d->length = (uint32_t)to_n;
      d->dir = PI_CL_DMA_DIR_LOC2EXT, d->merge = 0;
      pi_cl_dma_memcpy_2d(d);
      if (nb == 1) pi_cl_dma_wait(d);
      else c->out_pending[ob] = 1;
    }
  }
  if (core == 0)
    for (int ob = 0; ob < 2; ob++)
      if (c->out_pending[ob]) pi_cl_dma_wait(&c->dout[ob]), c->out_pending[ob] = 0;
}

int trm_linear_cl(const trm_linear_cl_args_t *a) {
  int nb = n_buffers(a);
  linear_ctx_t c = {.a = a, .row_bytes = row_bytes(a)};
  if (a->tile_tokens < 1 || a->tile_out < 1 || a->tile_tokens > a->tokens || a->tile_out > a->n_out ||
      (uint32_t)a->tile_out * c.row_bytes > MAX_DMA_BYTES || (uint32_t)(a->tile_tokens * a->n_in) > MAX_DMA_BYTES ||
      (uint32_t)(a->tile_tokens * a->tile_out) > MAX_DMA_BYTES || (a->wbits != 8 && a->wbits != 4) ||
      (a->packed && ROUND8(a->tile_out * c.row_bytes) + 12u * (uint32_t)a->tile_out > MAX_DMA_BYTES))
    return TRM_CL_E_ARGS;
  uint32_t sz_x = ROUND8(a->tile_tokens * a->n_in), sz_w = ROUND8(a->tile_out * c.row_bytes);
  uint32_t sz_p = ROUND8(12 * a->tile_out), sz_o = ROUND8(a->tile_tokens * a->tile_out);
  int ok = (c.x = pi_cl_l1_malloc(NULL, sz_x)) != NULL;
  for (int b = 0; b < nb; b++) {
    ok = ok && (c.w[b] = pi_cl_l1_malloc(NULL, sz_w + sz_p)) != NULL; /* weights, then bias/mult/shift */
    if (ok) c.prm[b] = (int32_t *)(c.w[b] + sz_w);
    ok = ok && (c.o[b] = pi_cl_l1_malloc(NULL, sz_o)) != NULL;
  }
  if (ok) pi_cl_team_fork(pi_cl_cluster_nb_cores(), linear_worker, &c);
  for (int b = nb - 1; b >= 0; b--) { /* free what was allocated, in reverse */
    if (c.o[b]) pi_cl_l1_free(NULL, c.o[b], sz_o);
    if (c.w[b]) pi_cl_l1_free(NULL, c.w[b], sz_w + sz_p);
  }
  if (c.x) pi_cl_l1_free(NULL, c.x, sz_x);
  return !ok ? TRM_CL_E_L1 : c.share_error ? TRM_CL_E_ARGS : TRM_CL_OK;
}
