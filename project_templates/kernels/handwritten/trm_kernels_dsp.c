/* Hand-written linear kernels for cores with the Arm DSP extension (Cortex-M4/M7/M33): SMLAD on int16 pairs.
 *
 * The blocking (docs/kernels.md): both operands are widened to int16 pairs once into `scratch` -- all the
 * activations once per call, one weight row once per output channel -- so the inner loop is nothing but LDMs and
 * SMLADs. A chunk of the row (8 k = 4 words) stays in registers while TRM_DSP_TOKENS tokens stream past it; their
 * activations are interleaved per chunk so one pointer walks them all, and the loop takes two chunks per turn.
 * n_in is zero-padded to a multiple of 16 in scratch, so there is no k tail; a token tail runs the same loop with
 * fewer tokens. The raw sums of a row go to scratch and are requantised in a separate loop, which keeps the
 * product loop's 14 registers free of requantisation state.
 * Pair order of a chunk (what SXTB16 gives for free): (k0,k2) (k1,k3) (k4,k6) (k5,k7), for both operands.
 */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

#define TRM_DSP_TOKENS 3 /* tokens per block: 4 weight + 4 activation + 3 accumulator + 3 pointer registers */

static inline int trm_pad16(int n) { return (n + 15) & ~15; }

/* the int32 sums of one row, one int16 row and every token's int16 activations; +3 to align */
int trm_linear_s8_dsp_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)n_out;
  return 4 * tokens + 2 * trm_pad16(n_in) * (tokens + 1) + 3;
}
int trm_linear_s4_dsp_scratch_bytes(int tokens, int n_in, int n_out) {
  return trm_linear_s8_dsp_scratch_bytes(tokens, n_in, n_out);
}

/* ---- widening into scratch -------------------------------------------------------------------------------- */

