/* Hand-written kernels for Helium (MVE, Cortex-M55): linear layers by VMLADAVA (16 int8 products per instruction)
 * and the element-wise ops (add, mul, LUT, RMSNorm) on vector lanes.
 *
 * Linear (docs/kernels.md), three paths, all requantising 4 lanes at once by VQDMULH / VRSHL / VQSHL / VSHR
 * (trm_mve_rq_narrow, exact for shifts 32..62; other shifts scalar, trm_requant.h):
 * - the model's k lengths (n_in 16..96, multiples of 16): a register tile of 4 tokens x 2 channels, one asm loop
 *   per k length over every block and channel pair (2 weight + 4 activation loads and 8 VMLADAVA per 16 k; packed
 *   int4 rows unpacked once per pair into scratch);
 * - n_in = 16: the rows of 4 channels held in vector registers while token pairs stream past;
 * - the rest (token tails, odd channels, other lengths): one row chunk in a register while 4 tokens stream past
 *   it, VCTP-predicated last chunk, the row's sums in scratch and a vector loop requantising them into the column.
 */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

#define TRM_MVE_TOKENS 4 /* tokens per block */

static inline int trm_pad4(int n) { return (n + 3) & ~3; }

/* the int32 sums of one row (the rolled code), padded to whole vectors; +3 to align */
int trm_linear_s8_mve_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)n_in, (void)n_out;
  return 4 * trm_pad4(tokens) + 3;
}
/* the same region holds, at other times, the 4 x 2 tile's two unpacked int4 rows (n_in = 16..96) */
int trm_linear_s4_mve_scratch_bytes(int tokens, int n_in, int n_out) {
  int rows = n_in % 16 == 0 && n_in <= 96 ? 2 * n_in : 0, sums = 4 * trm_pad4(tokens);
  (void)n_out;
  return (rows > sums ? rows : sums) + 3;
}

/* The next 16 weights of a row, pointer advanced: int8 (16 bytes) or packed int4 (8 bytes, unpacked to 16 int8
 * lanes in element order: lane 2i = low nibble of byte i, lane 2i+1 = its high nibble). In the tail chunk only
 * the row's remaining `left` elements are read; the other lanes are 0. */
TRM_INLINE int8x16_t trm_mve_weights(const uint8_t **w, int packed_s4, int tail, int left) {
  int8x16_t x;
  if (packed_s4) {
    int bytes = (left + 1) / 2;
    uint16x8_t b = tail ? vldrbq_z_u16(*w, vctp16q((uint32_t)bytes)) : vldrbq_u16(*w); /* byte i in lane i */
    x = vreinterpretq_s8_u16(vshlq_n_u16(b, 4));                      /* even lane: lo<<4, odd lane: hi */
    x = vshlq_s8(x, vreinterpretq_s8_u16(vdupq_n_u16(0x0400)));       /* odd lanes << 4 */
    x = vshrq_n_s8(x, 4);                                             /* both sign-extended nibbles */
    *w += 8;
  } else {
    x = tail ? vldrbq_z_s8((const int8_t *)*w, vctp8q((uint32_t)left)) : vldrbq_s8((const int8_t *)*w);
    *w += 16;
  }
  return x;
}

/* the next 16 activations of one token (predicated in the tail chunk), pointer advanced */
TRM_INLINE int8x16_t trm_mve_act(const int8_t **a, int tail, int left) {
  int8x16_t x = tail ? vldrbq_z_s8(*a, vctp8q((uint32_t)left)) : vldrbq_s8(*a);
  *a += 16;
  return x;
}

/* s_j += chunk . the next 16 activations of token j, for NB tokens */
#define TRM_MVE_CHUNK(TAIL, LEFT)                                                     \
  do {                                                                                \
    int8x16_t w = trm_mve_weights(&wp, packed_s4, TAIL, LEFT);                        \
    s0 = vmladavaq_s8(s0, trm_mve_act(&a0, TAIL, LEFT), w);                           \
    if (nb > 1) s1 = vmladavaq_s8(s1, trm_mve_act(&a1, TAIL, LEFT), w);               \
    if (nb > 2) s2 = vmladavaq_s8(s2, trm_mve_act(&a2, TAIL, LEFT), w);               \
    if (nb > 3) s3 = vmladavaq_s8(s3, trm_mve_act(&a3, TAIL, LEFT), w);               \
  } while (0)

/* acc[0..NB) = the row's sums for NB tokens starting at a. NB, packed_s4 and has_tail (n_in % 16 != 0) are
 * constants after inlining, so each specialisation carries only its own code. */
TRM_INLINE void trm_mve_block_sums(const void *row, int packed_s4, int has_tail, const int8_t *a, int n_in, int nb,
                                   int32_t *acc) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const uint8_t *wp = (const uint8_t *)row;
  const int8_t *a0 = a, *a1 = a0 + n_in, *a2 = a1 + n_in, *a3 = a2 + n_in;
  for (int k = 0; k + 16 <= n_in; k += 16) TRM_MVE_CHUNK(0, 16);
  if (has_tail) TRM_MVE_CHUNK(1, n_in % 16);
  acc[0] = s0;
  if (nb > 1) acc[1] = s1;
  if (nb > 2) acc[2] = s2;
  if (nb > 3) acc[3] = s3;
}

