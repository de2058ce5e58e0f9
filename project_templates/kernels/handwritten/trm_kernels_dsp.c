/* Hand-written linear kernels for cores with the Arm DSP extension (Cortex-M4/M7/M33): SMLAD on int16 pairs.
 *
 * The blocking (docs/kernels.md): both operands are widened to int16 pairs once into `scratch` -- all the
 * activations once per call, one weight row once per output channel -- so the inner loop is nothing but LDMs and
 * SMLADs. A chunk of the row (8 k = 4 words) stays in registers while 4 tokens stream past it; their activations
 * are interleaved per chunk so one pointer walks them all. n_in is zero-padded to a multiple of 16 in scratch, so
 * there is no k tail. For the model's k lengths a run of rows whose shift is 32 (or >= 33) -- each row widened,
 * then every 4-token block, its requantisation and stores -- is one asm statement per chunk count, generated from
 * one template; other lengths, shifts < 32 and token tails run the rolled C loop.
 * Pair order of a chunk (what SXTB16 gives for free): (k0,k2) (k1,k3) (k4,k6) (k5,k7), for both operands.
 *
 * scratch (words): [the row words: trm_dsp_rows_t][chunk CH-1] ... [chunk 0][init][int16 activations]
 * The row's chunks are stored downwards so one pointer walks them with LDMDB and is put back on the init slot by the
 * pre-indexed load of the next block's start value; the words the column loop needs sit right below the chunks.
 */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

#define TRM_DSP_TOKENS 4 /* tokens per block: 4 weight + 4 activation + 4 accumulator + 2 pointer registers */
#define TRM_DSP_ROW_WORDS 14 /* trm_dsp_rows_t on the core */

static inline int trm_pad16(int n) { return (n + 15) & ~15; }

/* the row words, one int16 row and its start value, every token's int16 activations; +3 to align */
int trm_linear_s8_dsp_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)n_out;
  return 2 * trm_pad16(n_in) * (tokens + 1) + 4 * TRM_DSP_ROW_WORDS + 4 + 3;
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

/* A row of n int8 values -> chunks of int16 pairs at dst[4c * step / 4..], zero-padded to `chunks` chunks.
 * dst_step: words from one chunk to the next (-4 for a weight row, stored downwards; 4*nb for a token inside a
 * block of nb interleaved tokens). */
TRM_INLINE void trm_widen_s8_row(const int8_t *row, uint32_t *dst, int n, int chunks, int dst_step) {
  int c = 0;
  _Pragma("GCC unroll 12") for (; 8 * c + 8 <= n; c++, row += 8, dst += dst_step) trm_widen_s8_chunk(row, dst);
  for (; c < chunks; c++, dst += dst_step) {
    uint32_t x[2];
    trm_load8_tail(row - 8 * c, c, n, x);
    trm_widen_s8(x, dst);
  }
}

/* A packed int4 row (n values, (n+1)/2 bytes) -> chunks as above (stored downwards), values times 16. */
TRM_INLINE void trm_widen_s4_row(const uint8_t *row, uint32_t *dst, int n, int chunks) {
  int bytes = (n + 1) / 2, c = 0;
  _Pragma("GCC unroll 12") for (; 4 * c + 4 <= bytes; c++, dst -= 4) trm_widen_s4(trm_read_u32(row + 4 * c), dst);
  for (; c < chunks; c++, dst -= 4) {
    uint8_t tail[4] = {0};
    if (bytes > 4 * c) memcpy(tail, row + 4 * c, (size_t)(bytes - 4 * c));
    trm_widen_s4(trm_read_u32(tail), dst);
  }
}

/* Activations of tokens [t0, tokens), token blocks interleaved per chunk: block b (tokens 4b..), chunk c, token j
 * of nb at act[(4b * chunks + c * nb + j) * 4]. */
