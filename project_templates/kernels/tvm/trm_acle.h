/* Arm ACLE intrinsics used by TVM-generated kernels through call_extern.
 * DSP: "__sxtb16" / "__smlad" / "trm_sxtb16_ror8" / "trm_pkhbt" / "trm_pkhtb" / "trm_ssat8" / "trm_ssat16" /
 * "trm_smmulr" / "trm_smmla"; "trm_bit_length64" (CLZ).
 * Helium (MVE): "trm_mve_dot_s8" / "trm_mve_dot_s4" and their "_tail" forms, "trm_mve_rq4_s8" (and _sh32);
 * element-wise
 * "trm_mve_lut_s8x16", "trm_mve_mul_s8x4", "trm_mve_add{2,3}_s{8,32}x4", "trm_mve_sumsq4", "trm_mve_rms_s8x4".
 * On a core with the extension they are single instructions (or 2-5 for the MVE dots) from <arm_acle.h> /
 * <arm_mve.h>; elsewhere (host tests) exact C emulations of the same instructions. Not kernels: the loops around
 * them are TVM's. */
#ifndef TRM_ACLE_H
#define TRM_ACLE_H
#include <stdint.h>
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
/* SXTB16 with its operand rotated by 8 (bytes 1 and 3): one instruction; GCC 12's ACLE has no __sxtb16_ror */
static inline int32_t trm_sxtb16_ror8(int32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
/* PKHBT x, y, LSL #16: bottom half x[15:0], top half y[15:0]; PKHTB x, y, ASR #16: bottom y[31:16], top x[31:16] */
static inline int32_t trm_pkhbt(int32_t x, int32_t y) {
  int32_t r;
  __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(x), "r"(y));
  return r;
}
static inline int32_t trm_pkhtb(int32_t x, int32_t y) {
  int32_t r;
  __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(x), "r"(y));
  return r;
}
static inline int32_t trm_ssat8(int32_t x) { return __ssat(x, 8); }
static inline int32_t trm_smmulr(int32_t x, int32_t y) {
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(x), "r"(y));
  return r;
}
static inline int32_t trm_smmla(int32_t x, int32_t y, int32_t acc) {
  int32_t r;
  __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
  return r;
}
static inline int32_t trm_ssat16(int32_t x) { return __ssat(x, 16); }
#else
/* SXTB16: sign-extend bytes 0 and 2 into the two halfwords */
static inline int32_t __sxtb16(int32_t x) {
  uint32_t lo = (uint16_t)(int16_t)(int8_t)(x & 0xff), hi = (uint16_t)(int16_t)(int8_t)((x >> 16) & 0xff);
  return (int32_t)(lo | (hi << 16));
}
/* SMLAD: acc + lo(x)*lo(y) + hi(x)*hi(y), halfwords signed, 32-bit wrap-around like the instruction */
static inline int32_t __smlad(int32_t x, int32_t y, int32_t acc) {
  int32_t p0 = (int32_t)(int16_t)(x & 0xffff) * (int16_t)(y & 0xffff);
  int32_t p1 = (int32_t)(int16_t)((uint32_t)x >> 16) * (int16_t)((uint32_t)y >> 16);
  return (int32_t)((uint32_t)acc + (uint32_t)p0 + (uint32_t)p1);
}
static inline int32_t trm_sxtb16_ror8(int32_t x) { return __sxtb16((int32_t)((uint32_t)x >> 8 | (uint32_t)x << 24)); }
static inline int32_t trm_pkhbt(int32_t x, int32_t y) { return (int32_t)(((uint32_t)x & 0xffffu) | ((uint32_t)y << 16)); }
static inline int32_t trm_pkhtb(int32_t x, int32_t y) { return (int32_t)(((uint32_t)x & 0xffff0000u) | ((uint32_t)y >> 16)); }
/* SSAT #8 / #16: clamp to the signed range */
static inline int32_t trm_ssat8(int32_t x) { return x < -128 ? -128 : x > 127 ? 127 : x; }
/* SMMULR: (x*y + 2^31) >> 32, the rounded high word */
static inline int32_t trm_smmulr(int32_t x, int32_t y) {
  return (int32_t)(((int64_t)x * y + ((int64_t)1 << 31)) >> 32);
}
/* SMMLA: acc + the high word of x*y (wraps like the instruction) */
static inline int32_t trm_smmla(int32_t x, int32_t y, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(int32_t)(((int64_t)x * y) >> 32));
}
static inline int32_t trm_ssat16(int32_t x) { return x < -32768 ? -32768 : x > 32767 ? 32767 : x; }
#endif
/* bit_length of a non-negative int64 (0 for 0): CLZ of the high or the low word */
static inline int32_t trm_bit_length64(int64_t x) {
  uint32_t hi = (uint32_t)((uint64_t)x >> 32), lo = (uint32_t)x;
  return hi ? 64 - __builtin_clz(hi) : lo ? 32 - __builtin_clz(lo) : 0;
}

