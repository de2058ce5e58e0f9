/* Hand-written linear kernels for cores with the Arm DSP extension (Cortex-M4/M7/M33): SMLAD on int16 pairs.
 *
 * The blocking (docs/kernels.md): both operands are widened to int16 pairs once into `scratch` -- all the
 * activations once per call, one weight row once per output channel -- so the inner loop is nothing but LDMs and
 * SMLADs. A chunk of the row (8 k = 4 words) stays in registers while 4 tokens stream past it; their activations
 * are interleaved per chunk so one pointer walks them all. n_in is zero-padded to a multiple of 16 in scratch, so
 * there is no k tail. For the model's k lengths the column loop of a row (every 4-token block, its requantisation
 * and stores) is one asm statement per chunk count, generated from one template, reading the row's requantisation
 * words from scratch right after its chunks; other lengths, shifts < 33 and token tails run the rolled C loop.
 * Pair order of a chunk (what SXTB16 gives for free): (k0,k2) (k1,k3) (k4,k6) (k5,k7), for both operands.
 */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

#define TRM_DSP_TOKENS 4 /* tokens per block: 4 weight + 4 activation + 4 accumulator + 2 pointer registers */

static inline int trm_pad16(int n) { return (n + 15) & ~15; }

/* one int16 row, the column loop's 9 words and every token's int16 activations; +3 to align */
int trm_linear_s8_dsp_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)n_out;
  return 2 * trm_pad16(n_in) * (tokens + 1) + 36 + 3;
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

/* 8 int8 values at src (any alignment) -> the chunk's 4 words at dst: on the core two LDR, four SXTB16 and one
 * STM (GCC stores the words one by one) */
TRM_INLINE void trm_widen_s8_chunk(const int8_t *src, uint32_t *dst) {
#if defined(__ARM_FEATURE_DSP)
  __asm__ volatile("ldr r2, [%[s]]\n\tldr r4, [%[s], #4]\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"
                   "sxtb16 r5, r4, ror #8\n\tsxtb16 r4, r4\n\tstmia %[d], {r2, r3, r4, r5}"
                   :
                   : [s] "r"(src), [d] "r"(dst)
                   : "r2", "r3", "r4", "r5", "memory");
#else
  uint32_t x[2] = {trm_read_u32(src), trm_read_u32(src + 4)};
  trm_widen_s8(x, dst);
#endif
}

/* A row of n int8 values -> chunks of int16 pairs at dst[4c..], zero-padded to `chunks` chunks. dst_step: words
 * from one chunk to the next (4 for a weight row; 4*nb for a token inside a block of nb interleaved tokens). */
TRM_INLINE void trm_widen_s8_row(const int8_t *row, uint32_t *dst, int n, int chunks, int dst_step) {
  int c = 0;
  _Pragma("GCC unroll 12") for (; 8 * c + 8 <= n; c++, row += 8, dst += dst_step) trm_widen_s8_chunk(row, dst);
  for (; c < chunks; c++, dst += dst_step) {
    uint32_t x[2];
    trm_load8_tail(row - 8 * c, c, n, x);
    trm_widen_s8(x, dst);
  }
}

