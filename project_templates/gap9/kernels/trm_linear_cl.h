/* Cluster-parallel tiled linear layer for GAP9 (int8 activations, int8 or packed int4 weights).
 *
 * Called on the cluster master core inside a cluster task. Tensors live in L2; the kernel allocates its L1 tiles,
 * streams them with the cluster DMA (weights double-buffered when `double_buffer`), forks the team and splits
 * each tile over the cores by output channel or by token. Semantics: trm_linear_s8_ref / trm_linear_s4_ref of
 * project_templates/kernels/trm_kernels.h, bit for bit. Tile sizes come from trm_tvm/gap9/tiling.py, which
 * computes the same L1 budget as trm_linear_cl_l1_bytes() below.
 */
#ifndef TRM_LINEAR_CL_H
#define TRM_LINEAR_CL_H
#include <stdint.h>

/* Optional per-core compute generated from the TIR linear strategy (trm_tvm/gap9/tir_kernels.py): `rows` contiguous
 * input rows x `n_out` weight rows (and their bias/mult/shift) in L1 -> `rows` output rows of `n_out` bytes,
 * `out_stride` bytes apart (a token split: contiguous; a channel split: the tile's width). Called once per core
 * share. Returns 0, or -1 when it holds no kernel for this shape (or, for kernels with word loads, x or w does not
 * start on a 32-bit word). */
typedef int (*trm_linear_cl_share_fn)(int rows, int n_out, int out_stride, const int8_t *x, const uint8_t *w,
                                      const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);

typedef struct {
  const int8_t *in;     /* L2 [tokens][n_in] */
  const void *w;        /* L2 [n_out][row bytes]: n_in (wbits 8) or (n_in+1)/2 (wbits 4) */
  const int32_t *bias;  /* L2 [n_out] (pass zeros for no bias) */
  const int32_t *mult;  /* L2 [n_out] */
  const int32_t *shift; /* L2 [n_out] */
  int8_t *out;          /* L2 [tokens][n_out] */
  int tokens, n_in, n_out, wbits;
  int tile_tokens, tile_out; /* L1 tile: tokens x output channels */
  int split_tokens;          /* 0: a tile's output channels are split over the cores; 1: its tokens */
  int double_buffer;         /* 1: next weight tile and previous output tile move while the cores compute */
  const uint8_t *packed;     /* optional: per output tile, [weights padded to 8 B][bias][mult][shift] of tile_out
                                rows each (zero-padded on the last tile), so one DMA moves a tile
                                (trm_tvm/gap9/tiling.pack_linear); NULL: w/bias/mult/shift, four DMAs per tile */
  trm_linear_cl_share_fn share; /* optional: the generated per-core compute; NULL: the hand-written loop */
} trm_linear_cl_args_t;

enum { TRM_CL_OK = 0, TRM_CL_E_L1 = -1, TRM_CL_E_ARGS = -2 };

/* L1 bytes the kernel allocates for these tiles (each block rounded up to 8 bytes). */
uint32_t trm_linear_cl_l1_bytes(const trm_linear_cl_args_t *a);
/* Runs the layer on the whole team; returns TRM_CL_OK or a negative TRM_CL_E_* (L1 full, bad tile sizes, or a
 * `share` without a kernel for one of the tile's shapes). */
int trm_linear_cl(const trm_linear_cl_args_t *a);

#endif
