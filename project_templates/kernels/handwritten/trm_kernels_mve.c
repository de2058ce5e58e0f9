/* Hand-written linear kernels for Helium (MVE, Cortex-M55): VMLADAVA sums 16 int8 products per instruction.
 *
 * The blocking (docs/kernels.md): one weight row chunk of 16 k stays in a vector register while TRM_MVE_TOKENS
 * tokens stream past it, each token one load and one VMLADAVA. The int8 operands need no widening, so there is
 * no scratch. Full chunks run unpredicated; the last partial chunk is the same code with VCTP tail predication
 * (inactive lanes load as 0 and are not read). Packed int4 rows are unpacked to 16 int8 lanes in 4 instructions.
 */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

#define TRM_MVE_TOKENS 4 /* tokens per block */

int trm_linear_mve_scratch_bytes(int tokens, int n_in, int n_out) {
  (void)tokens, (void)n_in, (void)n_out;
  return 0;
}

/* 16 int8 weights starting at element k of a row (predicate p: lanes below n_in - k) */
TRM_INLINE int8x16_t trm_mve_weights_s8(const int8_t *row, int k, mve_pred16_t p, int tail) {
  return tail ? vldrbq_z_s8(row + k, p) : vldrbq_s8(row + k);
}

/* 16 int4 weights from 8 packed bytes: lane 2i = low nibble of byte i, lane 2i+1 = its high nibble. */
TRM_INLINE int8x16_t trm_mve_weights_s4(const uint8_t *row, int k, int n_in, int tail) {
  uint16x8_t b = tail ? vldrbq_z_u16(row + k / 2, vctp16q((uint32_t)((n_in + 1) / 2 - k / 2)))
                      : vldrbq_u16(row + k / 2);                    /* byte i in halfword lane i */
  int8x16_t x = vreinterpretq_s8_u16(vshlq_n_u16(b, 4));            /* even lane: lo<<4, odd lane: hi */
  x = vshlq_s8(x, vreinterpretq_s8_u16(vdupq_n_u16(0x0400)));       /* odd lanes << 4 */
  return vshrq_n_s8(x, 4);                                          /* both sign-extended nibbles */
}

/* token j's 16 activations at element k (tokens are n_in apart) */
TRM_INLINE int8x16_t trm_mve_act(const int8_t *a, int j, int k, int n_in, mve_pred16_t p, int tail) {
  const int8_t *aj = a + (size_t)j * n_in + k;
  return tail ? vldrbq_z_s8(aj, p) : vldrbq_s8(aj);
}

/* Sums of one chunk (16 k, or the predicated tail) for NB tokens; NB is a constant after inlining. */
#define TRM_MVE_CHUNK(W_LOAD, P, TAIL)                                                                          \
  do {                                                                                                          \
    int8x16_t w = W_LOAD;                                                                                       \
    s0 = vmladavaq_s8(s0, trm_mve_act(a, 0, k, n_in, P, TAIL), w);                                               \
    if (nb > 1) s1 = vmladavaq_s8(s1, trm_mve_act(a, 1, k, n_in, P, TAIL), w);                                   \
    if (nb > 2) s2 = vmladavaq_s8(s2, trm_mve_act(a, 2, k, n_in, P, TAIL), w);                                   \
    if (nb > 3) s3 = vmladavaq_s8(s3, trm_mve_act(a, 3, k, n_in, P, TAIL), w);                                   \
  } while (0)

/* out[j*n_out] for NB tokens j starting at a, one output channel (row) */
TRM_INLINE void trm_mve_block(const void *row, int packed_s4, const int8_t *a, int n_in, int nb, trm_requant_t q,
                              int8_t *out, int n_out) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int k = 0;
  for (; k + 16 <= n_in; k += 16)
    TRM_MVE_CHUNK(packed_s4 ? trm_mve_weights_s4((const uint8_t *)row, k, n_in, 0)
                            : trm_mve_weights_s8((const int8_t *)row, k, 0, 0), 0, 0);
  if (k < n_in) {
    mve_pred16_t p = vctp8q((uint32_t)(n_in - k));
    TRM_MVE_CHUNK(packed_s4 ? trm_mve_weights_s4((const uint8_t *)row, k, n_in, 1)
                            : trm_mve_weights_s8((const int8_t *)row, k, p, 1), p, 1);
  }
  out[0] = trm_requant(s0, q);
  if (nb > 1) out[n_out] = trm_requant(s1, q);
  if (nb > 2) out[2 * n_out] = trm_requant(s2, q);
  if (nb > 3) out[3 * n_out] = trm_requant(s3, q);
}

TRM_INLINE void trm_mve_linear(const int8_t *in, const void *w, int packed_s4, const int32_t *bias,
                               const int32_t *mult, const int32_t *shift, int8_t *out, int tokens, int n_in,
                               int n_out) {
  size_t row_bytes = packed_s4 ? (size_t)(n_in + 1) / 2 : (size_t)n_in;
  for (int o = 0; o < n_out; o++) {
    const uint8_t *row = (const uint8_t *)w + o * row_bytes;
    trm_requant_t q = trm_requant_init(bias, mult, shift, o);
    int t0 = 0;
    for (; t0 + TRM_MVE_TOKENS <= tokens; t0 += TRM_MVE_TOKENS)
      trm_mve_block(row, packed_s4, in + (size_t)t0 * n_in, n_in, TRM_MVE_TOKENS, q, out + (size_t)t0 * n_out + o,
                    n_out);
    switch (tokens - t0) {
      case 3: trm_mve_block(row, packed_s4, in + (size_t)t0 * n_in, n_in, 3, q, out + (size_t)t0 * n_out + o, n_out); break;
      case 2: trm_mve_block(row, packed_s4, in + (size_t)t0 * n_in, n_in, 2, q, out + (size_t)t0 * n_out + o, n_out); break;
      case 1: trm_mve_block(row, packed_s4, in + (size_t)t0 * n_in, n_in, 1, q, out + (size_t)t0 * n_out + o, n_out); break;
      default: break;
    }
  }
}

void trm_linear_s8_mve(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  (void)scratch;
  trm_mve_linear(in, w, 0, bias, mult, shift, out, tokens, n_in, n_out);
}

void trm_linear_s4_mve(const int8_t *in, const uint8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  (void)scratch;
  trm_mve_linear(in, w, 1, bias, mult, shift, out, tokens, n_in, n_out);
}