/* A packed int4 row (n values, (n+1)/2 bytes) -> chunks as above, values times 16. */
TRM_INLINE void trm_widen_s4_row(const uint8_t *row, uint32_t *dst, int n, int chunks) {
  int bytes = (n + 1) / 2, c = 0;
  _Pragma("GCC unroll 12") for (; 4 * c + 4 <= bytes; c++, dst += 4) trm_widen_s4(trm_read_u32(row + 4 * c), dst);
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

/* One block in C: nb tokens' sums of one row, each accumulator starting at `init` (the bias for int8 weights).
 * The row's chunk sits in 4 registers while the tokens' chunks stream past it, two chunks per turn (chunks is
 * even). The rolled path (other k lengths, shifts < 33, token tails) and, on the host, the asm column loop's twin.
 * Returns the next block's activations. */
TRM_INLINE const uint32_t *trm_block_sums(const uint32_t *wrow, int chunks, const uint32_t *a, int nb, int32_t init,
                                          int32_t *acc) {
  int32_t s0 = init, s1 = init, s2 = init, s3 = init;
  const uint32_t *w = wrow, *end = wrow + 4 * chunks;
  do {
    TRM_DSP_CHUNK();
    TRM_DSP_CHUNK();
  } while (w != end);
  acc[0] = s0;
  if (nb > 1) acc[1] = s1;
  if (nb > 2) acc[2] = s2;
  if (nb > 3) acc[3] = s3;
  return a;
}

/* sat8(rq(v)) for shift >= 33: one SMMLA and one ASR (trm_requant.h) */
TRM_INLINE int8_t trm_rq_high(int32_t v, trm_requant_t q) {
  return (int8_t)trm_ssat8(trm_smmla(v, q.mult, q.round) >> (q.shift - 32));
}

/* The value requantised from a raw sum: bias already inside (int8) or added to the exact sum / 16 (int4 weights
 * are widened times 16: the sums stay multiples of 16) */
TRM_INLINE int32_t trm_dot_value(int32_t s, int32_t bias, int dot_shift) { return dot_shift ? bias + (s >> dot_shift) : s; }

/* What the block loop needs besides the row: one LDM's worth of words stored right after the row's chunks in
 * scratch (the row pointer reaches them after the last chunk; no register holds them during the products). */
typedef struct {
  int32_t bias, mult, round, shift; /* shift = sh - 32 */
  int32_t n_out, n_out3;            /* output strides of tokens 1 and 3 of a block */
  int8_t *out;                      /* token 0 of the next block */
  const uint32_t *a_end;            /* activations after the last full block */
  int32_t init;                     /* the sums' start: the bias for int8 weights, 0 for int4 */
} trm_dsp_column_t;
#define TRM_DSP_COLUMN_WORDS 9

#if defined(__ARM_FEATURE_DSP)
_Static_assert(sizeof(trm_dsp_column_t) == 4 * TRM_DSP_COLUMN_WORDS, "the column words are one LDM + init");
#define TRM_DSP_COLUMN_WORDS_AT(p) ((trm_dsp_column_t *)(p))
/* The whole column loop for one CH (a literal: chunks per row) as one asm statement. Per block of 4 tokens:
 * LDR init, CH x (LDM of the row chunk + 4 x (LDM of a token chunk + 4 SMLAD)), one LDM of the column words,
 * 4 x requantisation (SMMLA, ASR, SSAT, STRB; int4 weights: ADD bias + sum/16 first), out pointer saved, row
 * pointer back, loop. The data registers are pinned (r2-r5 token chunk, r8-r11 row chunk, then the column
 * words), so the compiler only places the 4 accumulators and 2 pointers: 14 registers, nothing spilled. */
#define TRM_DSP_SMLAD4(s, a0)                                                                                 \
  "smlad %[" #s "], r8, r2, %[" #a0 "]\n\tsmlad %[" #s "], r9, r3, %[" #s "]\n\t"                           \
  "smlad %[" #s "], r10, r4, %[" #s "]\n\tsmlad %[" #s "], r11, r5, %[" #s "]\n\t"
#define TRM_DSP_LDM_W "ldmia %[w]!, {r8, r9, r10, r11}\n\t"
#define TRM_DSP_LDM_A "ldmia %[a]!, {r2, r3, r4, r5}\n\t"
#define TRM_DSP_VALUE_0(s) ""
#define TRM_DSP_VALUE_4(s) "add %[" #s "], r2, %[" #s "], asr #4\n\t"
#define TRM_DSP_RQ(s, DOT_SHIFT)                                                                              \
  TRM_DSP_VALUE_##DOT_SHIFT(s) "smmla %[" #s "], %[" #s "], r3, r4\n\tasr %[" #s "], %[" #s "], r5\n\t"      \
  "ssat %[" #s "], #8, %[" #s "]\n\t"
#define TRM_DSP_COLUMN_ASM(CH, DOT_SHIFT, w, a, c)                                                            \
  do {                                                                                                        \
    int32_t s0, s1, s2, s3;                                                                                   \
    __asm__ volatile(                                                                                         \
        "1:\n\t"                                                                                              \
        "ldr %[s3], [%[w], #" #CH "*16+32]\n\t" TRM_DSP_LDM_W                                                 \
        TRM_DSP_LDM_A TRM_DSP_SMLAD4(s0, s3) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s1, s3)                             \
        TRM_DSP_LDM_A TRM_DSP_SMLAD4(s2, s3) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s3, s3)                             \
        ".rept " #CH "-1\n\t" TRM_DSP_LDM_W                                                                   \
        TRM_DSP_LDM_A TRM_DSP_SMLAD4(s0, s0) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s1, s1)                             \
        TRM_DSP_LDM_A TRM_DSP_SMLAD4(s2, s2) TRM_DSP_LDM_A TRM_DSP_SMLAD4(s3, s3) ".endr\n\t"                 \
        "ldmia %[w], {r2, r3, r4, r5, r8, r9, r10, r11}\n\t"                                                  \
        TRM_DSP_RQ(s0, DOT_SHIFT) "strb %[s0], [r10]\n\t"                                                     \
        TRM_DSP_RQ(s1, DOT_SHIFT) "strb %[s1], [r10, r8]\n\t"                                                 \
        TRM_DSP_RQ(s2, DOT_SHIFT) "strb %[s2], [r10, r8, lsl #1]\n\t"                                         \
        TRM_DSP_RQ(s3, DOT_SHIFT) "strb %[s3], [r10, r9]\n\t"                                                 \
        "add r10, r10, r8, lsl #2\n\tstr r10, [%[w], #24]\n\t"                                                \
        "sub %[w], %[w], #" #CH "*16\n\t"                                                                     \
        "cmp %[a], r11\n\tbne 1b\n\t"                                                                         \
        : [w] "+r"(w), [a] "+r"(a), [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3)          \
        :                                                                                                     \
        : "r2", "r3", "r4", "r5", "r8", "r9", "r10", "r11", "cc", "memory");                                  \
  } while (0)