/* acc[t] = the row's sum for every token t, 4 tokens per block and a 1-3 token tail */
TRM_INLINE void trm_mve_row_sums(const void *row, int packed_s4, int has_tail, const int8_t *in, int tokens,
                                 int n_in, int32_t *acc) {
  int t0 = 0;
  for (; t0 + TRM_MVE_TOKENS <= tokens; t0 += TRM_MVE_TOKENS)
    trm_mve_block_sums(row, packed_s4, has_tail, in + (size_t)t0 * n_in, n_in, TRM_MVE_TOKENS, acc + t0);
  const int8_t *a = in + (size_t)t0 * n_in;
  switch (tokens - t0) {
    case 3: trm_mve_block_sums(row, packed_s4, has_tail, a, n_in, 3, acc + t0); break;
    case 2: trm_mve_block_sums(row, packed_s4, has_tail, a, n_in, 2, acc + t0); break;
    case 1: trm_mve_block_sums(row, packed_s4, has_tail, a, n_in, 1, acc + t0); break;
    default: break;
  }
}

/* sat8(rq(v, M, sh)) on 4 lanes for sh in 32..62 and M != INT32_MIN (trm_mve_rq_ok), nshift = 31 - sh: VQDMULH
 * by M (floor(v*M / 2^31); saturates only for INT32_MIN * INT32_MIN), VRSHL by 31 - sh (round half up at bit sh:
 * exact, the floors compose), then sat8 without clamp vectors: VQSHL #24 puts rq in the top byte, saturating
 * exactly when it leaves int8, and VSHR #24 brings it back sign-extended. */
TRM_INLINE int32x4_t trm_mve_rq_narrow(int32x4_t v, int32_t mult, int32_t nshift) {
  return vshrq_n_s32(vqshlq_n_s32(vrshlq_n_s32(vqdmulhq_n_s32(v, mult), nshift), 24), 24);
}

/* every channel of [0, n) can take trm_mve_rq_narrow (one pass of VMINV/VMAXV) */
TRM_INLINE int trm_mve_rq_ok(const int32_t *mult, const int32_t *shift, int n) {
  int32_t lo = INT32_MAX, hi = INT32_MIN, m = INT32_MAX;
  int o = 0;
  for (; o + 4 <= n; o += 4) {
    int32x4_t s = vldrwq_s32(shift + o);
    lo = vminvq_s32(lo, s), hi = vmaxvq_s32(hi, s), m = vminvq_s32(m, vldrwq_s32(mult + o));
  }
  for (; o < n; o++) {
    lo = shift[o] < lo ? shift[o] : lo, hi = shift[o] > hi ? shift[o] : hi;
    m = mult[o] < m ? mult[o] : m;
  }
  return lo >= 32 && hi <= 62 && m != INT32_MIN;
}

/* out[t*n_out] = sat8(rq(bias + acc[t])) for channel o: 4 tokens per vector scattered into the column (the last
 * vector predicated), other shifts scalar (trm_requant.h) */
TRM_INLINE void trm_mve_requant_column(const int32_t *acc, int32_t bias, const int32_t *mult, const int32_t *shift,
                                       int o, int8_t *out, int tokens, int n_out) {
  if (!trm_mve_rq_ok(mult + o, shift + o, 1)) {
    trm_requant_t q = trm_requant_init(mult, shift, o);
    for (int t = 0; t < tokens; t++) out[(size_t)t * n_out] = trm_requant(bias + acc[t], q);
    return;
  }
  uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)n_out);
  int32_t m = mult[o], ns = 31 - shift[o];
  int t = 0;
  for (; t + 4 <= tokens; t += 4, out += 4 * n_out)
    vstrbq_scatter_offset_s32(out, offsets, trm_mve_rq_narrow(vaddq_n_s32(vldrwq_s32(acc + t), bias), m, ns));
  if (t < tokens)
    vstrbq_scatter_offset_p_s32(out, offsets, trm_mve_rq_narrow(vaddq_n_s32(vldrwq_s32(acc + t), bias), m, ns),
                                vctp32q((uint32_t)(tokens - t)));
}

/* ---- the 4 x 2 register tile: n_in = 16*CH, CH 1..6 (the model's k lengths) ----------------------------------
 * Channels o, o+1 x blocks of 4 tokens: per 16-k chunk 2 weight loads, 4 activation loads, 8 VMLADAVA (each
 * activation vector serves both channels, each weight vector 4 tokens); the chunk loop is unrolled, the 8 sums
 * sit in the 8 even registers VMLADAVA accepts (r0-r12, lr). Requantisation of 4 tokens of a channel: the sums
 * out by one STM and VLD20/VLD21 (the two-lane VMOV put lanes wrong in a few blocks on QEMU 7.2), VADD bias, then
 * trm_mve_rq_narrow and one VSTRB scatter into the column. Packed int4 rows are unpacked to int8 once per channel
 * pair into a 2-row buffer in scratch; the blocks then run the int8 code. */
typedef struct {
  /* the pair's words: one LDMDB into r0, r2, ..., r12, lr once the sums have left them */
  int32_t bias0, bias1, mult0, mult1, nshift0, nshift1; /* nshift = 31 - sh, VRSHL's count */
  int32_t out_step;                                     /* 4 * n_out */
  const int8_t *pb_end;                                 /* pb after the last block */
  int32_t sums[8]; /* the 8 sums, token-major: one STM, then VLD20/VLD21 de-interleave the 2 channels */
  /* the pair loop (the asm's p points at sums; these at p + 32..) */
  const int32_t *bias;   /* the next pair's biases (2 zeros without bias) */
  int32_t bias_step;     /* 8, or 0 without bias */
  const int32_t *mult, *shift;
  int32_t out_next;      /* out after a pair's last block -> the next pair's column */
  const int8_t *pb_start;
  const int8_t *out_end; /* out after the last pair */
  const uint8_t *src;    /* int4: the next pair's packed rows */
} trm_mve_tile_t;

