/* Requantisation of one output channel, shared by the hand-written kernels (docs/integer-spec.md):
 * out = sat8(rq(bias + dot, M, sh)) with the bias folded into the rounding constant,
 * rq(bias + dot) = (dot*M + (bias*M + 2^(sh-1))) >> sh, exact in int64 (|bias + dot| < 2^31, |M| <= 2^31). */
#ifndef TRM_REQUANT_H
#define TRM_REQUANT_H
#include "trm_simd.h"

/* One output channel's requantisation, bias folded in: rq(bias + dot) = (dot*M + (bias*M + 2^(sh-1))) >> sh. */
typedef struct {
  int64_t base;
  int32_t mult, shift;
} trm_requant_t;

TRM_INLINE trm_requant_t trm_requant_init(const int32_t *bias, const int32_t *mult, const int32_t *shift, int o) {
  trm_requant_t q = {(bias ? (int64_t)bias[o] * mult[o] : 0) + ((int64_t)1 << (shift[o] - 1)), mult[o], shift[o]};
  return q;
}

TRM_INLINE int8_t trm_requant(int32_t dot, trm_requant_t q) {
  int64_t v = q.base + (int64_t)dot * q.mult; /* one SMLAL */
  if (q.shift >= 32) return (int8_t)trm_ssat8((int32_t)(v >> 32) >> (q.shift - 32)); /* the usual case */
  v >>= q.shift;
  return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

#endif
