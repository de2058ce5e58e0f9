/* Cluster-parallel row-wise ops for GAP9: the non-linear parts of a `net` call, split over the cores by row.
 *
 * Called on the cluster master inside a cluster task; tensors in L2, row-major [rows][cols]. The master allocates
 * one private L1 slice per core, forks, and every core moves its rows through its slice in chunks of
 * `chunk_rows` (1D DMA in, the reference kernel on L1, 1D DMA out), issuing its own DMA commands. Semantics are
 * those of the reference kernels (trm_kernels.h), bit for bit. trm_tvm/gap9/tiling.py (`plan_rows`) computes the
 * same slice size as trm_rows_cl_slice_bytes().
 */
#ifndef TRM_ROWS_CL_H
#define TRM_ROWS_CL_H
#include <stdint.h>

typedef enum {
  TRM_ROWS_ADD_S8,  /* out8 = sat8((sum_j in[j]*m[j] + 2^(s-1)) >> s) */
  TRM_ROWS_ADD_S32, /* out32 = sum_j in[j]*m[j] */
  TRM_ROWS_MUL,     /* out8 = sat8(rq(in[0]*in[1], m[0], s)) */
  TRM_ROWS_LUT,     /* out8 = table[in[0] + 128] */
  TRM_ROWS_RMSNORM, /* out8 = integer RMSNorm of each int32 row of in32 (eps, per-column mult/shift) */
} trm_rows_op_t;

typedef struct {
  trm_rows_op_t op;
  int rows, cols;
  const int8_t *in[3]; /* int8 operands, n_in of them (add: 1..3, mul: 2, lut: 1) */
  int n_in;
  const int32_t *in32;  /* RMSNorm input */
  void *out;            /* int8, or int32 for ADD_S32 */
  int32_t m[3], s;      /* add multipliers and shift; mul: m[0] = mult, s = shift */
  const int8_t *table;  /* LUT */
  int64_t eps;          /* RMSNorm */
  const int32_t *mult, *shift;
  int chunk_rows;       /* rows per DMA chunk in one core's slice */
} trm_rows_cl_args_t;

uint32_t trm_rows_cl_slice_bytes(const trm_rows_cl_args_t *a);
int trm_rows_cl(const trm_rows_cl_args_t *a); /* TRM_CL_OK or TRM_CL_E_L1 / TRM_CL_E_ARGS */

/* out[c][r] = in[r][c] for in [rows][cols]: output rows split over the cores; each core gathers its input columns
 * with a 2D DMA, `chunk_cols` at a time, transposes them in L1 and writes its contiguous output rows back. */
typedef struct {
  const int8_t *in;
  int8_t *out;
  int rows, cols, chunk_cols;
} trm_transpose_cl_args_t;

uint32_t trm_transpose_cl_slice_bytes(const trm_transpose_cl_args_t *a);
int trm_transpose_cl(const trm_transpose_cl_args_t *a);

#endif