/* 4 sums of one channel -> 4 output bytes of its column */
TRM_INLINE void trm_mve_rq_column4(int32x4_t v, int32_t bias, int32_t mult, int32_t nshift, int8_t *out,
                                   uint32x4_t offsets) {
  vstrbq_scatter_offset_s32(out, offsets, trm_mve_rq_narrow(vaddq_n_s32(v, bias), mult, nshift));
}

TRM_INLINE int32x4_t trm_mve_vec4(int32_t a, int32_t b, int32_t c, int32_t d) {
  return vsetq_lane_s32(d, vsetq_lane_s32(c, vsetq_lane_s32(b, vdupq_n_s32(a), 1), 2), 3);
}

/* The pair loop in plain C: on the host the asm's twin (same steps, the instructions emulated). pa points at
 * token 1 of the first block, pb at token 3 (the asm's base registers), w at the first pair's rows (int4: at the
 * row buffer, where each pair's packed rows t->src are unpacked first). */
TRM_INLINE void trm_mve_tile_c(const int8_t *pa, const int8_t *pb, const uint8_t *w, int packed_s4, int ch,
                               trm_mve_tile_t *t, int8_t *out, uint32x4_t offsets) {
  int n_in = 16 * ch;
  do {
    t->bias0 = t->bias[0], t->bias1 = t->bias[1], t->bias += t->bias_step / 4;
    t->mult0 = t->mult[0], t->mult1 = t->mult[1], t->mult += 2;
    t->nshift0 = 31 - t->shift[0], t->nshift1 = 31 - t->shift[1], t->shift += 2;
    for (int c = 0; c < 2 * ch && packed_s4; c++) vstrbq_s8((int8_t *)w + 16 * c, trm_mve_weights(&t->src, 1, 0, 16));
    do {
      int32_t s[8] = {0};
      for (int j = 0; j < ch; j++) {
        int8x16_t w0 = vldrbq_s8((const int8_t *)w + 16 * j), w1 = vldrbq_s8((const int8_t *)w + n_in + 16 * j);
        const int8_t *a[4] = {pa - n_in, pa, pb - n_in, pb};
        for (int k = 0; k < 4; k++) {
          int8x16_t x = vldrbq_s8(a[k] + 16 * j);
          s[2 * k] = vmladavaq_s8(s[2 * k], x, w0);
          s[2 * k + 1] = vmladavaq_s8(s[2 * k + 1], x, w1);
        }
      }
      trm_mve_rq_column4(trm_mve_vec4(s[0], s[2], s[4], s[6]), t->bias0, t->mult0, t->nshift0, out, offsets);
      trm_mve_rq_column4(trm_mve_vec4(s[1], s[3], s[5], s[7]), t->bias1, t->mult1, t->nshift1, out + 1, offsets);
      out += t->out_step, pa += 4 * n_in, pb += 4 * n_in;
    } while (pb != t->pb_end);
    out += t->out_next, pb = t->pb_start, pa = pb - 2 * n_in, w += packed_s4 ? 0 : 2 * n_in;
  } while (out != t->out_end);
}

#if defined(__ARM_FEATURE_MVE)
/* The same as one asm statement per (CH, int4), generated from one template, nothing spilled: q0/q1 the weight
 * chunks (then the two sum vectors), q2/q3 activations, q5 the int4 lane shifts, the column offsets in two more;
 * r0-r12/lr even the sums (then the pair's words), pa/pb/w/out/p odd. Per pair (label 2) its biases, multipliers
 * and shifts are copied from the arrays to the words before the sums (LDRD/STRD, 13 instructions) and int4 rows
 * unpacked into the row buffer (5 instructions per 16 weights: the blocks then load int8 like the int8 kernel);
 * per block (label 1) the chunks, the requantisation and the loop. Weight offsets are immediates (+-127 bytes:
 * the row pointer is biased by `wbias` for CH > 4); activations stream with writeback: token 0/2 at
 * [pa/pb, #-n_in], token 1/3 at [pa/pb], #16. */
#define TRM_MVE_SETUP_S8 ""
#define TRM_MVE_SETUP_S4 "vmov.i16 q5, #0x0400\n\t"
/* 8 packed bytes -> 16 int8 lanes in element order (lane 2i = low nibble of byte i): widening load, 16-bit shift,
 * per-lane 8-bit shift (q5), arithmetic shift */
#define TRM_MVE_UNPACK16(Q, SRC) \
  "vldrb.u16 " Q ", " SRC "\n\tvshl.i16 " Q ", " Q ", #4\n\tvshl.s8 " Q ", " Q ", q5\n\tvshr.s8 " Q ", " Q ", #4\n\t"
#define TRM_MVE_UNPACK_ROWS_S8(CH) ""
#define TRM_MVE_UNPACK_ROWS_S4(CH)                                                                               \
  "ldr r0, [%[p], #60]\n\tsub r2, %[w], #%c[wbias]\n\t"                                                          \
  TRM_MVE_REPX(CH, TRM_MVE_UNPACK16("q0", "[r0], #8") "vstrb.8 q0, [r2], #16\n\t"                                \
                   TRM_MVE_UNPACK16("q0", "[r0], #8") "vstrb.8 q0, [r2], #16\n\t") "str r0, [%[p], #60]\n\t"
