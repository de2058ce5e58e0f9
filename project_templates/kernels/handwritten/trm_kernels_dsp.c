/* Hand-written linear kernels for cores with the Arm DSP extension (Cortex-M4/M7/M33): SMLAD on int16 pairs.
 *
 * The blocking (docs/kernels.md): both operands are widened to int16 pairs once into `scratch` -- all the
 * activations once per call, one weight row once per output channel -- so the inner loop is nothing but word
 * loads and SMLADs. The row (8 k = 4 words per chunk) stays in registers while TRM_DSP_TOKENS tokens stream past
 * it; their activations are interleaved per chunk so one pointer walks them all. n_in is zero-padded to a
 * multiple of 8 in scratch, so there is no k tail; a token tail uses the same loop with fewer tokens.
 * Pair order of a chunk (what SXTB16 gives for free): (k0,k2) (k1,k3) (k4,k6) (k5,k7), for both operands.
 */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

#define TRM_DSP_TOKENS 3 /* tokens per block: 4 weight + 4 activation + 3 accumulator + 3 pointer registers */

static inline int trm_pad8(int n) { return (n + 7) & ~7; }

int trm_linear_dsp_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)n_out;
  return 2 * trm_pad8(n_in) * (tokens + 1) + 3; /* int16 activations + one int16 weight row; +3 to align */
}

/* ---- widening into scratch -------------------------------------------------------------------------------- */

/* 8 bytes starting at element 8c of a row of n bytes, zero past the end (never reads past it) */
TRM_INLINE void trm_load8(const void *row, int c, int n, uint32_t x[2]) {
  const uint8_t *p = (const uint8_t *)row + 8 * c;
  if (8 * c + 8 <= n) {
    x[0] = trm_read_u32(p);
    x[1] = trm_read_u32(p + 4);
  } else {
    uint8_t tail[8] = {0};
    memcpy(tail, p, (size_t)(n - 8 * c));
    x[0] = trm_read_u32(tail);
    x[1] = trm_read_u32(tail + 4);
  }
}

/* 8 int8 values -> the chunk's 4 int16-pair words */
TRM_INLINE void trm_widen_s8(const uint32_t x[2], uint32_t *dst) {
  dst[0] = trm_sxtb16(x[0]);
  dst[1] = trm_sxtb16_ror8(x[0]);
  dst[2] = trm_sxtb16(x[1]);
  dst[3] = trm_sxtb16_ror8(x[1]);
}

/* 8 packed int4 values (one word) -> the chunk's 4 words, each value times 16 (nibble in the top of its byte) */
TRM_INLINE void trm_widen_s4(uint32_t w, uint32_t *dst) {
  uint32_t lo = (w << 4) & 0xF0F0F0F0u, hi = w & 0xF0F0F0F0u; /* even / odd elements */
  uint32_t l0 = trm_sxtb16(lo), l1 = trm_sxtb16_ror8(lo);      /* (e0,e4) (e2,e6) */
  uint32_t h0 = trm_sxtb16(hi), h1 = trm_sxtb16_ror8(hi);      /* (e1,e5) (e3,e7) */
  dst[0] = trm_pkhbt16(l0, l1);
  dst[1] = trm_pkhbt16(h0, h1);
  dst[2] = trm_pkhtb16(l1, l0);
  dst[3] = trm_pkhtb16(h1, h0);
}

/* All activations, token blocks interleaved per chunk: block b (tokens 3b..), chunk c, token j of nb. */
static void trm_widen_activations(const int8_t *in, uint32_t *act, int tokens, int n_in) {
  int chunks = trm_pad8(n_in) / 8;
  for (int t0 = 0; t0 < tokens; t0 += TRM_DSP_TOKENS) {
    int nb = tokens - t0 < TRM_DSP_TOKENS ? tokens - t0 : TRM_DSP_TOKENS;
    uint32_t *block = act + (size_t)t0 * chunks * 4;
    for (int j = 0; j < nb; j++)
      for (int c = 0; c < chunks; c++) {
        uint32_t x[2];
        trm_load8(in + (size_t)(t0 + j) * n_in, c, n_in, x);
        trm_widen_s8(x, block + (size_t)(c * nb + j) * 4);
      }
  }
}

static void trm_widen_row_s8(const int8_t *row, uint32_t *dst, int n_in) {
  for (int c = 0; c < trm_pad8(n_in) / 8; c++) {
    uint32_t x[2];
    trm_load8(row, c, n_in, x);
    trm_widen_s8(x, dst + 4 * c);
  }
}

