/* Requantisation of one output channel, shared by the hand-written kernels (docs/integer-spec.md):
 * out = sat8(rq(v, M, sh)) with v = bias + dot (int32) and rq(v) = (v*M + 2^(sh-1)) >> sh in int64.
 *
 * Without 64-bit arithmetic: 2^(sh-1) is a multiple of 2^32 when sh >= 33, and adding it commutes with taking
 * the high word, so rq(v) = (hi32(v*M) + 2^(sh-33)) >> (sh-32) -- one SMMLA and one ASR (VMULH on Helium);
 * for sh == 32 it is the rounded high word, SMMULR (VRMULH). Both are exact: |hi32(v*M)| <= 2^30 and
 * 2^(sh-33) <= 2^29, so the sum cannot wrap. Shifts below 32 (multipliers of 1/2 and more) use int64. */
#ifndef TRM_REQUANT_H
#define TRM_REQUANT_H
#include "trm_simd.h"

typedef struct {
  int32_t mult, shift, round; /* round = 2^(shift-33) when shift >= 33 */
} trm_requant_t;

TRM_INLINE trm_requant_t trm_requant_init(const int32_t *mult, const int32_t *shift, int o) {
  trm_requant_t q = {mult[o], shift[o], shift[o] >= 33 ? (int32_t)1 << (shift[o] - 33) : 0};
  return q;
}

/* sat8(rq(v)), v = bias + dot */
TRM_INLINE int8_t trm_requant(int32_t v, trm_requant_t q) {
  if (q.shift >= 33) return (int8_t)trm_ssat8(trm_smmla(v, q.mult, q.round) >> (q.shift - 32));
  if (q.shift == 32) return (int8_t)trm_ssat8(trm_smmulr(v, q.mult));
  int64_t r = ((int64_t)v * q.mult + ((int64_t)1 << (q.shift - 1))) >> q.shift;
  return (int8_t)(r < -128 ? -128 : (r > 127 ? 127 : r));
}

#endif
