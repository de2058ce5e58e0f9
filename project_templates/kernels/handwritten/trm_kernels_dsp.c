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

#define TRM_DSP_TOKENS 4 /* tokens per block: 4 weight + 4 activation + 4 accumulator + 2 pointer registers */

static inline int trm_pad16(int n) { return (n + 15) & ~15; }

/* one int16 row and every token's int16 activations; +3 to align */
int trm_linear_s8_dsp_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)n_out;
  return 2 * trm_pad16(n_in) * (tokens + 1) + 3;
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

/* s_j += chunk . token j's 4 words, for nb tokens (nb is a constant after inlining) */
#define TRM_DSP_TOKEN(j)                        \
  if (nb > j) {                                 \
    a = trm_ldm4_streamed(a, x);                \
    s##j = trm_smlad(wc[0], x[0], s##j);        \
    s##j = trm_smlad(wc[1], x[1], s##j);        \
    s##j = trm_smlad(wc[2], x[2], s##j);        \
    s##j = trm_smlad(wc[3], x[3], s##j);        \
  }
#define TRM_DSP_CHUNK()                         \
  do {                                          \
    uint32_t wc[4], x[4];                       \
    w = trm_ldm4_held(w, wc);                   \
    TRM_DSP_TOKEN(0)                            \
    TRM_DSP_TOKEN(1)                            \
    TRM_DSP_TOKEN(2)                            \
    TRM_DSP_TOKEN(3)                            \
  } while (0)

/* One block: nb tokens' sums of one row, each accumulator starting at `init` (the bias for int8 weights). The
 * row's chunk sits in 4 registers while the tokens' chunks stream past it, two chunks per turn (chunks is even).
 * UNROLLED: chunks is a constant and the k loop is unrolled whole -- no loop counter or end pointer, which is
 * what lets 4 tokens (4 held + 4 streamed + 4 accumulators + 2 pointers = 14 registers) fit. Returns the next
 * block's activations. */
#define TRM_DSP_BLOCK_SUMS(UNROLLED)                                                                          \
  int32_t s0 = init, s1 = init, s2 = init, s3 = init;                                                         \
  const uint32_t *w = wrow;                                                                                   \
  if (UNROLLED) {                                                                                             \
    _Pragma("GCC unroll 8") for (int c = 0; c < chunks; c += 2) {                                             \
      TRM_DSP_CHUNK();                                                                                        \
      TRM_DSP_CHUNK();                                                                                        \
    }                                                                                                         \
  } else {                                                                                                    \
    const uint32_t *end = wrow + 4 * chunks;                                                                  \
    do {                                                                                                      \
      TRM_DSP_CHUNK();                                                                                        \
      TRM_DSP_CHUNK();                                                                                        \
    } while (w != end);                                                                                       \
  }                                                                                                           \
  acc[0] = s0;                                                                                                \
  if (nb > 1) acc[1] = s1;                                                                                    \
  if (nb > 2) acc[2] = s2;                                                                                    \
  if (nb > 3) acc[3] = s3;                                                                                    \
  return a;

TRM_INLINE const uint32_t *trm_block_sums(const uint32_t *wrow, int chunks, const uint32_t *a, int nb, int32_t init,
                                          int32_t *acc) {
  TRM_DSP_BLOCK_SUMS(0)
}

/* sat8(rq(v)) for shift >= 33: one SMMLA and one ASR (trm_requant.h) */
TRM_INLINE int8_t trm_rq_high(int32_t v, trm_requant_t q) {
  return (int8_t)trm_ssat8(trm_smmla(v, q.mult, q.round) >> (q.shift - 32));
}

/* The value requantised from a raw sum: bias already inside (int8) or added to the exact sum / 16 (int4 weights
 * are widened times 16: the sums stay multiples of 16) */
TRM_INLINE int32_t trm_dot_value(int32_t s, int32_t bias, int dot_shift) { return dot_shift ? bias + (s >> dot_shift) : s; }

/* One chunk against 4 tokens, pointers advanced: 5 LDM + 16 SMLAD. On the core this is one asm statement with
 * the 8 data registers pinned, so the compiler only places the 4 accumulators and 2 pointers (14 registers in
 * all; compiled from the C above, GCC spills an accumulator per token). The first chunk of a block starts every
 * token's sum at s3's value (the SMLAD accumulate operand), so the block needs no initialising moves.
 * Elsewhere (the host tests): TRM_DSP_CHUNK, the same sums. */