#define TRM_MVE_NEXT_ROWS_S8 "add %[w], %[w], #2*%c[n]\n\t"
#define TRM_MVE_NEXT_ROWS_S4 ""
/* the activation pointers' writeback: 16, in the last chunk 16 + 3*n_in (the next block) when that fits +-127 */
#define TRM_MVE_TILE_CHUNK(OP)                                                                                   \
  ".set trm_wb, 16\n\t.if trm_j == %c[n] / 16 - 1 && %c[n] * 3 + 16 <= 127\n\t"                                 \
  ".set trm_wb, %c[n] * 3 + 16\n\t.endif\n\t"                                                                  \
  "vldrb.8 q0, [%[w], #(trm_j*16 + %c[n] - %c[wbias])]\n\tvldrb.8 q1, [%[w], #(trm_j*16 - %c[wbias])]\n\t"       \
  "vldrb.8 q2, [%[pa], #-%c[n]]\n\t" OP " r0, q2, q1\n\t" OP " r2, q2, q0\n\t"                                 \
  "vldrb.8 q3, [%[pa]], #trm_wb\n\t" OP " r4, q3, q1\n\t" OP " r6, q3, q0\n\t"                                \
  "vldrb.8 q2, [%[pb], #-%c[n]]\n\t" OP " r8, q2, q1\n\t" OP " r10, q2, q0\n\t"                                \
  "vldrb.8 q3, [%[pb]], #trm_wb\n\t" OP " r12, q3, q1\n\t" OP " lr, q3, q0\n\t.set trm_j, trm_j + 1\n\t"
#define TRM_MVE_RQ_ASM(Q, B, M, S, OFFS)                                                                         \
  "vadd.i32 " Q ", " Q ", " B "\n\tvqdmulh.s32 " Q ", " Q ", " M "\n\tvrshl.s32 " Q ", " S "\n\t"                 \
  "vqshl.s32 " Q ", " Q ", #24\n\tvshr.s32 " Q ", " Q ", #24\n\tvstrb.32 " Q ", [%[out], %q[" OFFS "]]\n\t"
/* X written CH - 1 times (REP) or CH times (REPX), not .rept: GCC sizes an asm statement by its lines, for the
 * literal pools */
#define TRM_MVE_REP_1(X)
#define TRM_MVE_REP_2(X) X
#define TRM_MVE_REP_3(X) X X
#define TRM_MVE_REP_4(X) X X X
#define TRM_MVE_REP_5(X) X X X X
#define TRM_MVE_REP_6(X) X X X X X
#define TRM_MVE_REPX(CH, X) X TRM_MVE_REP_##CH(X)
#define TRM_MVE_TILE_ASM(CH, DT)                                                                                 \
  __asm__ volatile(                                                                                              \
      TRM_MVE_SETUP_##DT "2:\n\t"                                                                                \
      "ldrd r0, r2, [%[p], #32]\n\tldrd r4, r6, [r0]\n\tadd r0, r0, r2\n\tstr r0, [%[p], #32]\n\t"              \
      "strd r4, r6, [%[p], #-32]\n\tldrd r0, r2, [%[p], #40]\n\tldrd r4, r6, [r0], #8\n\t"                       \
      "ldrd r8, r10, [r2], #8\n\tstrd r0, r2, [%[p], #40]\n\trsb r8, r8, #31\n\trsb r10, r10, #31\n\t"           \
      "strd r4, r6, [%[p], #-24]\n\tstrd r8, r10, [%[p], #-16]\n\t" TRM_MVE_UNPACK_ROWS_##DT(CH)                 \
      "1:\n\t.set trm_j, 0\n\t" TRM_MVE_TILE_CHUNK("vmladav.s8")                                                 \
      TRM_MVE_REP_##CH(TRM_MVE_TILE_CHUNK("vmladava.s8"))                                                        \
      "stm %[p], {r0, r2, r4, r6, r8, r10, r12, lr}\n\tvld20.32 {q0, q1}, [%[p]]\n\tvld21.32 {q0, q1}, [%[p]]\n\t" \
      "ldmdb %[p], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"                                                       \
      TRM_MVE_RQ_ASM("q0", "r0", "r4", "r8", "o0") TRM_MVE_RQ_ASM("q1", "r2", "r6", "r10", "o1")                 \
      "add %[out], %[out], r12\n\t.if %c[n] * 3 + 16 > 127\n\tadd %[pa], %[pa], #3*%c[n]\n\t"                   \
      "add %[pb], %[pb], #3*%c[n]\n\t.endif\n\t"                                                                \
      "cmp %[pb], lr\n\tbne 1b\n\t"                                                                              \
      "ldrd r0, r2, [%[p], #48]\n\tadd %[out], %[out], r0\n\tmov %[pb], r2\n\tsub %[pa], r2, #2*%c[n]\n\t"       \
      TRM_MVE_NEXT_ROWS_##DT "ldr r0, [%[p], #56]\n\tcmp %[out], r0\n\tbne 2b\n\t"                               \
      : [pa] "+r"(pa), [pb] "+r"(pb), [out] "+r"(po), [w] "+r"(wb)                                               \
      : [p] "r"(t.sums), [o0] "w"(offsets), [o1] "w"(offsets1), [n] "i"(16 * (CH)), [wbias] "i"(TRM_MVE_WBIAS(CH)) \
      : "r0", "r2", "r4", "r6", "r8", "r10", "r12", "lr", "q0", "q1", "q2", "q3", "q5", "memory", "cc")