#else
/* the same blocks in C (the host tests): sums through TRM_DSP_CHUNK, requantised per token; 64-bit pointers make
 * the column words larger than their slot, so they live on the stack */
#define TRM_DSP_COLUMN_WORDS_AT(p) (&(trm_dsp_column_t){0})
#define TRM_DSP_COLUMN_ASM(CH, DOT_SHIFT, w, a, c)                                                            \
  do {                                                                                                        \
    trm_dsp_column_t *c_ = (c);                                                                               \
    trm_requant_t q_ = {c_->mult, c_->shift + 32, c_->round};                                                 \
    int8_t *o_ = c_->out;                                                                                     \
    while ((a) != c_->a_end) {                                                                                \
      int32_t acc_[4];                                                                                        \
      a = trm_block_sums(w, CH, a, 4, c_->init, acc_);                                                        \
      for (int j_ = 0; j_ < 4; j_++, o_ += c_->n_out)                                                         \
        *o_ = trm_rq_high(trm_dot_value(acc_[j_], c_->bias, DOT_SHIFT), q_);                                  \
    }                                                                                                         \
    c_->out = o_;                                                                                             \
  } while (0)
#endif

/* One output column (row o of the weights, every token) for shift >= 33: the full 4-token blocks by the column
 * loop of this CH (c: the column words, their per-call fields already set), then the 1-3 token tail through the
 * rolled loop. int8 weights start the sums at the bias; int4 sums are exact multiples of 16 (trm_dot_value). */
#define TRM_DSP_COLUMN_HIGH(CH, DOT_SHIFT, c)                                                                 \
  do {                                                                                                        \
    const uint32_t *a = act, *w = wrow;                                                                       \
    c->bias = b, c->mult = q.mult, c->round = q.round, c->shift = q.shift - 32, c->out = out + o;             \
    c->init = DOT_SHIFT ? 0 : b;                                                                              \
    if (c->a_end != act) TRM_DSP_COLUMN_ASM(CH, DOT_SHIFT, w, a, c);                                          \
    if (left) {                                                                                               \
      int32_t acc[TRM_DSP_TOKENS];                                                                            \
      if (left == 3) trm_block_sums(wrow, CH, c->a_end, 3, c->init, acc);                                     \
      if (left == 2) trm_block_sums(wrow, CH, c->a_end, 2, c->init, acc);                                     \
      if (left == 1) trm_block_sums(wrow, CH, c->a_end, 1, c->init, acc);                                     \
      for (int j = 0; j < left; j++) c->out[j * n_out] = trm_rq_high(trm_dot_value(acc[j], b, DOT_SHIFT), q); \
    }                                                                                                         \
  } while (0)

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