/* ---- Helium (MVE) -------------------------------------------------------------------------------------------
 * acc + the dot product of 16 int8 activations at a with 16 weights at w: two VLDRB and one VMLADAVA (16 MACs).
 * s4: the 16 weights are 8 bytes of packed int4 (element 2i = low nibble of byte i, 2i+1 = its high nibble),
 * unpacked to 16 int8 lanes in 4 instructions (widening load, two shifts, arithmetic shift right).
 * _tail: only the first n elements (n < 16) count and only they are read: VCTP-predicated zeroing loads.
 * The functions are pure: GCC reuses a load shared by the calls of one register tile (the weight chunk of a row
 * for every token of the tile, the activations of a token for every output channel). */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
static inline __attribute__((always_inline)) int8x16_t trm_mve_s4x16(uint16x8_t b) {
  int8x16_t x = vreinterpretq_s8_u16(vshlq_n_u16(b, 4));            /* even lanes: low nibble << 4; odd: high */
  x = vshlq_s8(x, vreinterpretq_s8_u16(vdupq_n_u16(0x0400)));      /* odd lanes << 4 */
  return vshrq_n_s8(x, 4);                                         /* sign-extend both */
}
static inline __attribute__((always_inline)) int32_t trm_mve_dot_s8(int8_t *a, int8_t *w, int32_t acc) {
  if (__builtin_constant_p(acc) && acc == 0) return vmladavq_s8(vldrbq_s8(a), vldrbq_s8(w)); /* first chunk */
  return vmladavaq_s8(acc, vldrbq_s8(a), vldrbq_s8(w));
}
static inline __attribute__((always_inline)) int32_t trm_mve_dot_s8_tail(int8_t *a, int8_t *w, int32_t n,
                                                                         int32_t acc) {
  mve_pred16_t p = vctp8q((uint32_t)n);
  return vmladavaq_s8(acc, vldrbq_z_s8(a, p), vldrbq_z_s8(w, p));
}
static inline __attribute__((always_inline)) int32_t trm_mve_dot_s4(int8_t *a, uint8_t *w, int32_t acc) {
  if (__builtin_constant_p(acc) && acc == 0) return vmladavq_s8(vldrbq_s8(a), trm_mve_s4x16(vldrbq_u16(w)));
  return vmladavaq_s8(acc, vldrbq_s8(a), trm_mve_s4x16(vldrbq_u16(w)));
}
static inline __attribute__((always_inline)) int32_t trm_mve_dot_s4_tail(int8_t *a, uint8_t *w, int32_t n,
                                                                         int32_t acc) {
  uint16x8_t b = vldrbq_z_u16(w, vctp16q((uint32_t)(n + 1) / 2));
  return vmladavaq_s8(acc, vldrbq_z_s8(a, vctp8q((uint32_t)n)), trm_mve_s4x16(b));
}
/* out[j * stride] = sat8(rq(v_j, M, sh)) for 4 tokens j, sh in 33..56 (docs/kernels.md): VMULH by M, VADD of
 * 2^(sh-33), VQSHL by 24-(sh-32) (saturates exactly when rq leaves int8) and VSHR #24, one VSTRB scatter.
 * Returns 0 (TVM declares externs with a value). */