#define TRM_MVE_TILE_CASE(CH)          \
  case CH:                             \
    if (packed_s4)                     \
      TRM_MVE_TILE_ASM(CH, S4);        \
    else                               \
      TRM_MVE_TILE_ASM(CH, S8);        \
    break;
#endif
/* the s8 row-pair pointer's bias: every weight offset within +-127 bytes */
#define TRM_MVE_WBIAS(CH) ((CH) > 4 ? 16 * ((CH) - 1) : 0)

/* Tokens [0, 4*blocks) of the channel pairs [o0, o1), every channel able to take the tile (trm_mve_rq_ok);
 * int4 rows are unpacked pair by pair into `buf` (2 * n_in bytes) */
TRM_INLINE void trm_mve_tile(const int8_t *in, const uint8_t *w, int packed_s4, int ch, const int32_t *bias,
                             const int32_t *mult, const int32_t *shift, int8_t *out, int n_out, int blocks, int o0,
                             int o1, int8_t *buf) {
  static const int32_t no_bias[2] = {0, 0};
  int n_in = 16 * ch;
  const int8_t *pa = in + n_in, *pb = in + 3 * n_in; /* tokens 1 and 3 of the first block */
  const uint8_t *wb = packed_s4 ? (const uint8_t *)buf : w + (size_t)o0 * n_in;
  int8_t *po = out + o0;
  trm_mve_tile_t t; /* the pair's words and the sums are written before they are read */
  t.out_step = 4 * n_out, t.pb_end = pb + (size_t)blocks * 4 * n_in, t.bias = bias ? bias + o0 : no_bias;
  t.bias_step = bias ? 8 : 0, t.mult = mult + o0, t.shift = shift + o0, t.out_next = 2 - blocks * 4 * n_out;
  t.pb_start = pb, t.out_end = po + (o1 - o0), t.src = w + (size_t)o0 * 8 * ch;
  uint32x4_t offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)n_out);
#if defined(__ARM_FEATURE_MVE)
  uint32x4_t offsets1 = vaddq_n_u32(offsets, 1);
  wb += TRM_MVE_WBIAS(ch);
  switch (ch) { /* a constant here: one case survives */
    TRM_MVE_TILE_CASE(1)
    TRM_MVE_TILE_CASE(2)
    TRM_MVE_TILE_CASE(3)
    TRM_MVE_TILE_CASE(4)
    TRM_MVE_TILE_CASE(5)
    TRM_MVE_TILE_CASE(6)
    default: break;
  }
#else
  trm_mve_tile_c(pa, pb, wb, packed_s4, ch, &t, po, offsets);
#endif
}

/* ---- n_in = 16: 4 channels' weights stay in registers, tokens stream past them ------------------------------
 * One 16-k chunk per row: the 4 rows of a channel group sit in q0-q3 (int4 unpacked once per group) with the
 * group's biases, multipliers and 31 - sh as vectors in q5-q7; per 2 tokens: 2 activation loads, 8 VMLADAVA, one
 * STM of the 8 sums, and per token one VLDRW of its 4 sums (channel order), the per-lane requantisation of the tile
 * (VADD, VQDMULH, VRSHL by vectors; VQSHL #24, VSHR #24) and one contiguous 4-byte VSTRB: 29 instructions per 8
 * outputs, no per-block pair words and no scatter (the 4 x 2 tile needs 33 + its pair loop at n_in = 16). */
typedef struct {
  int32_t sums[8];                              /* 2 tokens x 4 channels, token-major */
  const uint8_t *w;                             /* the group's 4 rows */
  const int32_t *bias, *mult, *shift;           /* the group's 4 (bias: 4 zeros without bias) */
} trm_mve_quad_t;

/* Tokens [0, pairs*2) of channels o..o+3, all in 32..62 (trm_mve_rq_ok); a = in, out at the group's column */
TRM_INLINE void trm_mve_quad_c(const int8_t *a, const int8_t *a_end, int packed_s4, const trm_mve_quad_t *q,
                               int8_t *out, int n_out) {
  int8x16_t w[4];
  const uint8_t *row = q->w;
  for (int j = 0; j < 4; j++) w[j] = trm_mve_weights(&row, packed_s4, 0, 16);
  int32x4_t b = vldrwq_s32(q->bias), m = vldrwq_s32(q->mult), ns = vsubq_s32(vdupq_n_s32(31), vldrwq_s32(q->shift));
  for (; a != a_end; a += 16, out += n_out) {
    int8x16_t x = vldrbq_s8(a);
    int32x4_t v = trm_mve_vec4(vmladavq_s8(x, w[0]), vmladavq_s8(x, w[1]), vmladavq_s8(x, w[2]), vmladavq_s8(x, w[3]));
    v = vrshlq_s32(vqdmulhq_s32(vaddq_s32(v, b), m), ns);
    vstrbq_s32(out, vshrq_n_s32(vqshlq_n_s32(v, 24), 24));
  }
}

#if defined(__ARM_FEATURE_MVE)
#define TRM_MVE_QW_S8(K) "vldrb.8 q" #K ", [r0, #" #K "*16]\n\t"
#define TRM_MVE_QW_S4(K) TRM_MVE_UNPACK16("q" #K, "[r0, #" #K "*8]")
#define TRM_MVE_QUAD_RQ(OFF)                                                                                 \
  "vldrw.32 q4, [%[p], #" OFF "]\n\tvadd.i32 q4, q4, q5\n\tvqdmulh.s32 q4, q4, q6\n\t"                           \
  "vrshl.s32 q4, q4, q7\n\tvqshl.s32 q4, q4, #24\n\tvshr.s32 q4, q4, #24\n\tvstrb.32 q4, [%[out]]\n\t"            \
  "add %[out], %[out], %[n_out]\n\t"