__attribute__((noinline)) static void trm_widen_activations(const int8_t *in, uint32_t *act, int t0, int tokens,
                                                            int n_in, int chunks) {
  for (; t0 < tokens; t0 += TRM_DSP_TOKENS) {
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
    trm_ldm4_held(w, wc);                       \
    w -= 4;                                     \
    TRM_DSP_TOKEN(0)                            \
    TRM_DSP_TOKEN(1)                            \
    TRM_DSP_TOKEN(2)                            \
    TRM_DSP_TOKEN(3)                            \
  } while (0)

/* One block in C: nb tokens' sums of one row (chunk 0 at w0, the next ones below it), each accumulator starting
 * at `init` (the bias for int8 weights). The row's chunk sits in 4 registers while the tokens' chunks stream past
 * it, two chunks per turn (chunks is even). The rolled path (other k lengths, shifts < 32, token tails) and, on
 * the host, the asm column loop's twin. Returns the next block's activations. */
TRM_INLINE const uint32_t *trm_block_sums(const uint32_t *w0, int chunks, const uint32_t *a, int nb, int32_t init,
                                          int32_t *acc) {
  int32_t s0 = init, s1 = init, s2 = init, s3 = init;
  const uint32_t *w = w0, *end = w0 - 4 * chunks;
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

/* The value requantised from a raw sum: bias already inside (int8) or added to the exact sum / 16 (int4 weights
 * are widened times 16: the sums stay multiples of 16) */
TRM_INLINE int32_t trm_dot_value(int32_t s, int32_t bias, int dot_shift) { return dot_shift ? bias + (s >> dot_shift) : s; }

/* Tokens [t0, tokens) of one output column (t0 a multiple of 4), any shift: rolled blocks, requantised per token
 * through trm_requant. The rows of the other k lengths and shifts < 32, and the 1-3 token tails. */
__attribute__((noinline)) static void trm_column_any(const uint32_t *w0, const uint32_t *act, int chunks, int t0,
                                                     int tokens, int32_t bias, trm_requant_t q, int8_t *out,
                                                     int n_out, int dot_shift) {
  int32_t acc[TRM_DSP_TOKENS], init = dot_shift ? 0 : bias;
  act += (size_t)t0 * chunks * 4;
  for (int t = t0; t < tokens; t += TRM_DSP_TOKENS) {
    int nb = tokens - t < TRM_DSP_TOKENS ? tokens - t : TRM_DSP_TOKENS;
    if (nb == 4) act = trm_block_sums(w0, chunks, act, 4, init, acc);
    if (nb == 3) act = trm_block_sums(w0, chunks, act, 3, init, acc);
    if (nb == 2) act = trm_block_sums(w0, chunks, act, 2, init, acc);
    if (nb == 1) act = trm_block_sums(w0, chunks, act, 1, init, acc);
    for (int j = 0; j < nb; j++) out[(size_t)(t + j) * n_out] = trm_requant(trm_dot_value(acc[j], bias, dot_shift), q);
  }
}

/* Row o (widened first unless row is NULL: a run left it in scratch), tokens [t0, tokens), rolled: one function
 * per weight type for every k length */
#define TRM_DSP_COLUMN_ROLLED(dtype, WIDEN_ROW, DOT_SHIFT)                                                      \
  __attribute__((noinline)) static void trm_column_rolled_##dtype(                                            \
      const void *row, uint32_t *w0, const uint32_t *act, int n,                                              \
                                             int chunks, int t0, int tokens, const int32_t *bias,            \
                                             const int32_t *mult, const int32_t *shift, int o, int8_t *out,  \
                                             int n_out) {                                                    \
    if (row) WIDEN_ROW(row, w0, n, chunks);                                                                   \
    trm_column_any(w0, act, chunks, t0, tokens, bias ? bias[o] : 0, trm_requant_init(mult, shift, o), out + o,  \
                   n_out, DOT_SHIFT);                                                                         \
  }
#define TRM_WIDEN_WEIGHTS_S8(row, dst, n, chunks) trm_widen_s8_row(row, dst, n, chunks, -4)
TRM_DSP_COLUMN_ROLLED(s8, TRM_WIDEN_WEIGHTS_S8, 0)
TRM_DSP_COLUMN_ROLLED(s4, trm_widen_s4_row, 4)

/* ---- the row runs ------------------------------------------------------------------------------------------ */

/* The words right below the row's chunks in scratch. The top 8 are what every block reads (one LDMDB); the row
 * loop reads the 13 below the chunks in one LDMDB into r0-r11, lr (this order) and `reset` on its own. */
typedef struct {
  int32_t reset;              /* sh = 32: 1 - full * n_out (x to the next row); sh >= 33: full * n_out - 1 */
  const int32_t *shift_end;   /* r0: the run stops at this row's shift ... */
  const int32_t *shift;       /* r1: ... or at the first row whose shift takes another path */
  const int32_t *bias;        /* r2: next row's bias (NULL: none) */
  const int32_t *mult;        /* r3: next row's M */
  const void *w;              /* r4: next row's weights */
  int32_t mult_o;             /* r5: this row's M */
  union {
    struct {                  /* sh = 32: token j of the block at base[j][x], x += step until it carries */
      int8_t *base[4];        /* r6-r9: out + o + j * n_out + full * n_out, o the run's first row */
      int32_t step, x;        /* r10, r11: 4 * n_out; row r of the run: r - full * n_out .. r */
    } s32;
    struct {                  /* sh >= 33: token j at out[j * n_out], out += 4 * n_out up to the last full block */
      int32_t round, shift;   /* r6, r7: 2^(sh - 33), sh - 32 */
      int32_t n_out, n_out3;  /* r8, r9 */
      int8_t *out;            /* r10 */
      const uint32_t *a_end;  /* r11: activations after the last full block */
    } high;
  } c;
  int32_t bias_o;             /* lr: this row's bias (0 without) */
} trm_dsp_rows_t;

#if defined(__ARM_FEATURE_DSP)
_Static_assert(sizeof(trm_dsp_rows_t) == 4 * TRM_DSP_ROW_WORDS, "the row words: 13 for one LDMDB + reset");
#define TRM_DSP_ROWS_AT(wrow) ((trm_dsp_rows_t *)(wrow) - 1)

/* One run of rows for one CH (a literal: chunks per row), DOT_SHIFT (0 int8, 4 int4 weights) and RQ (32: the
 * rows' shift is 32, SMMULR; 33: shift >= 33, SMMLA + ASR) as one asm statement. Registers are fixed: w = r12
 * (the row's lowest chunk; the row words below it), a = lr, accumulators r0 r1 r6 r7, token chunk r2-r5, row chunk
 * r8-r11: nothing spilled. Per row (label 2): its bias and M, the output pointers, the row words back (one STMDB),
 * the row widened (LDR, SXTB16, STM; int8: the bias stored after chunk 0 as the blocks' start value). Per block
 * (label 1): LDR of the start value putting w back on it, CH x (LDMDB of the row chunk + 4 x (LDM of a token
 * chunk + 4 SMLAD)), one LDMDB of the 8 column words, 4 x (requantisation, STRB), loop. After the last block: the
 * row words, the run's end and the next row's shift checked: back to 2 or out. */
#define TRM_DSP_SMLAD4(s, a0)                                                                                 \
  "ldmia lr!, {r2, r3, r4, r5}\n\t"                                                                         \
  "smlad " s ", r8, r2, " a0 "\n\tsmlad " s ", r9, r3, " s "\n\t"                                           \
  "smlad " s ", r10, r4, " s "\n\tsmlad " s ", r11, r5, " s "\n\t"
#define TRM_DSP_CHUNK_ASM(a0, a1, a2, a3)                                                                     \
  "ldmdb r12!, {r8, r9, r10, r11}\n\t"                                                                      \
  TRM_DSP_SMLAD4("r0", a0) TRM_DSP_SMLAD4("r1", a1) TRM_DSP_SMLAD4("r6", a2) TRM_DSP_SMLAD4("r7", a3)
/* column words (one LDMDB into r2-r5, r8-r11): r2 M, r3-r5 r8-r10 as trm_dsp_rows_t.c, r11 bias */
#define TRM_DSP_VALUE_0(s) ""
#define TRM_DSP_VALUE_4(s) "add " s ", r11, " s ", asr #4\n\t"
#define TRM_DSP_RQ_32(s) "smmulr " s ", " s ", r2\n\t"
#define TRM_DSP_RQ_33(s) "smmla " s ", " s ", r2, r3\n\tasr " s ", " s ", r4\n\t"
#define TRM_DSP_OUT(s, DOT_SHIFT, RQ) TRM_DSP_VALUE_##DOT_SHIFT(s) TRM_DSP_RQ_##RQ(s) "ssat " s ", #8, " s "\n\t"
/* the 4 stores and the block loop: x counts up from r - full * n_out to r (r < 4 * n_out: the ADDS carries at the
 * last block, ending the loop) / out and a_end */
#define TRM_DSP_STORE_32                                                                                      \
  "strb r0, [r3, r10]\n\tstrb r1, [r4, r10]\n\tstrb r6, [r5, r10]\n\tstrb r7, [r8, r10]\n\t"                 \
  "adds r10, r10, r9\n\tstr r10, [r12, #-8]\n\tbcc 1b\n\t"
#define TRM_DSP_STORE_33                                                                                      \
  "strb r0, [r9]\n\tstrb r1, [r9, r5]\n\tstrb r6, [r9, r5, lsl #1]\n\tstrb r7, [r9, r8]\n\t"                 \
  "add r9, r9, r5, lsl #2\n\tstr r9, [r12, #-12]\n\tcmp lr, r10\n\tbne 1b\n\t"
/* a row's M and output pointers (row words in r0-r11, lr; r5 / r6, r7 free): sh = 32: x to the row (the
 * bases stay); sh >= 33: out back to the next row, round and shift from the shift in r7 */
#define TRM_DSP_SH_32 "r5"
#define TRM_DSP_SH_33 "r7"
#define TRM_DSP_SETUP_32 "ldr r5, [r12, #-56]\n\tadd r11, r11, r5\n\tldr r5, [r3], #4\n\t"
#define TRM_DSP_SETUP_33                                                                                      \
  "ldr r5, [r3], #4\n\tldr r6, [r12, #-56]\n\tsub r10, r10, r6\n\tsub r7, r7, #32\n\tmovs r6, #1\n\t"       \
  "lsl r6, r6, r7\n\tlsr r6, r6, #1\n\t"
/* a run's first row: sh = 32: bases 1-3 from base 0 and step = 4 * n_out */
#define TRM_DSP_ENTRY_32 "add r7, r6, r10, lsr #2\n\tadd r8, r7, r10, lsr #2\n\tadd r9, r8, r10, lsr #2"
#define TRM_DSP_ENTRY_33 ""
#define TRM_DSP_TAKE_32 "cmp r5, #32\n\tbeq 2b\n\t"
#define TRM_DSP_TAKE_33 "cmp r7, #33\n\tbge 2b\n\t"
/* int8 row (r4: past its 8*CH bytes, any alignment) -> chunks at r12 upwards from chunk CH-1, two per STM; the
 * last STM also stores lr (the bias) as the start value after chunk 0 */
#define TRM_DSP_WIDEN_PAIR_S8                                                                                 \
  "ldr r5, [r4, #(trm_c*8-trm_ch*8)]\n\tldr r7, [r4, #(trm_c*8+4-trm_ch*8)]\n\t"                             \
  "ldr r0, [r4, #(trm_c*8+8-trm_ch*8)]\n\tldr r2, [r4, #(trm_c*8+12-trm_ch*8)]\n\t"                          \
  "sxtb16 r6, r5, ror #8\n\tsxtb16 r5, r5\n\tsxtb16 r8, r7, ror #8\n\tsxtb16 r7, r7\n\t"                     \
  "sxtb16 r1, r0, ror #8\n\tsxtb16 r0, r0\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"
#define TRM_DSP_WIDEN_ROW_0                                                                                   \
  ".if trm_ch == 2\n\t.set trm_c, 0\n\t" TRM_DSP_WIDEN_PAIR_S8                                               \
  "stmia r12, {r0, r1, r2, r3, r5, r6, r7, r8, lr}\n\t"                                                     \
  ".else\n\tmov r9, r12\n\t.set trm_c, trm_ch-2\n\t.rept trm_ch/2-1\n\t" TRM_DSP_WIDEN_PAIR_S8               \
  "stmia r9!, {r0, r1, r2, r3, r5, r6, r7, r8}\n\t.set trm_c, trm_c-2\n\t.endr\n\t" TRM_DSP_WIDEN_PAIR_S8    \
  "stmia r9, {r0, r1, r2, r3, r5, r6, r7, r8, lr}\n\t.endif\n\t"
/* packed int4 row (r4: past its 4*CH bytes) -> chunks at r12 upwards, values times 16; start value stays 0 */
#define TRM_DSP_WIDEN_ROW_4                                                                                   \
  "mov r9, r12\n\t.set trm_c, trm_ch-1\n\t.rept trm_ch\n\t"                                                  \
  "ldr r0, [r4, #(trm_c*4-trm_ch*4)]\n\tlsl r1, r0, #4\n\tand r1, r1, #0xF0F0F0F0\n\t"                       \
  "and r0, r0, #0xF0F0F0F0\n\tsxtb16 r5, r1\n\tsxtb16 r6, r1, ror #8\n\tsxtb16 r7, r0\n\t"                    \
  "sxtb16 r8, r0, ror #8\n\tpkhbt r0, r5, r6, lsl #16\n\tpkhbt r1, r7, r8, lsl #16\n\t"                       \
  "pkhtb r2, r6, r5, asr #16\n\tpkhtb r3, r8, r7, asr #16\n\tstmia r9!, {r0, r1, r2, r3}\n\t"                 \
  ".set trm_c, trm_c-1\n\t.endr\n\t"
#define TRM_DSP_ROW_BYTES_0 "trm_ch*8"
#define TRM_DSP_ROW_BYTES_4 "trm_ch*4"
#define TRM_DSP_RUN(CH, DOT_SHIFT, RQ, wrow, s)                                                               \
  do {                                                                                                        \
    register uint32_t *w_ __asm__("r12") = (wrow);                                                            \
    __asm__ volatile(                                                                                         \
        ".set trm_ch, " #CH "\n\t"                                                                            \
        "ldmdb r12, {r0-r11, lr}\n\tldr " TRM_DSP_SH_##RQ ", [r1], #4\n\t" TRM_DSP_ENTRY_##RQ "\n"           \
        "2:\n\t"                                                                                              \
        "cbz r2, 4f\n\tldr lr, [r2], #4\n"                                                                    \
        "4:\n\t"                                                                                              \
        "add r4, r4, #(" TRM_DSP_ROW_BYTES_##DOT_SHIFT ")\n\t" TRM_DSP_SETUP_##RQ                             \
        "stmdb r12, {r0-r11, lr}\n\t" TRM_DSP_WIDEN_ROW_##DOT_SHIFT                                           \
        "add lr, r12, #(trm_ch*16+4)\n"                                                                       \
        "1:\n\t"                                                                                              \
        "ldr r7, [r12, #(trm_ch*16)]!\n\t" TRM_DSP_CHUNK_ASM("r7", "r7", "r7", "r7")                           \
        ".rept trm_ch-1\n\t" TRM_DSP_CHUNK_ASM("r0", "r1", "r6", "r7") ".endr\n\t"                             \
        "ldmdb r12, {r2, r3, r4, r5, r8, r9, r10, r11}\n\t"                                                   \
        TRM_DSP_OUT("r0", DOT_SHIFT, RQ) TRM_DSP_OUT("r1", DOT_SHIFT, RQ)                                     \
        TRM_DSP_OUT("r6", DOT_SHIFT, RQ) TRM_DSP_OUT("r7", DOT_SHIFT, RQ) TRM_DSP_STORE_##RQ                  \
        "ldmdb r12, {r0-r11, lr}\n\tcmp r1, r0\n\tbeq 3f\n\tldr " TRM_DSP_SH_##RQ ", [r1], #4\n\t"             \
        TRM_DSP_TAKE_##RQ                                                                                     \
        "3:\n\t"                                                                                              \
        : "+r"(w_)                                                                                            \
        :                                                                                                     \
        : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "lr", "cc", "memory");   \
    (void)(s);                                                                                                \
  } while (0)

/* Activations of the full blocks (8*CH int8 per token): per block and chunk, two tokens per turn (4 LDR,
 * 8 SXTB16, one STM of 8 words), the block's source rows at immediate offsets; the tail block in C. */
#define TRM_DSP_WIDEN_TOKENS                                                                                  \
  "ldr r0, [%[s], #(trm_j*trm_ch*8+trm_c*8)]\n\tldr r2, [%[s], #(trm_j*trm_ch*8+trm_c*8+4)]\n\t"             \
  "ldr r5, [%[s], #(trm_j*trm_ch*8+trm_ch*8+trm_c*8)]\n\tldr r8, [%[s], #(trm_j*trm_ch*8+trm_ch*8+trm_c*8+4)]\n\t" \
  "sxtb16 r1, r0, ror #8\n\tsxtb16 r0, r0\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"                     \
  "sxtb16 r6, r5, ror #8\n\tsxtb16 r5, r5\n\tsxtb16 r9, r8, ror #8\n\tsxtb16 r8, r8\n\t"                     \
  "stmia %[d]!, {r0, r1, r2, r3, r5, r6, r8, r9}\n\t"
#define TRM_DSP_WIDEN_BLOCKS trm_linear_widen_s8_dsp
#define TRM_DSP_ACTIVATIONS(CH, in, act, full)                                                                \
  do {                                                                                                        \
    const int8_t *s_ = (in), *e_ = s_ + (size_t)(full) * 8 * (CH);                                           \
    uint32_t *d_ = (act);                                                                                     \
    __asm__ volatile(".set trm_ch, " #CH "\n1:\n\t.set trm_c, 0\n\t.rept trm_ch\n\t.set trm_j, 0\n\t"         \
                     TRM_DSP_WIDEN_TOKENS ".set trm_j, 2\n\t" TRM_DSP_WIDEN_TOKENS                            \
                     ".set trm_c, trm_c+1\n\t.endr\n\tadd %[s], %[s], #(trm_ch*32)\n\tcmp %[s], %[e]\n\tbne 1b" \
                     : [s] "+r"(s_), [d] "+r"(d_)                                                             \
                     : [e] "r"(e_)                                                                            \
                     : "r0", "r1", "r2", "r3", "r5", "r6", "r8", "r9", "cc", "memory");                       \
  } while (0)
/* The same for any CH (4 tokens x n_in a multiple of 16): one pointer per token, both words of its chunk by
 * post-indexed LDR; per block and chunk 8 LDR, 16 SXTB16, 2 STM, 2 loop instructions, 10 more per block. One copy
 * for every k length and both weight types, used from n_in = 48: there the unrolled form above costs 1.5-3 KB of
 * code per k length and weight type and saves under 0.003 instruction/MAC. */
__attribute__((noinline)) static void trm_linear_widen_s8_dsp(const int8_t *in, uint32_t *act, int full, int n_in) {
  register const int8_t *end __asm__("r0") = in + (size_t)full * n_in;
  register const int8_t *p0 __asm__("r4") = in, *p1 __asm__("r10") = in + n_in;
  register const int8_t *p2 __asm__("r11") = in + 2 * n_in, *p3 __asm__("r12") = in + 3 * n_in;
  register const int8_t *chunks_end __asm__("r7") = p1;
  register uint32_t *d __asm__("lr") = act;
  __asm__ volatile(
      "push {r0}\n"
      "1:\n\t"
      "ldr r2, [r4, #4]\n\tldr r0, [r4], #8\n\tldr r8, [r10, #4]\n\tldr r5, [r10], #8\n\t"
      "sxtb16 r1, r0, ror #8\n\tsxtb16 r0, r0\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"
      "sxtb16 r6, r5, ror #8\n\tsxtb16 r5, r5\n\tsxtb16 r9, r8, ror #8\n\tsxtb16 r8, r8\n\t"
      "stmia lr!, {r0, r1, r2, r3, r5, r6, r8, r9}\n\t"
      "ldr r2, [r11, #4]\n\tldr r0, [r11], #8\n\tldr r8, [r12, #4]\n\tldr r5, [r12], #8\n\t"
      "sxtb16 r1, r0, ror #8\n\tsxtb16 r0, r0\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"
      "sxtb16 r6, r5, ror #8\n\tsxtb16 r5, r5\n\tsxtb16 r9, r8, ror #8\n\tsxtb16 r8, r8\n\t"
      "stmia lr!, {r0, r1, r2, r3, r5, r6, r8, r9}\n\t"
      "cmp r4, r7\n\tbne 1b\n\t"
      /* next block: every token pointer 3 rows on (each walked one row), its chunks end where token 1 starts */
      "sub r0, r10, r4\n\tadd r0, r0, r0, lsl #1\n\tadd r4, r4, r0\n\tadd r10, r10, r0\n\tadd r11, r11, r0\n\t"
      "add r12, r12, r0\n\tmov r7, r10\n\tldr r1, [sp]\n\tcmp r4, r1\n\tbne 1b\n\t"
      "add sp, sp, #4"
      : "+r"(end), "+r"(p0), "+r"(p1), "+r"(p2), "+r"(p3), "+r"(chunks_end), "+r"(d)
      :
      : "r1", "r2", "r3", "r5", "r6", "r8", "r9", "cc", "memory");
}
#else
/* The same runs in C (the host tests), step for step; 64-bit pointers make the row words larger than their
 * slots, so they live on the stack. */
#define TRM_DSP_ROWS_AT(wrow) (&(trm_dsp_rows_t){0})
#define TRM_DSP_TAKE_C(sh, RQ) ((RQ) == 32 ? (sh) == 32 : (sh) >= 33)
#define TRM_DSP_ENTRY_C_32(s)                                                                                 \
  for (int j_ = 1; j_ < 4; j_++) (s)->c.s32.base[j_] = (s)->c.s32.base[j_ - 1] + (s)->c.s32.step / 4
#define TRM_DSP_ENTRY_C_33(s) (void)0
#define TRM_DSP_SETUP_C_32(s, sh) (s)->c.s32.x += (s)->reset
#define TRM_DSP_SETUP_C_33(s, sh)                                                                             \
  (s)->c.high.out -= (s)->reset, (s)->c.high.shift = (sh) - 32,                                               \
  (s)->c.high.round = (int32_t)(((uint32_t)1 << (s)->c.high.shift) >> 1)
#define TRM_DSP_WIDEN_ROW_C_0(s, wrow, CH)                                                                    \
  (trm_widen_s8_row((const int8_t *)(s)->w - 8 * (CH), (wrow) + 4 * ((CH) - 1), 8 * (CH), CH, -4),           \
   (wrow)[4 * (CH)] = (uint32_t)(s)->bias_o)
#define TRM_DSP_WIDEN_ROW_C_4(s, wrow, CH)                                                                    \
  trm_widen_s4_row((const uint8_t *)(s)->w - 4 * (CH), (wrow) + 4 * ((CH) - 1), 8 * (CH), CH)
/* the 4 sums of a block requantised and stored; the loop condition */
#define TRM_DSP_BLOCK_C_32(s, acc, DOT_SHIFT)                                                                 \
  for (int j_ = 0; j_ < TRM_DSP_TOKENS; j_++)                                                                 \
    (s)->c.s32.base[j_][(s)->c.s32.x] =                                                                       \
        (int8_t)trm_ssat8(trm_smmulr(trm_dot_value(acc[j_], (s)->bias_o, DOT_SHIFT), (s)->mult_o));           \
  (s)->c.s32.x = (int32_t)((uint32_t)(s)->c.s32.x + (uint32_t)(s)->c.s32.step);                             \
  if ((uint32_t)(s)->c.s32.x < (uint32_t)(s)->c.s32.step) break /* the ADDS carried */
#define TRM_DSP_BLOCK_C_33(s, acc, DOT_SHIFT)                                                                 \
  for (int j_ = 0; j_ < TRM_DSP_TOKENS; j_++)                                                                 \
    (s)->c.high.out[j_ * (s)->c.high.n_out] = (int8_t)trm_ssat8(                                              \
        trm_smmla(trm_dot_value(acc[j_], (s)->bias_o, DOT_SHIFT), (s)->mult_o, (s)->c.high.round) >>          \
        (s)->c.high.shift);                                                                                   \
  (s)->c.high.out += 4 * (s)->c.high.n_out;                                                                   \
  if (a_ == (s)->c.high.a_end) break
#define TRM_DSP_RUN(CH, DOT_SHIFT, RQ, wrow, s)                                                               \
  do {                                                                                                        \
    int32_t sh_ = *(s)->shift++;                                                                              \
    TRM_DSP_ENTRY_C_##RQ(s);                                                                                  \
    do {                                                                                                      \
      if ((s)->bias) (s)->bias_o = *(s)->bias++;                                                              \
      (s)->mult_o = *(s)->mult++;                                                                             \
      (s)->w = (const uint8_t *)(s)->w + 8 * (CH) / (DOT_SHIFT ? 2 : 1);                                      \
      TRM_DSP_SETUP_C_##RQ(s, sh_);                                                                           \
      TRM_DSP_WIDEN_ROW_C_##DOT_SHIFT(s, wrow, CH);                                                           \
      for (const uint32_t *a_ = (wrow) + 4 * (CH) + 1;;) {                                                    \
        int32_t acc_[TRM_DSP_TOKENS];                                                                         \
        a_ = trm_block_sums((wrow) + 4 * ((CH) - 1), CH, a_, 4, (int32_t)(wrow)[4 * (CH)], acc_);             \
        TRM_DSP_BLOCK_C_##RQ(s, acc_, DOT_SHIFT);                                                             \
      }                                                                                                       \
    } while ((s)->shift != (s)->shift_end && TRM_DSP_TAKE_C(sh_ = *(s)->shift, RQ) && ((s)->shift++, 1));     \
  } while (0)
#define TRM_DSP_ACTIVATIONS(CH, in, act, full) trm_widen_activations(in, act, 0, full, 8 * (CH), CH)
#define TRM_DSP_WIDEN_BLOCKS(in, act, full, n_in) trm_widen_activations(in, act, 0, full, n_in, (n_in) / 8)
#endif

/* ---- the kernels ------------------------------------------------------------------------------------------ */

TRM_INLINE uint32_t *trm_align4(void *p) { return (uint32_t *)(((uintptr_t)p + 3) & ~(uintptr_t)3); }

/* Every row. N and CH are literals for the model's k lengths (n_in 16, 32, 48, 64, 96 = 8*CH): the activations of
 * the full blocks widened in asm, and runs of rows with shift 32 (or >= 33) through the asm row loop when there is
 * a full block -- one row per run when there is a token tail, which then goes through the rolled loop on the row
 * the run left in scratch. Any other n_in takes the rolled loops (N = n_in, CH = chunks, FAST = 0). */
#define TRM_DSP_ROWS(N, CH, FAST, dtype, ROW_BYTES, DOT_SHIFT)                                              \
  do {                                                                                                        \
    int left = tokens & (TRM_DSP_TOKENS - 1), full = FAST ? tokens - left : 0, e = full * n_out;             \
    uint32_t *w0 = wrow + 4 * ((CH) - 1), *act = wrow + 4 * (CH) + 1;                                         \
    if (full && (CH) <= 4) TRM_DSP_ACTIVATIONS(CH, in, act, full);                                            \
    if (full && (CH) > 4) TRM_DSP_WIDEN_BLOCKS(in, act, full, N);                                             \
    if (tokens != full) trm_widen_activations(in, act, full, tokens, N, CH);                                  \
    trm_dsp_rows_t *s = TRM_DSP_ROWS_AT(wrow);                                                                \
    const int32_t *end = shift + n_out;                                                                       \
    s->shift = shift, s->shift_end = end, s->bias = bias, s->mult = mult, s->w = w, s->bias_o = 0;            \
    wrow[4 * (CH)] = 0; /* the int4 rows' start value */                                                      \
    while (s->shift != end) { /* the runs advance the row pointers in s, the rolled rows here */             \
      int o = (int)(s->shift - shift);                                                                        \
      if (full && *s->shift >= 32) {                                                                          \
        if (left) s->shift_end = s->shift + 1;                                                                \
        if (*s->shift == 32) {                                                                                \
          s->reset = 1 - e, s->c.s32.x = -1, s->c.s32.base[0] = out + o + e, s->c.s32.step = 4 * n_out;      \
          TRM_DSP_RUN(CH, DOT_SHIFT, 32, wrow, s);                                                            \
        } else {                                                                                              \
          s->reset = e - 1, s->c.high.out = out + o + e - 1, s->c.high.n_out = n_out;                         \
          s->c.high.n_out3 = 3 * n_out, s->c.high.a_end = act + (size_t)full * 4 * (CH);                      \
          TRM_DSP_RUN(CH, DOT_SHIFT, 33, wrow, s);                                                            \
        }                                                                                                     \
        if (left) trm_column_rolled_##dtype(NULL, w0, act, N, CH, full, tokens, bias, mult, shift, o, out, n_out); \
      } else {                                                                                                \
        trm_column_rolled_##dtype(s->w, w0, act, N, CH, 0, tokens, bias, mult, shift, o, out, n_out);         \
        s->shift++, s->mult++, s->w = (const uint8_t *)s->w + (ROW_BYTES), s->bias += bias != NULL;          \
      }                                                                                                       \
    }                                                                                                         \
  } while (0)
#define TRM_DSP_ROWS_CASE(CH, dtype, ROW_BYTES, DOT_SHIFT)                                                    \
  case CH:                                                                                                    \
    if (!TRM_HW_UNROLLED(dtype, 8 * CH)) goto rolled; /* a length the build did not ask for */               \
    TRM_DSP_ROWS(8 * CH, CH, 1, dtype, ROW_BYTES, DOT_SHIFT);                                                 \
    break;

#define TRM_DSP_LINEAR(dtype, wtype, ROW_BYTES, DOT_SHIFT)                                                      \
  void trm_linear_##dtype##_dsp(const int8_t *in, const wtype *w, const int32_t *bias, const int32_t *mult,     \
                                const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out,           \
                                void *scratch) {                                                              \
    int chunks = trm_pad16(n_in) / 8;                                                                         \
    uint32_t *wrow = trm_align4(scratch) + TRM_DSP_ROW_WORDS;                                                 \
    switch (n_in % 16 ? 0 : chunks) {                                                                         \
      TRM_DSP_ROWS_CASE(2, dtype, ROW_BYTES, DOT_SHIFT)                                                       \
      TRM_DSP_ROWS_CASE(4, dtype, ROW_BYTES, DOT_SHIFT)                                                       \
      TRM_DSP_ROWS_CASE(6, dtype, ROW_BYTES, DOT_SHIFT)                                                       \
      TRM_DSP_ROWS_CASE(8, dtype, ROW_BYTES, DOT_SHIFT)                                                       \
      TRM_DSP_ROWS_CASE(12, dtype, ROW_BYTES, DOT_SHIFT)                                                      \
      default: rolled: TRM_DSP_ROWS(n_in, chunks, 0, dtype, ROW_BYTES, DOT_SHIFT); break;                     \
    }                                                                                                         \
  }

TRM_DSP_LINEAR(s8, int8_t, n_in, 0)
TRM_DSP_LINEAR(s4, uint8_t, (n_in + 1) / 2, 4)