static inline __attribute__((always_inline)) int32_t trm_mve_rq4_s8(int8_t *out, int32_t stride, int32_t v0, int32_t v1,
                                                                    int32_t v2, int32_t v3, int32_t mult,
                                                                    int32_t shift) {
  int32x4_t v = vsetq_lane_s32(v3, vsetq_lane_s32(v2, vsetq_lane_s32(v1, vdupq_n_s32(v0), 1), 2), 3);
  int32x4_t x = vaddq_n_s32(vmulhq_s32(v, vdupq_n_s32(mult)), (int32_t)1 << (shift - 33));
  vstrbq_scatter_offset_s32(out, vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)stride),
                            vshrq_n_s32(vqshlq_r_s32(x, 56 - shift), 24));
  return 0;
}
/* the same for sh == 32 (linear multipliers encoded at shift 32): VRMULH by M is rq itself (the rounded high
 * word), VQSHL #24 and VSHR #24 saturate it to int8. */
static inline __attribute__((always_inline)) int32_t trm_mve_rq4_s8_sh32(int8_t *out, int32_t stride, int32_t v0,
                                                                         int32_t v1, int32_t v2, int32_t v3,
                                                                         int32_t mult) {
  int32x4_t v = vsetq_lane_s32(v3, vsetq_lane_s32(v2, vsetq_lane_s32(v1, vdupq_n_s32(v0), 1), 2), 3);
  vstrbq_scatter_offset_s32(out, vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)stride),
                            vshrq_n_s32(vqshlq_n_s32(vrmulhq_s32(v, vdupq_n_s32(mult)), 24), 24));
  return 0;
}
/* Element-wise (docs/kernels.md "Element-wise"; the TIR loops around them are the strategies'):
 * lut: 16 bytes table[q + 128] by one gather (q + 128 = q's byte with the top bit flipped);
 * mul: 4 lanes sat8(rq(a*b, M, sh)), sh in 33..56, the narrow of trm_mve_rq4_s8;
 * add2/add3: 4 lanes v = sum in_j * m_j (widening loads, VMUL/VMLA by the scalar multipliers), int8 out:
 * sat8((v + 2^(s-1)) >> s) = VRSHL by -s, VQSHL #24, VSHR #24 (|v| < 2^24: no wrap); int32 out: v;
 * sumsq: ss + the 4 lanes' squares (VMLALDAVA, 64-bit);
 * rms: 4 channels of RMSNorm steps 4-5 (m = b - 1, every shift in 33..56): the Q15 step (b <= 18: rounded high
 * word of r << (18-b); else (hi32(r*inv) + 2^(b-19)) >> (b-18)), rq with per-lane M and shift, the narrow. */