/* Every row: widened into scratch, then its column of outputs. N and CH are literals for the model's k lengths
 * (n_in 16, 32, 48, 64, 96 = 8*CH: the widening and the k loop unrolled, the column loop in asm when shift >= 33);
 * any other n_in takes the rolled loops (N = n_in, CH = chunks, FAST = 0). */
#define TRM_DSP_ROWS(N, CH, FAST, WIDEN_ROW, ROW_BYTES, DOT_SHIFT)                                              \
  do {                                                                                                        \
    trm_widen_activations(in, act, tokens, N, CH);                                                            \
    int left = tokens % TRM_DSP_TOKENS;                                                                       \
    trm_dsp_column_t *c = TRM_DSP_COLUMN_WORDS_AT(wrow + 4 * (CH));                                           \
    c->n_out = n_out, c->n_out3 = 3 * n_out, c->a_end = act + (size_t)(tokens - left) * 4 * (CH);             \
    for (int o = 0; o < n_out; o++) {                                                                         \
      WIDEN_ROW(w + (size_t)o * (ROW_BYTES), wrow, N, CH);                                                    \
      int32_t b = bias ? bias[o] : 0;                                                                         \
      trm_requant_t q = trm_requant_init(mult, shift, o);                                                     \
      if (FAST && q.shift >= 33)                                                                              \
        TRM_DSP_COLUMN_HIGH(CH, DOT_SHIFT, c);                                                                \
      else                                                                                                    \
        trm_column_any(wrow, act, CH, tokens, b, q, out + o, n_out, DOT_SHIFT);                               \
    }                                                                                                         \
  } while (0)
#define TRM_DSP_ROWS_CASE(CH, WIDEN_ROW, ROW_BYTES, DOT_SHIFT) \
  case CH: TRM_DSP_ROWS(8 * CH, CH, 1, WIDEN_ROW, ROW_BYTES, DOT_SHIFT); break;

/* scratch: [int16 weight row: pad16(n_in)][column words][int16 activations: tokens x pad16(n_in)] */
#define TRM_DSP_LINEAR(dtype, wtype, ROW_BYTES, WIDEN_ROW, DOT_SHIFT)                                           \
  void trm_linear_##dtype##_dsp(const int8_t *in, const wtype *w, const int32_t *bias, const int32_t *mult,     \
                                const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out,           \
                                void *scratch) {                                                              \
    int chunks = trm_pad16(n_in) / 8;                                                                         \
    uint32_t *wrow = trm_align4(scratch), *act = wrow + 4 * chunks + TRM_DSP_COLUMN_WORDS;                    \
    switch (n_in % 16 ? 0 : chunks) {                                                                         \
      TRM_DSP_ROWS_CASE(2, WIDEN_ROW, ROW_BYTES, DOT_SHIFT)                                                   \
      TRM_DSP_ROWS_CASE(4, WIDEN_ROW, ROW_BYTES, DOT_SHIFT)                                                   \
      TRM_DSP_ROWS_CASE(6, WIDEN_ROW, ROW_BYTES, DOT_SHIFT)                                                   \
      TRM_DSP_ROWS_CASE(8, WIDEN_ROW, ROW_BYTES, DOT_SHIFT)                                                   \
      TRM_DSP_ROWS_CASE(12, WIDEN_ROW, ROW_BYTES, DOT_SHIFT)                                                  \
      default: TRM_DSP_ROWS(n_in, chunks, 0, WIDEN_ROW, ROW_BYTES, DOT_SHIFT); break;                         \
    }                                                                                                         \
  }

#define TRM_WIDEN_WEIGHTS_S8(row, dst, n, chunks) trm_widen_s8_row(row, dst, n, chunks, 4)
TRM_DSP_LINEAR(s8, int8_t, n_in, TRM_WIDEN_WEIGHTS_S8, 0)
TRM_DSP_LINEAR(s4, uint8_t, (n_in + 1) / 2, trm_widen_s4_row, 4)