#define TRM_MVE_QMAC(A, B, C, D) \
  "vldrb.8 q4, [%[a]], #16\n\tvmladav.s8 " A ", q4, q0\n\tvmladav.s8 " B ", q4, q1\n\tvmladav.s8 " C ", q4, q2\n\t" \
  "vmladav.s8 " D ", q4, q3\n\t"
#define TRM_MVE_QUAD_ASM(DT)                                                                                     \
  __asm__ volatile(                                                                                              \
      "ldrd r0, r2, [%[p], #32]\n\tldrd r4, r6, [%[p], #40]\n\t" TRM_MVE_SETUP_##DT                          \
      TRM_MVE_QW_##DT(0) TRM_MVE_QW_##DT(1) TRM_MVE_QW_##DT(2) TRM_MVE_QW_##DT(3)                                \
      "vldrw.32 q5, [r2]\n\tvldrw.32 q6, [r4]\n\tvldrw.32 q7, [r6]\n\tvmov.i32 q4, #31\n\tvsub.i32 q7, q4, q7\n\t" \
      "1:\n\t" TRM_MVE_QMAC("r0", "r2", "r4", "r6") TRM_MVE_QMAC("r8", "r10", "r12", "lr")                       \
      "stm %[p], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t" TRM_MVE_QUAD_RQ("0") TRM_MVE_QUAD_RQ("16")      \
      "cmp %[a], %[a_end]\n\tbne 1b\n\t"                                                                         \
      : [a] "+r"(a), [out] "+r"(po)                                                                              \
      : [p] "r"(q.sums), [a_end] "r"(a_end), [n_out] "r"(n_out)                                                  \
      : "r0", "r2", "r4", "r6", "r8", "r10", "r12", "lr", "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7",        \
        "memory", "cc")
#endif

/* channels [0, quads) (a multiple of 4, every shift in 32..62) x tokens [0, pairs*2) at n_in = 16 */
TRM_INLINE void trm_mve_quads(const int8_t *in, const uint8_t *w, int packed_s4, const int32_t *bias,
                              const int32_t *mult, const int32_t *shift, int8_t *out, int pairs, int n_out,
                              int quads) {
  static const int32_t no_bias[4] = {0, 0, 0, 0};
  const int8_t *a_end = in + (size_t)pairs * 32;
  for (int o = 0; o < quads; o += 4) {
    trm_mve_quad_t q; /* the sums are written before they are read */
    q.w = w + (size_t)o * (packed_s4 ? 8 : 16), q.bias = bias ? bias + o : no_bias, q.mult = mult + o;
    q.shift = shift + o;
    const int8_t *a = in;
    int8_t *po = out + o;
#if defined(__ARM_FEATURE_MVE)
    if (packed_s4)
      TRM_MVE_QUAD_ASM(S4);
    else
      TRM_MVE_QUAD_ASM(S8);
#else
    trm_mve_quad_c(a, a_end, packed_s4, &q, po, n_out);
#endif
  }
}

/* Channel o by the rolled code (4-token blocks of one row chunk, sums in scratch, then a requantisation loop),
 * tokens [t0, t1). Not inlined (one copy, not one per k length); named trm_linear_* so a profile counts it as
 * linear (the tile itself is inlined into trm_linear_s8/s4_mve). */
__attribute__((noinline)) static void trm_linear_mve_column(const int8_t *in, const uint8_t *row, int packed_s4,
                                                            const int32_t *bias, const int32_t *mult,
                                                            const int32_t *shift, int o, int8_t *out, int t0, int t1,
                                                            int n_in, int n_out, int32_t *acc) {
  if (t1 <= t0) return;
  in += (size_t)t0 * n_in;
  out += (size_t)t0 * n_out + o;
  if (n_in % 16)
    trm_mve_row_sums(row, packed_s4, 1, in, t1 - t0, n_in, acc);
  else
    trm_mve_row_sums(row, packed_s4, 0, in, t1 - t0, n_in, acc);
  trm_mve_requant_column(acc, bias ? bias[o] : 0, mult, shift, o, out, t1 - t0, n_out);
}

/* the build's unrolled instances (TRM_HW_UNROLLED); packed_s4 is a constant after inlining */
TRM_INLINE int trm_mve_unrolled(int packed_s4, int n_in) {
  return packed_s4 ? TRM_HW_UNROLLED(s4, n_in) : TRM_HW_UNROLLED(s8, n_in);
}

/* Tokens [0, 4*blocks) of every channel pair, n_in = 16*ch (ch a literal after inlining): the tile over runs
 * of pairs whose channels all allow it (every pair, normally: one vector check), the rolled code for the others */
TRM_INLINE void trm_mve_pairs(const int8_t *in, const uint8_t *w, int packed_s4, int ch, const int32_t *bias,
                              const int32_t *mult, const int32_t *shift, int8_t *out, int n_out, int paired,
                              int blocks, int32_t *acc) {
  int n_in = 16 * ch, row = packed_s4 ? 8 * ch : n_in;
  int all = trm_mve_rq_ok(mult, shift, paired);
  for (int o = 0; o < paired;) {
    int end = all ? paired : o;
    while (end < paired && trm_mve_rq_ok(mult + end, shift + end, 2)) end += 2;
    if (end > o) {
      trm_mve_tile(in, w, packed_s4, ch, bias, mult, shift, out, n_out, blocks, o, end, (int8_t *)acc);
      o = end;
      continue;
    }
    for (int j = 0; j < 2; j++, o++)
      trm_linear_mve_column(in, w + (size_t)o * row, packed_s4, bias, mult, shift, o, out, 0, 4 * blocks, n_in,
                            n_out, acc);
  }
}