static void trm_widen_row_s4(const uint8_t *row, uint32_t *dst, int n_in) {
  int bytes = (n_in + 1) / 2;
  for (int c = 0; c < trm_pad8(n_in) / 8; c++) {
    uint32_t w;
    if (4 * c + 4 <= bytes) {
      w = trm_read_u32(row + 4 * c);
    } else {
      uint8_t tail[4] = {0};
      memcpy(tail, row + 4 * c, (size_t)(bytes - 4 * c));
      w = trm_read_u32(tail);
    }
    trm_widen_s4(w, dst + 4 * c);
  }
}

/* ---- the inner product --------------------------------------------------------------- */

/* out[j*n_out] for NB tokens j (NB a constant after inlining): the row w against the block's activations a.
 * dot_shift is 4 for int4 weights (widened times 16; the sums stay multiples of 16, so the shift is exact). */
TRM_INLINE void trm_block(const uint32_t *w, const uint32_t *a, int chunks, int nb, trm_requant_t q,
                          int dot_shift, int8_t *out, int n_out) {
  int32_t s0 = 0, s1 = 0, s2 = 0;
  const uint32_t *end = w + 4 * chunks;
  do {
    uint32_t wc[4], x[4];
    w = trm_ldm4_held(w, wc);
    a = trm_ldm4_streamed(a, x);
    s0 = trm_smlad(wc[0], x[0], s0);
    s0 = trm_smlad(wc[1], x[1], s0);
    s0 = trm_smlad(wc[2], x[2], s0);
    s0 = trm_smlad(wc[3], x[3], s0);
    if (nb > 1) {
      a = trm_ldm4_streamed(a, x);
      s1 = trm_smlad(wc[0], x[0], s1);
      s1 = trm_smlad(wc[1], x[1], s1);
      s1 = trm_smlad(wc[2], x[2], s1);
      s1 = trm_smlad(wc[3], x[3], s1);
    }
    if (nb > 2) {
      a = trm_ldm4_streamed(a, x);
      s2 = trm_smlad(wc[0], x[0], s2);
      s2 = trm_smlad(wc[1], x[1], s2);
      s2 = trm_smlad(wc[2], x[2], s2);
      s2 = trm_smlad(wc[3], x[3], s2);
    }
  } while (w != end);
  out[0] = trm_requant(s0 >> dot_shift, q);
  if (nb > 1) out[n_out] = trm_requant(s1 >> dot_shift, q);
  if (nb > 2) out[2 * n_out] = trm_requant(s2 >> dot_shift, q);
}

/* ---- the kernels ------------------------------------------------------------------------------------------ */

/* Column o of out (every token), given row o widened into wrow. */
TRM_INLINE void trm_linear_row(const uint32_t *wrow, const uint32_t *act, trm_requant_t q, int8_t *out,
                               int tokens, int chunks, int n_out, int dot_shift) {
  int t0 = 0;
  for (; t0 + TRM_DSP_TOKENS <= tokens; t0 += TRM_DSP_TOKENS)
    trm_block(wrow, act + (size_t)t0 * chunks * 4, chunks, 3, q, dot_shift, out + (size_t)t0 * n_out, n_out);
  if (tokens - t0 == 2)
    trm_block(wrow, act + (size_t)t0 * chunks * 4, chunks, 2, q, dot_shift, out + (size_t)t0 * n_out, n_out);
  else if (tokens - t0 == 1)
    trm_block(wrow, act + (size_t)t0 * chunks * 4, chunks, 1, q, dot_shift, out + (size_t)t0 * n_out, n_out);
}

TRM_INLINE uint32_t *trm_align4(void *p) { return (uint32_t *)(((uintptr_t)p + 3) & ~(uintptr_t)3); }

void trm_linear_s8_dsp(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  int chunks = trm_pad8(n_in) / 8;
  uint32_t *wrow = trm_align4(scratch), *act = wrow + 4 * chunks;
  trm_widen_activations(in, act, tokens, n_in);
  for (int o = 0; o < n_out; o++) {
    trm_widen_row_s8(w + (size_t)o * n_in, wrow, n_in);
    trm_linear_row(wrow, act, trm_requant_init(bias, mult, shift, o), out + o, tokens, chunks, n_out, 0);
  }
}

void trm_linear_s4_dsp(const int8_t *in, const uint8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  int chunks = trm_pad8(n_in) / 8;
  uint32_t *wrow = trm_align4(scratch), *act = wrow + 4 * chunks;
  trm_widen_activations(in, act, tokens, n_in);
  for (int o = 0; o < n_out; o++) {
    trm_widen_row_s4(w + (size_t)o * ((n_in + 1) / 2), wrow, n_in);
    trm_linear_row(wrow, act, trm_requant_init(bias, mult, shift, o), out + o, tokens, chunks, n_out, 4);
  }
}