#if defined(__ARM_FEATURE_DSP)
#define TRM_DSP_SMLAD4(s, a0)                                                                                 \
  "smlad %[" #s "], r8, r2, %[" #a0 "]\n\tsmlad %[" #s "], r9, r3, %[" #s "]\n\t"                           \
  "smlad %[" #s "], r10, r4, %[" #s "]\n\tsmlad %[" #s "], r11, r5, %[" #s "]\n\t"
#define TRM_DSP_LDM_W "ldmia %[w]!, {r8, r9, r10, r11}\n\t"
#define TRM_DSP_LDM_A "ldmia %[a]!, {r2, r3, r4, r5}\n\t"
#define TRM_DSP_CLOBBERS "r2", "r3", "r4", "r5", "r8", "r9", "r10", "r11", "memory"
#define TRM_DSP_CHUNK4()                                                                                      \
  __asm__ volatile(TRM_DSP_LDM_W TRM_DSP_LDM_A TRM_DSP_SMLAD4(s0, s0) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s1, s1)     \
                   TRM_DSP_LDM_A TRM_DSP_SMLAD4(s2, s2) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s3, s3)                  \
                   : [w] "+r"(w), [a] "+r"(a), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3)     \
                   :                                                                                          \
                   : TRM_DSP_CLOBBERS)
#define TRM_DSP_FIRST_CHUNK4()                                                                                \
  __asm__ volatile(TRM_DSP_LDM_W TRM_DSP_LDM_A TRM_DSP_SMLAD4(s0, s3) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s1, s3)     \
                   TRM_DSP_LDM_A TRM_DSP_SMLAD4(s2, s3) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s3, s3)                  \
                   : [w] "+r"(w), [a] "+r"(a), [s0] "=r"(s0), [s1] "=r"(s1), [s2] "=r"(s2), [s3] "+r"(s3)     \
                   :                                                                                          \
                   : TRM_DSP_CLOBBERS)
#else
#define TRM_DSP_CHUNK4() TRM_DSP_CHUNK()
#define TRM_DSP_FIRST_CHUNK4() do { s0 = s1 = s2 = s3; TRM_DSP_CHUNK(); } while (0)
#endif

/* One output column (row o of the weights, every token) for shift >= 33: 4-token blocks with the k loop
 * unrolled (chunks constant), requantised straight from the accumulators; the 1-3 token tail through the rolled
 * loop. int8 weights start the sums at the bias; int4 sums are exact multiples of 16 (trm_dot_value). */
TRM_INLINE void trm_column_high(const uint32_t *wrow, const uint32_t *a, int chunks, int tokens, int32_t bias,
                                trm_requant_t q, int8_t *out, int n_out, int dot_shift) {
  const int nb = TRM_DSP_TOKENS;
  int32_t init = dot_shift ? 0 : bias;
  const uint32_t *a_end = a + (size_t)(tokens / nb * nb) * 4 * chunks;
  (void)nb;
  while (a != a_end) {
    int32_t s0, s1, s2, s3 = init;
    const uint32_t *w = wrow;
    TRM_DSP_FIRST_CHUNK4();
    _Pragma("GCC unroll 16") for (int c = 1; c < chunks; c++) TRM_DSP_CHUNK4();
    *out = trm_rq_high(trm_dot_value(s0, bias, dot_shift), q), out += n_out;
    *out = trm_rq_high(trm_dot_value(s1, bias, dot_shift), q), out += n_out;
    *out = trm_rq_high(trm_dot_value(s2, bias, dot_shift), q), out += n_out;
    *out = trm_rq_high(trm_dot_value(s3, bias, dot_shift), q), out += n_out;
  }
  int32_t acc[TRM_DSP_TOKENS], left = tokens % TRM_DSP_TOKENS;
  if (left == 3) trm_block_sums(wrow, chunks, a, 3, init, acc);
  if (left == 2) trm_block_sums(wrow, chunks, a, 2, init, acc);
  if (left == 1) trm_block_sums(wrow, chunks, a, 1, init, acc);
  for (int j = 0; j < left; j++) out[j * n_out] = trm_rq_high(trm_dot_value(acc[j], bias, dot_shift), q);
}