/* bytes [8c, 8c+8) of a row of n bytes, zero past n (never reads past it): the chunks after the full ones */
TRM_INLINE void trm_load8_tail(const void *row, int c, int n, uint32_t x[2]) {
  uint8_t tail[8] = {0};
  if (n > 8 * c) memcpy(tail, (const uint8_t *)row + 8 * c, (size_t)(n - 8 * c));
  x[0] = trm_read_u32(tail);
  x[1] = trm_read_u32(tail + 4);
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

/* A row of n int8 values -> chunks of int16 pairs at dst[4c..], zero-padded to `chunks` chunks. dst_step: words
 * from one chunk to the next (4 for a weight row; 4*nb for a token inside a block of nb interleaved tokens). */
TRM_INLINE void trm_widen_s8_row(const int8_t *row, uint32_t *dst, int n, int chunks, int dst_step) {
  int c = 0;
  for (; 8 * c + 8 <= n; c++, row += 8, dst += dst_step) {
    uint32_t x[2] = {trm_read_u32(row), trm_read_u32(row + 4)};
    trm_widen_s8(x, dst);
  }
  for (; c < chunks; c++, dst += dst_step) {
    uint32_t x[2];
    trm_load8_tail(row - 8 * c, c, n, x);
    trm_widen_s8(x, dst);
  }
}

/* A packed int4 row (n values, (n+1)/2 bytes) -> chunks as above, values times 16. */
TRM_INLINE void trm_widen_s4_row(const uint8_t *row, uint32_t *dst, int n, int chunks) {
  int bytes = (n + 1) / 2, c = 0;
  for (; 4 * c + 4 <= bytes; c++, dst += 4) trm_widen_s4(trm_read_u32(row + 4 * c), dst);
  for (; c < chunks; c++, dst += 4) {
    uint8_t tail[4] = {0};
    if (bytes > 4 * c) memcpy(tail, row + 4 * c, (size_t)(bytes - 4 * c));
    trm_widen_s4(trm_read_u32(tail), dst);
  }
}

/* All activations, token blocks interleaved per chunk: block b (tokens 3b..), chunk c, token j of nb. */
TRM_INLINE void trm_widen_activations(const int8_t *in, uint32_t *act, int tokens, int n_in, int chunks) {
  for (int t0 = 0; t0 < tokens; t0 += TRM_DSP_TOKENS) {
    int nb = tokens - t0 < TRM_DSP_TOKENS ? tokens - t0 : TRM_DSP_TOKENS;
    for (int j = 0; j < nb; j++)
      trm_widen_s8_row(in + (size_t)(t0 + j) * n_in, act + (size_t)t0 * chunks * 4 + 4 * j, n_in, chunks, 4 * nb);
  }
}

/* ---- the inner product ------------------------------------------------------------------------------------ */

/* s_j += chunk . token j's 4 words, for NB tokens */
#define TRM_DSP_CHUNK()                         \
  do {                                          \
    uint32_t wc[4], x[4];                       \
    w = trm_ldm4_held(w, wc);                   \
    a = trm_ldm4_streamed(a, x);                \
    s0 = trm_smlad(wc[0], x[0], s0);            \
    s0 = trm_smlad(wc[1], x[1], s0);            \
    s0 = trm_smlad(wc[2], x[2], s0);            \
    s0 = trm_smlad(wc[3], x[3], s0);            \
    if (nb > 1) {                               \
      a = trm_ldm4_streamed(a, x);              \
      s1 = trm_smlad(wc[0], x[0], s1);          \
      s1 = trm_smlad(wc[1], x[1], s1);          \
      s1 = trm_smlad(wc[2], x[2], s1);          \
      s1 = trm_smlad(wc[3], x[3], s1);          \
    }                                           \
    if (nb > 2) {                               \
      a = trm_ldm4_streamed(a, x);              \
      s2 = trm_smlad(wc[0], x[0], s2);          \
      s2 = trm_smlad(wc[1], x[1], s2);          \
      s2 = trm_smlad(wc[2], x[2], s2);          \
      s2 = trm_smlad(wc[3], x[3], s2);          \
    }                                           \
  } while (0)

/* NB tokens' sums of one row: the row's chunk in 4 registers, each token's 4 words streamed past it, two chunks
 * per iteration (chunks is even). NB is a constant after inlining; the returned a is the next block's start. */
TRM_INLINE const uint32_t *trm_block_sums(const uint32_t *w, const uint32_t *end, const uint32_t *a, int nb,
                                          int32_t *acc) {
  int32_t s0 = 0, s1 = 0, s2 = 0;
  do {
    TRM_DSP_CHUNK();
    TRM_DSP_CHUNK();
  } while (w != end);
  acc[0] = s0;
  if (nb > 1) acc[1] = s1;
  if (nb > 2) acc[2] = s2;
  return a;
}

/* acc[t] = row . activations of token t, every token (raw int32 sums; the requantisation runs after, in its own
 * loop, so the block loop keeps its registers for the products) */
TRM_INLINE void trm_row_sums(const uint32_t *wrow, const uint32_t *act, int chunks, int tokens, int32_t *acc) {
  const uint32_t *wend = wrow + 4 * chunks;
  int left = tokens;
  for (; left >= TRM_DSP_TOKENS; left -= TRM_DSP_TOKENS, acc += TRM_DSP_TOKENS)
    act = trm_block_sums(wrow, wend, act, 3, acc);
  if (left == 2) trm_block_sums(wrow, wend, act, 2, acc);
  if (left == 1) trm_block_sums(wrow, wend, act, 1, acc);
}

/* out[t*n_out] = requantised bias + (acc[t] >> dot_shift) (4 for int4 weights: widened times 16, the sums stay
 * multiples of 16, so the shift is exact) */
TRM_INLINE void trm_requant_column(const int32_t *acc, int32_t bias, trm_requant_t q, int8_t *out, int tokens,
                                   int n_out, int dot_shift) {
  if (q.shift >= 33) { /* the usual case: one SMMLA and one ASR, two tokens per turn */
    int32_t s = q.shift - 32, t = 0;
    for (; t + 2 <= tokens; t += 2, out += 2 * n_out) {
      int32_t v0 = bias + (acc[t] >> dot_shift), v1 = bias + (acc[t + 1] >> dot_shift);
      out[0] = (int8_t)trm_ssat8(trm_smmla(v0, q.mult, q.round) >> s);
      out[n_out] = (int8_t)trm_ssat8(trm_smmla(v1, q.mult, q.round) >> s);
    }
    if (t < tokens) *out = (int8_t)trm_ssat8(trm_smmla(bias + (acc[t] >> dot_shift), q.mult, q.round) >> s);
  } else {
    for (int t = 0; t < tokens; t++, out += n_out) *out = trm_requant(bias + (acc[t] >> dot_shift), q);
  }
}

/* ---- the kernels ------------------------------------------------------------------------------------------ */

TRM_INLINE uint32_t *trm_align4(void *p) { return (uint32_t *)(((uintptr_t)p + 3) & ~(uintptr_t)3); }

/* scratch: [int32 sums: tokens][int16 weight row: pad16(n_in)][int16 activations: tokens x pad16(n_in)] */
#define TRM_DSP_LINEAR(dtype, wtype, ROW_BYTES, WIDEN_ROW, DOT_SHIFT)                                           \
  void trm_linear_##dtype##_dsp(const int8_t *in, const wtype *w, const int32_t *bias, const int32_t *mult,     \
                                const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out,           \
                                void *scratch) {                                                              \
    int chunks = trm_pad16(n_in) / 8;                                                                         \
    int32_t *acc = (int32_t *)trm_align4(scratch);                                                            \
    uint32_t *wrow = (uint32_t *)(acc + tokens), *act = wrow + 4 * chunks;                                    \
    trm_widen_activations(in, act, tokens, n_in, chunks);                                                     \
    for (int o = 0; o < n_out; o++) {                                                                         \
      WIDEN_ROW(w + (size_t)o * (ROW_BYTES), wrow, n_in, chunks);                                             \
      trm_row_sums(wrow, act, chunks, tokens, acc);                                                           \
      trm_requant_column(acc, bias ? bias[o] : 0, trm_requant_init(mult, shift, o), out + o, tokens, n_out,   \
                         DOT_SHIFT);                                                                          \
    }                                                                                                         \
  }

#define TRM_WIDEN_WEIGHTS_S8(row, dst, n, chunks) trm_widen_s8_row(row, dst, n, chunks, 4)
TRM_DSP_LINEAR(s8, int8_t, n_in, TRM_WIDEN_WEIGHTS_S8, 0)
TRM_DSP_LINEAR(s4, uint8_t, (n_in + 1) / 2, trm_widen_s4_row, 4)