#define TRM_MVE_PAIRS_CASE(CH)                                                                             \
  case CH:                                                                                                 \
    if (!trm_mve_unrolled(packed_s4, 16 * CH)) blocks = 0; /* a length the build did not ask for: rolled */ \
    else trm_mve_pairs(in, w, packed_s4, CH, bias, mult, shift, out, n_out, paired, blocks, acc);          \
    break;

/* n_ch channels (of a row of n_out outputs) from w, bias, mult, shift, out: the 4 x 2 tile over the 4-token
 * blocks of n_in = 16..96 (multiples of 16), the rolled code for the rest (token tail, odd last channel, other
 * lengths) */
TRM_INLINE void trm_mve_channels(const int8_t *in, const uint8_t *w, int packed_s4, const int32_t *bias,
                                 const int32_t *mult, const int32_t *shift, int8_t *out, int tokens, int n_in,
                                 int n_out, int n_ch, int32_t *acc) {
  size_t row_bytes = packed_s4 ? (size_t)(n_in + 1) / 2 : (size_t)n_in;
  int blocks = tokens / 4, paired = n_ch & ~1, t0 = 0;
  if (n_in % 16 == 0 && n_in >= 16 && n_in <= 96 && blocks > 0 && paired > 0) {
    switch (n_in / 16) {
      TRM_MVE_PAIRS_CASE(1)
      TRM_MVE_PAIRS_CASE(2)
      TRM_MVE_PAIRS_CASE(3)
      TRM_MVE_PAIRS_CASE(4)
      TRM_MVE_PAIRS_CASE(5)
      TRM_MVE_PAIRS_CASE(6)
      default: break;
    }
    t0 = 4 * blocks;
  }
  for (int o = t0 < tokens ? 0 : paired; o < n_ch; o++)
    trm_linear_mve_column(in, w + o * row_bytes, packed_s4, bias, mult, shift, o, out, o < paired ? t0 : 0, tokens,
                          n_in, n_out, acc);
}

/* Every shape: at n_in = 16 the 4-channel groups with the weights in registers (token pairs; an odd last token and
 * the 1-3 channels left by the rolled code), then the other channels / lengths by trm_mve_channels */
TRM_INLINE void trm_mve_linear(const int8_t *in, const uint8_t *w, int packed_s4, const int32_t *bias,
                               const int32_t *mult, const int32_t *shift, int8_t *out, int tokens, int n_in,
                               int n_out, void *scratch) {
  size_t row_bytes = packed_s4 ? (size_t)(n_in + 1) / 2 : (size_t)n_in;
  int32_t *acc = (int32_t *)(((uintptr_t)scratch + 3) & ~(uintptr_t)3);
  int quads = 0;
  if (n_in == 16 && trm_mve_unrolled(packed_s4, 16) && tokens >= 2 && n_out >= 4 &&
      trm_mve_rq_ok(mult, shift, n_out & ~3)) {
    quads = n_out & ~3;
    trm_mve_quads(in, w, packed_s4, bias, mult, shift, out, tokens / 2, n_out, quads);
    for (int o = 0; o < quads && tokens % 2; o++)
      trm_linear_mve_column(in, w + o * row_bytes, packed_s4, bias, mult, shift, o, out, tokens - 1, tokens, n_in,
                            n_out, acc);
  }
  trm_mve_channels(in, w + quads * row_bytes, packed_s4, bias ? bias + quads : NULL, mult + quads, shift + quads,
                   out + quads, tokens, n_in, n_out, n_out - quads, acc);
}

void trm_linear_s8_mve(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  trm_mve_linear(in, (const uint8_t *)w, 0, bias, mult, shift, out, tokens, n_in, n_out, scratch);
}

void trm_linear_s4_mve(const int8_t *in, const uint8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  trm_mve_linear(in, w, 1, bias, mult, shift, out, tokens, n_in, n_out, scratch);
}

/* ---- element-wise ops (Helium; the dsp twins in trm_ops_dsp.c, the ref twins in ../reference/) ------------ */

/* add on 4 int32 lanes per turn, n <= 3 inputs (n and s8_out literals after inlining: the input loop unrolls,
 * pointers and multipliers stay in registers); each operand's bytes widened by the load, VMUL/VMLA by the
 * multipliers. int8 out: sat8((v + 2^(s-1)) >> s) = VRSHL by -s, VQSHL #24, VSHR #24; else int32 out. */