static inline __attribute__((always_inline)) int32x4_t trm_mve_narrow4(int32x4_t hi, int32x4_t shift) {
  int32x4_t v = vaddq_s32(hi, vshlq_s32(vdupq_n_s32(1), vsubq_s32(shift, vdupq_n_s32(33))));
  return vshrq_n_s32(vqshlq_s32(v, vsubq_s32(vdupq_n_s32(56), shift)), 24);
}
static inline __attribute__((always_inline)) int32_t trm_mve_lut_s8x16(int8_t *out, int8_t *in, int8_t *table) {
  uint8x16_t q = veorq_u8(vldrbq_u8((const uint8_t *)in), vdupq_n_u8(0x80));
  vstrbq_u8((uint8_t *)out, vldrbq_gather_offset_u8((const uint8_t *)table, q));
  return 0;
}
static inline __attribute__((always_inline)) int32_t trm_mve_mul_s8x4(int8_t *out, int8_t *a, int8_t *b, int32_t mult,
                                                                      int32_t shift) {
  int32x4_t x = vmulhq_s32(vmulq_s32(vldrbq_s32(a), vldrbq_s32(b)), vdupq_n_s32(mult));
  int32x4_t v = vaddq_n_s32(x, (int32_t)1 << (shift - 33));
  vstrbq_s32(out, vshrq_n_s32(vqshlq_r_s32(v, 56 - shift), 24));
  return 0;
}
static inline __attribute__((always_inline)) int32x4_t trm_mve_sum3(int8_t *a, int8_t *b, int8_t *c, int32_t m0,
                                                                    int32_t m1, int32_t m2) {
  int32x4_t v = vmlaq_n_s32(vmulq_n_s32(vldrbq_s32(a), m0), vldrbq_s32(b), m1);
  return c ? vmlaq_n_s32(v, vldrbq_s32(c), m2) : v;
}
static inline __attribute__((always_inline)) int32_t trm_mve_add2_s8x4(int8_t *out, int8_t *a, int8_t *b, int32_t m0,
                                                                       int32_t m1, int32_t s) {
  vstrbq_s32(out, vshrq_n_s32(vqshlq_r_s32(vrshlq_n_s32(trm_mve_sum3(a, b, 0, m0, m1, 0), -s), 24), 24));
  return 0;
}
static inline __attribute__((always_inline)) int32_t trm_mve_add3_s8x4(int8_t *out, int8_t *a, int8_t *b, int8_t *c,
                                                                       int32_t m0, int32_t m1, int32_t m2, int32_t s) {
  vstrbq_s32(out, vshrq_n_s32(vqshlq_r_s32(vrshlq_n_s32(trm_mve_sum3(a, b, c, m0, m1, m2), -s), 24), 24));
  return 0;
}
static inline __attribute__((always_inline)) int32_t trm_mve_add2_s32x4(int32_t *out, int8_t *a, int8_t *b, int32_t m0,
                                                                        int32_t m1) {
  vstrwq_s32(out, trm_mve_sum3(a, b, 0, m0, m1, 0));
  return 0;
}
static inline __attribute__((always_inline)) int32_t trm_mve_add3_s32x4(int32_t *out, int8_t *a, int8_t *b, int8_t *c,
                                                                        int32_t m0, int32_t m1, int32_t m2) {
  vstrwq_s32(out, trm_mve_sum3(a, b, c, m0, m1, m2));
  return 0;
}
static inline __attribute__((always_inline)) int64_t trm_mve_sumsq4(int32_t *r, int64_t ss) {
  int32x4_t x = vldrwq_s32(r);
  return vmlaldavaq_s32(ss, x, x);
}
static inline __attribute__((always_inline)) int32_t trm_mve_rms_s8x4(int8_t *out, int32_t *r, int32_t inv, int32_t m,
                                                                      int32_t *mult, int32_t *shift) {
  int32x4_t x = vldrwq_s32(r), vinv = vdupq_n_s32(inv), n;
  if (m <= 17)
    n = vrmulhq_s32(vshlq_r_s32(x, 17 - m), vinv);
  else
    n = vshlq_r_s32(vaddq_n_s32(vmulhq_s32(x, vinv), (int32_t)1 << (m - 18)), 17 - m);
  vstrbq_s32(out, trm_mve_narrow4(vmulhq_s32(n, vldrwq_s32(mult)), vldrwq_s32(shift)));
  return 0;
}
#else
static inline int32_t trm_mve_rq4_s8(int8_t *out, int32_t stride, int32_t v0, int32_t v1, int32_t v2, int32_t v3,
                                     int32_t mult, int32_t shift) {
  int32_t v[4] = {v0, v1, v2, v3};
  for (int j = 0; j < 4; j++) {
    int32_t r = ((int32_t)(((int64_t)v[j] * mult) >> 32) + ((int32_t)1 << (shift - 33))) >> (shift - 32);
    out[j * stride] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
  }
  return 0;
}
static inline int32_t trm_mve_rq4_s8_sh32(int8_t *out, int32_t stride, int32_t v0, int32_t v1, int32_t v2,
                                          int32_t v3, int32_t mult) {
  int32_t v[4] = {v0, v1, v2, v3};
  for (int j = 0; j < 4; j++) {
    int32_t r = (int32_t)(((int64_t)v[j] * mult + ((int64_t)1 << 31)) >> 32);
    out[j * stride] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
  }
  return 0;
}
/* host: the same results lane by lane, per docs/integer-spec.md */
static inline int8_t trm_mve_sat8(int32_t x) { return (int8_t)(x < -128 ? -128 : x > 127 ? 127 : x); }
static inline int32_t trm_mve_rq_high(int32_t v, int32_t mult, int32_t shift) {
  return ((int32_t)(((int64_t)v * mult) >> 32) + ((int32_t)1 << (shift - 33))) >> (shift - 32);
}
static inline int32_t trm_mve_lut_s8x16(int8_t *out, int8_t *in, int8_t *table) {
  for (int i = 0; i < 16; i++) out[i] = table[in[i] + 128];
  return 0;
}
static inline int32_t trm_mve_mul_s8x4(int8_t *out, int8_t *a, int8_t *b, int32_t mult, int32_t shift) {
  for (int i = 0; i < 4; i++) out[i] = trm_mve_sat8(trm_mve_rq_high((int32_t)a[i] * b[i], mult, shift));
  return 0;
}
static inline int32_t trm_mve_add3_s32x4(int32_t *out, int8_t *a, int8_t *b, int8_t *c, int32_t m0, int32_t m1,
                                         int32_t m2) {
  for (int i = 0; i < 4; i++) out[i] = (int32_t)a[i] * m0 + (int32_t)b[i] * m1 + (c ? (int32_t)c[i] * m2 : 0);
  return 0;
}
static inline int32_t trm_mve_add2_s32x4(int32_t *out, int8_t *a, int8_t *b, int32_t m0, int32_t m1) {
  return trm_mve_add3_s32x4(out, a, b, 0, m0, m1, 0);
}
static inline int32_t trm_mve_add3_s8x4(int8_t *out, int8_t *a, int8_t *b, int8_t *c, int32_t m0, int32_t m1,
                                        int32_t m2, int32_t s) {
  int32_t v[4];
  trm_mve_add3_s32x4(v, a, b, c, m0, m1, m2);
  for (int i = 0; i < 4; i++) out[i] = trm_mve_sat8((int32_t)(((int64_t)v[i] + ((int64_t)1 << (s - 1))) >> s));
  return 0;
}
static inline int32_t trm_mve_add2_s8x4(int8_t *out, int8_t *a, int8_t *b, int32_t m0, int32_t m1, int32_t s) {
  return trm_mve_add3_s8x4(out, a, b, 0, m0, m1, 0, s);
}
static inline int64_t trm_mve_sumsq4(int32_t *r, int64_t ss) {
  for (int i = 0; i < 4; i++) ss += (int64_t)r[i] * r[i];
  return ss;
}
static inline int32_t trm_mve_rms_s8x4(int8_t *out, int32_t *r, int32_t inv, int32_t m, int32_t *mult, int32_t *shift) {
  for (int i = 0; i < 4; i++) {
    int32_t n = (int32_t)(((int64_t)r[i] * inv + ((int64_t)1 << (m + 14))) >> (m + 15));  /* b = m + 1 */
    out[i] = trm_mve_sat8(trm_mve_rq_high(n, mult[i], shift[i]));
  }
  return 0;
}
static inline int32_t trm_mve_dot_s8_tail(int8_t *a, int8_t *w, int32_t n, int32_t acc) {
  for (int32_t i = 0; i < n; i++) acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)a[i] * w[i]));
  return acc;
}
static inline int32_t trm_mve_dot_s8(int8_t *a, int8_t *w, int32_t acc) {
  return trm_mve_dot_s8_tail(a, w, 16, acc);
}
/* int4 element i of a packed row: sign-extended nibble by mask arithmetic */
static inline int32_t trm_mve_nibble(uint8_t *w, int32_t i) {
  int32_t v = (w[i / 2] >> (4 * (i % 2))) & 15;
  return v - 2 * (v & 8);
}
static inline int32_t trm_mve_dot_s4_tail(int8_t *a, uint8_t *w, int32_t n, int32_t acc) {
  for (int32_t i = 0; i < n; i++) acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)a[i] * trm_mve_nibble(w, i)));
  return acc;
}
static inline int32_t trm_mve_dot_s4(int8_t *a, uint8_t *w, int32_t acc) {
  return trm_mve_dot_s4_tail(a, w, 16, acc);
}
#endif
#endif