/* Any shift (the rare sh <= 32 rows): rolled blocks, requantised per token through trm_requant */
TRM_INLINE void trm_column_any(const uint32_t *wrow, const uint32_t *act, int chunks, int tokens, int32_t bias,
                               trm_requant_t q, int8_t *out, int n_out, int dot_shift) {
  int32_t acc[TRM_DSP_TOKENS], init = dot_shift ? 0 : bias;
  for (int t = 0; t < tokens; t += TRM_DSP_TOKENS) {
    int nb = tokens - t < TRM_DSP_TOKENS ? tokens - t : TRM_DSP_TOKENS;
    if (nb == 4) act = trm_block_sums(wrow, chunks, act, 4, init, acc);
    if (nb == 3) act = trm_block_sums(wrow, chunks, act, 3, init, acc);
    if (nb == 2) act = trm_block_sums(wrow, chunks, act, 2, init, acc);
    if (nb == 1) act = trm_block_sums(wrow, chunks, act, 1, init, acc);
    for (int j = 0; j < nb; j++) out[(size_t)(t + j) * n_out] = trm_requant(trm_dot_value(acc[j], bias, dot_shift), q);
  }
}

/* ---- the kernels ------------------------------------------------------------------------------------------ */

TRM_INLINE uint32_t *trm_align4(void *p) { return (uint32_t *)(((uintptr_t)p + 3) & ~(uintptr_t)3); }

/* The model's k lengths get a column loop with the k loop unrolled (n_in 16, 32, 48, 64, 96: 2-12 chunks); other
 * lengths the same loop with chunks a variable. */
#define TRM_DSP_COLUMN_CASE(CH) \
  case CH: trm_column_high(wrow, act, CH, tokens, b, q, out + o, n_out, dot_shift); break;

TRM_INLINE void trm_dsp_column(const uint32_t *wrow, const uint32_t *act, int chunks, int tokens, int32_t b,
                               trm_requant_t q, int8_t *out, int o, int n_out, int dot_shift) {
  if (q.shift < 33) {
    trm_column_any(wrow, act, chunks, tokens, b, q, out + o, n_out, dot_shift);
    return;
  }
  switch (chunks) {
    TRM_DSP_COLUMN_CASE(2)
    TRM_DSP_COLUMN_CASE(4)
    TRM_DSP_COLUMN_CASE(6)
    TRM_DSP_COLUMN_CASE(8)
    TRM_DSP_COLUMN_CASE(12)
    default: trm_column_any(wrow, act, chunks, tokens, b, q, out + o, n_out, dot_shift); break;
  }
}

/* scratch: [int16 weight row: pad16(n_in)][int16 activations: tokens x pad16(n_in)] */
#define TRM_DSP_LINEAR(dtype, wtype, ROW_BYTES, WIDEN_ROW, DOT_SHIFT)                                           \
  void trm_linear_##dtype##_dsp(const int8_t *in, const wtype *w, const int32_t *bias, const int32_t *mult,     \
                                const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out,           \
                                void *scratch) {                                                              \
    int chunks = trm_pad16(n_in) / 8;                                                                         \
    uint32_t *wrow = trm_align4(scratch), *act = wrow + 4 * chunks;                                           \
    trm_widen_activations(in, act, tokens, n_in, chunks);                                                     \
    for (int o = 0; o < n_out; o++) {                                                                         \
      WIDEN_ROW(w + (size_t)o * (ROW_BYTES), wrow, n_in, chunks);                                             \
      trm_dsp_column(wrow, act, chunks, tokens, bias ? bias[o] : 0, trm_requant_init(mult, shift, o), out, o,  \
                     n_out, DOT_SHIFT);                                                                       \
    }                                                                                                         \
  }

#define TRM_WIDEN_WEIGHTS_S8(row, dst, n, chunks) trm_widen_s8_row(row, dst, n, chunks, 4)
TRM_DSP_LINEAR(s8, int8_t, n_in, TRM_WIDEN_WEIGHTS_S8, 0)
TRM_DSP_LINEAR(s4, uint8_t, (n_in + 1) / 2, trm_widen_s4_row, 4)