TRM_INLINE void trm_mve_add(const int8_t *const *in, const int32_t *m, int n, int32_t s, int s8_out, void *out,
                            int len) {
  const int8_t *p0 = in[0], *p1 = n > 1 ? in[1] : p0, *p2 = n > 2 ? in[2] : p0;
  int32_t m0 = m[0], m1 = n > 1 ? m[1] : 0, m2 = n > 2 ? m[2] : 0;
  int8_t *o8 = (int8_t *)out;
  int32_t *o32 = (int32_t *)out;
  for (; len >= 4; len -= 4, p0 += 4, p1 += 4, p2 += 4, o8 += 4, o32 += 4) {
    int32x4_t v = vmulq_n_s32(vldrbq_s32(p0), m0);
    if (n > 1) v = vmlaq_n_s32(v, vldrbq_s32(p1), m1);
    if (n > 2) v = vmlaq_n_s32(v, vldrbq_s32(p2), m2);
    if (s8_out)
      vstrbq_s32(o8, vshrq_n_s32(vqshlq_n_s32(vrshlq_n_s32(v, -s), 24), 24));
    else
      vstrwq_s32(o32, v);
  }
  for (int i = 0; i < len; i++) {
    int32_t v = p0[i] * m0 + (n > 1 ? p1[i] * m1 : 0) + (n > 2 ? p2[i] * m2 : 0);
    if (s8_out)
      o8[i] = (int8_t)trm_ssat8((int32_t)(((int64_t)v + ((int64_t)1 << (s - 1))) >> s));
    else
      o32[i] = v;
  }
}

/* the model's 1-3 inputs by the Helium loop, more by the dsp kernel */
#define TRM_MVE_ADD_CASES(S8_OUT, DSP)                         \
  switch (n_in) {                                              \
    case 1: trm_mve_add(in, m, 1, s, S8_OUT, out, len); break; \
    case 2: trm_mve_add(in, m, 2, s, S8_OUT, out, len); break; \
    case 3: trm_mve_add(in, m, 3, s, S8_OUT, out, len); break; \
    default: DSP; break;                                       \
  }

void trm_add_s32_mve(const int8_t *const *in, const int32_t *m, int n_in, int32_t *out, int len) {
  const int32_t s = 0;
  TRM_MVE_ADD_CASES(0, trm_add_s32_dsp(in, m, n_in, out, len))
}

void trm_add_s8_mve(const int8_t *const *in, const int32_t *m, int n_in, int32_t s, int8_t *out, int len) {
  TRM_MVE_ADD_CASES(1, trm_add_s8_dsp(in, m, n_in, s, out, len))
}

/* 4 lanes per turn: the products by VMUL, rq and sat8 as the linear tile's (trm_mve_rq_narrow) */
void trm_mul_s8_mve(const int8_t *a, const int8_t *b, int32_t mult, int32_t shift, int8_t *out, int len) {
  if (trm_mve_rq_ok(&mult, &shift, 1))
    for (int32_t ns = 31 - shift; len >= 4; len -= 4, a += 4, b += 4, out += 4)
      vstrbq_s32(out, trm_mve_rq_narrow(vmulq_s32(vldrbq_s32(a), vldrbq_s32(b)), mult, ns));
  trm_requant_t q = trm_requant_init(&mult, &shift, 0);
  for (int i = 0; i < len; i++) out[i] = trm_requant((int32_t)a[i] * b[i], q);
}

void trm_lut_s8_mve(const int8_t *in, const int8_t *table, int8_t *out, int len) {
  int i = 0;
  for (; i + 16 <= len; i += 16) /* table[q + 128]: q's byte with the top bit flipped, 16 gathered bytes */
    vstrbq_u8((uint8_t *)out + i, vldrbq_gather_offset_u8((const uint8_t *)table,
                                                           veorq_u8(vldrbq_u8((const uint8_t *)in + i),
                                                                    vdupq_n_u8(0x80))));
  for (; i < len; i++) out[i] = table[in[i] + 128];
}

/* RMSNorm with every channel's shift in 32..62 (trm_mve_rq_ok) and dim a multiple of 4 (else the dsp kernel): sum
 * of squares by VMLALDAVA (64-bit), the per-token scale as in the dsp kernel, then 4 channels per turn -- the Q15
 * step (trm_ops_dsp.c: trm_rms_q15 on 4 lanes) and trm_mve_rq_narrow with per-lane M and 31 - sh. */
void trm_rmsnorm_s32_mve(const int32_t *in, int64_t eps, const int32_t *mult, const int32_t *shift, int8_t *out,
                         int tokens, int dim) {
  if (dim % 4 || !trm_mve_rq_ok(mult, shift, dim)) {
    trm_rmsnorm_s32_dsp(in, eps, mult, shift, out, tokens, dim);
    return;
  }
  const int32x4_t top = vdupq_n_s32(31);
  for (int t = 0; t < tokens; t++) {
    const int32_t *r = in + (size_t)t * dim;
    int8_t *o = out + (size_t)t * dim;
    int64_t ss = eps;
    for (int k = 0; k < dim; k += 4) ss = vmlaldavaq_s32(ss, vldrwq_s32(r + k), vldrwq_s32(r + k));
    if (ss == 0) {
      for (int k = 0; k < dim; k++) o[k] = 0;
      continue;
    }
    int32_t inv;
    int b = trm_rmsnorm_scale(ss, &inv);
    int32x4_t vinv = vdupq_n_s32(inv);
    for (int k = 0; k < dim; k += 4) {
      int32x4_t x = vldrwq_s32(r + k), n;
      if (b <= 18)
        n = vrmulhq_s32(vshlq_r_s32(x, 18 - b), vinv);
      else
        n = vshlq_r_s32(vaddq_n_s32(vmulhq_s32(x, vinv), (int32_t)1 << (b - 19)), 18 - b);
      n = vrshlq_s32(vqdmulhq_s32(n, vldrwq_s32(mult + k)), vsubq_s32(top, vldrwq_s32(shift + k)));
      vstrbq_s32(o + k, vshrq_n_s32(vqshlq_n_s32(n, 24), 24));
    }
  }
}
