/* The few Arm SIMD instructions the hand-written kernels use, with one spelling on every target.
 *
 * On a core with the DSP extension (Cortex-M4/M7/M33/M55: __ARM_FEATURE_DSP) each DSP helper is one instruction
 * (inline asm); with Helium (__ARM_FEATURE_MVE) the MVE names come from the compiler's <arm_mve.h>. Everywhere
 * else (the x86 host that runs the tests) the same names are exact plain-C emulations, so the SAME kernel source
 * is tested on the host and on the emulated boards. Only the intrinsics the kernels need are emulated.
 */
#ifndef TRM_SIMD_H
#define TRM_SIMD_H
#include <stdint.h>
#include <string.h>

#define TRM_INLINE static inline __attribute__((always_inline))

/* A word load / store that may be unaligned: one LDR / STR on cores that allow it (the builtin, also under
 * -ffreestanding). */
TRM_INLINE uint32_t trm_read_u32(const void *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
TRM_INLINE void trm_write_u32(void *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }

/* ---- DSP extension (32-bit SIMD on halfwords) ------------------------------------------------------------- */
#if defined(__ARM_FEATURE_DSP)

/* acc + lo(a)*lo(b) + hi(a)*hi(b), halves signed 16-bit */
TRM_INLINE int32_t trm_smlad(uint32_t a, uint32_t b, int32_t acc) {
  /* accumulate in place: with a free output register GCC shuffles accumulators between registers */
  __asm__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(a), "r"(b));
  return acc;
}
/* bytes 0 and 2 sign-extended to halfwords */
TRM_INLINE uint32_t trm_sxtb16(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
  return r;
}
/* bytes 1 and 3 sign-extended to halfwords */
TRM_INLINE uint32_t trm_sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
/* low half of a, low half of b in the high half */
TRM_INLINE uint32_t trm_pkhbt16(uint32_t a, uint32_t b) {
  uint32_t r;
  __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
/* high half of a in the low half, high half of b */
TRM_INLINE uint32_t trm_pkhtb16(uint32_t b, uint32_t a) {
  uint32_t r;
  __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
  return r;
}
TRM_INLINE int32_t trm_ssat8(int32_t x) {
  int32_t r;
  __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
  return r;
}
/* acc + high word of a*b (floor of the 64-bit product / 2^32) */
TRM_INLINE int32_t trm_smmla(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
/* lo(a)*lo(b) and hi(a)*hi(b), halves signed 16-bit */
TRM_INLINE int32_t trm_smulbb(uint32_t a, uint32_t b) {
  int32_t r;
  __asm__("smulbb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
TRM_INLINE int32_t trm_smultt(uint32_t a, uint32_t b) {
  int32_t r;
  __asm__("smultt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
/* (a*b + 2^31) >> 32 */
TRM_INLINE int32_t trm_smmulr(int32_t a, int32_t b) {
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
/* x[0..3] = p[0..3], p += 4: one LDM. GCC splits 4 loads into LDRs/LDRDs, so the register list is pinned (two
 * disjoint sets: the operand held in registers and the one streamed past it). */
#define TRM_DEFINE_LDM4(name, R0, R1, R2, R3)                                                                 \
  TRM_INLINE const uint32_t *name(const uint32_t *p, uint32_t x[4]) {                                         \
    register uint32_t x0 __asm__(R0), x1 __asm__(R1), x2 __asm__(R2), x3 __asm__(R3);                          \
    __asm__ volatile("ldmia %[p]!, {%[x0], %[x1], %[x2], %[x3]}"                                                     \
            : [p] "+r"(p), [x0] "=r"(x0), [x1] "=r"(x1), [x2] "=r"(x2), [x3] "=r"(x3)                          \
            : "m"(*(const uint32_t(*)[4])p));                                                                 \
    x[0] = x0, x[1] = x1, x[2] = x2, x[3] = x3;                                                               \
    return p;                                                                                                 \
  }
TRM_DEFINE_LDM4(trm_ldm4_held, "r8", "r9", "r10", "r11")
TRM_DEFINE_LDM4(trm_ldm4_streamed, "r2", "r3", "r4", "r5")

#else /* plain C, bit-exact with the instructions above */

TRM_INLINE int32_t trm_lo16(uint32_t x) { return (int16_t)(x & 0xFFFF); }
TRM_INLINE int32_t trm_hi16(uint32_t x) { return (int16_t)(x >> 16); }
TRM_INLINE int32_t trm_smlad(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(trm_lo16(a) * trm_lo16(b)) + (uint32_t)(trm_hi16(a) * trm_hi16(b)));
}
TRM_INLINE uint32_t trm_sxtb16(uint32_t x) {
  return ((uint32_t)(int32_t)(int8_t)(x & 0xFF) & 0xFFFF) | ((uint32_t)(int32_t)(int8_t)((x >> 16) & 0xFF) << 16);
}
TRM_INLINE uint32_t trm_sxtb16_ror8(uint32_t x) { return trm_sxtb16((x >> 8) | (x << 24)); }
TRM_INLINE uint32_t trm_pkhbt16(uint32_t a, uint32_t b) { return (a & 0xFFFF) | (b << 16); }
TRM_INLINE uint32_t trm_pkhtb16(uint32_t b, uint32_t a) { return (b & 0xFFFF0000u) | (a >> 16); }
TRM_INLINE int32_t trm_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
TRM_INLINE int32_t trm_smmla(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)(int32_t)(((int64_t)a * b) >> 32) + (uint32_t)acc);
}
TRM_INLINE int32_t trm_smmulr(int32_t a, int32_t b) { return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32); }
TRM_INLINE int32_t trm_smulbb(uint32_t a, uint32_t b) { return trm_lo16(a) * trm_lo16(b); }
TRM_INLINE int32_t trm_smultt(uint32_t a, uint32_t b) { return trm_hi16(a) * trm_hi16(b); }
TRM_INLINE const uint32_t *trm_ldm4(const uint32_t *p, uint32_t x[4]) {
  x[0] = p[0], x[1] = p[1], x[2] = p[2], x[3] = p[3];
  return p + 4;
}
#define trm_ldm4_held trm_ldm4
#define trm_ldm4_streamed trm_ldm4

#endif

/* ---- Helium (MVE) ---------------------------------------------------------------------------------------- */
#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#elif !defined(__arm__)
/* Host emulation of the MVE intrinsics the mve kernels use (ACLE names and semantics; predicate = one bit per
 * byte lane, an inactive lane of a _z load is 0 and its memory is not read). */
typedef struct { int8_t v[16]; } int8x16_t;
typedef struct { uint16_t v[8]; } uint16x8_t;
typedef uint16_t mve_pred16_t;

TRM_INLINE mve_pred16_t vctp8q(uint32_t n) { return n >= 16 ? 0xFFFF : (mve_pred16_t)((1u << n) - 1); }
TRM_INLINE mve_pred16_t vctp16q(uint32_t n) { return n >= 8 ? 0xFFFF : (mve_pred16_t)((1u << (2 * n)) - 1); }
TRM_INLINE int8x16_t vldrbq_z_s8(const int8_t *p, mve_pred16_t pred) {
  int8x16_t r;
  for (int i = 0; i < 16; i++) r.v[i] = (pred >> i) & 1 ? p[i] : 0;
  return r;
}
TRM_INLINE int8x16_t vldrbq_s8(const int8_t *p) { return vldrbq_z_s8(p, 0xFFFF); }
TRM_INLINE void vstrbq_s8(int8_t *p, int8x16_t a) {
  for (int i = 0; i < 16; i++) p[i] = a.v[i];
}
TRM_INLINE uint16x8_t vldrbq_z_u16(const uint8_t *p, mve_pred16_t pred) {
  uint16x8_t r;
  for (int i = 0; i < 8; i++) r.v[i] = (pred >> (2 * i)) & 1 ? p[i] : 0;
  return r;
}
TRM_INLINE uint16x8_t vldrbq_u16(const uint8_t *p) { return vldrbq_z_u16(p, 0xFFFF); }
TRM_INLINE int32_t vmladavaq_s8(int32_t acc, int8x16_t a, int8x16_t b) {
  for (int i = 0; i < 16; i++) acc += (int32_t)a.v[i] * b.v[i];
  return acc;
}
TRM_INLINE uint16x8_t vshlq_n_u16(uint16x8_t a, int n) {
  for (int i = 0; i < 8; i++) a.v[i] = (uint16_t)(a.v[i] << n);
  return a;
}
/* per-lane shift by a signed count (left if positive); the kernels use counts 0..7 only */
TRM_INLINE int8x16_t vshlq_s8(int8x16_t a, int8x16_t n) {
  for (int i = 0; i < 16; i++) a.v[i] = (int8_t)(uint8_t)((uint8_t)a.v[i] << n.v[i]);
  return a;
}
TRM_INLINE int8x16_t vshrq_n_s8(int8x16_t a, int n) {
  for (int i = 0; i < 16; i++) a.v[i] = (int8_t)(a.v[i] >> n);
  return a;
}
TRM_INLINE int8x16_t vreinterpretq_s8_u16(uint16x8_t a) {  /* little-endian lane order, as on the core */
  int8x16_t r;
  for (int i = 0; i < 8; i++) {
    r.v[2 * i] = (int8_t)(a.v[i] & 0xFF);
    r.v[2 * i + 1] = (int8_t)(a.v[i] >> 8);
  }
  return r;
}
TRM_INLINE uint16x8_t vdupq_n_u16(uint16_t x) {
  uint16x8_t r;
  for (int i = 0; i < 8; i++) r.v[i] = x;
  return r;
}
/* 32-bit lanes (predicate: 4 bits per lane) */
typedef struct { int32_t v[4]; } int32x4_t;
typedef struct { uint32_t v[4]; } uint32x4_t;
TRM_INLINE int trm_lane32(mve_pred16_t p, int i) { return (p >> (4 * i)) & 1; }
TRM_INLINE mve_pred16_t vctp32q(uint32_t n) { return n >= 4 ? 0xFFFF : (mve_pred16_t)((1u << (4 * n)) - 1); }
TRM_INLINE int32x4_t vldrwq_s32(const int32_t *p) {
  int32x4_t r;
  for (int i = 0; i < 4; i++) r.v[i] = p[i];
  return r;
}
TRM_INLINE int32x4_t vdupq_n_s32(int32_t x) { int32x4_t r = {{x, x, x, x}}; return r; }
TRM_INLINE int32x4_t vsetq_lane_s32(int32_t x, int32x4_t a, int lane) {
  a.v[lane] = x;
  return a;
}
TRM_INLINE uint32x4_t vidupq_n_u32(uint32_t a, int imm) {
  uint32x4_t r;
  for (int i = 0; i < 4; i++) r.v[i] = a + (uint32_t)(i * imm);
  return r;
}
TRM_INLINE uint32x4_t vmulq_n_u32(uint32x4_t a, uint32_t b) {
  for (int i = 0; i < 4; i++) a.v[i] *= b;
  return a;
}
TRM_INLINE int32x4_t vmulhq_s32(int32x4_t a, int32x4_t b) { /* high 32 bits of the 64-bit product */
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)(((int64_t)a.v[i] * b.v[i]) >> 32);
  return a;
}
TRM_INLINE int32x4_t vrmulhq_s32(int32x4_t a, int32x4_t b) { /* the same, rounded: + 2^31 first */
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)(((int64_t)a.v[i] * b.v[i] + 0x80000000LL) >> 32);
  return a;
}
TRM_INLINE int32x4_t vaddq_n_s32(int32x4_t a, int32_t b) {
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)((uint32_t)a.v[i] + (uint32_t)b);
  return a;
}
TRM_INLINE int32_t trm_shl32(int32_t x, int32_t n) { /* VSHL's lane shift: left if n >= 0, else arithmetic right */
  return n >= 0 ? (int32_t)((uint32_t)x << n) : x >> -n;
}
TRM_INLINE int32x4_t vshlq_r_s32(int32x4_t a, int32_t n) {
  for (int i = 0; i < 4; i++) a.v[i] = trm_shl32(a.v[i], n);
  return a;
}
TRM_INLINE int32x4_t vsubq_s32(int32x4_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)((uint32_t)a.v[i] - (uint32_t)b.v[i]);
  return a;
}
TRM_INLINE int32x4_t vaddq_s32(int32x4_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)((uint32_t)a.v[i] + (uint32_t)b.v[i]);
  return a;
}
TRM_INLINE int64_t vmlaldavaq_s32(int64_t acc, int32x4_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) acc += (int64_t)a.v[i] * b.v[i];
  return acc;
}
TRM_INLINE int32_t vmladavq_s8(int8x16_t a, int8x16_t b) { return vmladavaq_s8(0, a, b); }
/* element-wise ops: 4 int8 widened to int32 lanes and back, products, rounding shifts, byte gathers */
TRM_INLINE int32x4_t vldrbq_s32(const int8_t *p) {
  int32x4_t r;
  for (int i = 0; i < 4; i++) r.v[i] = p[i];
  return r;
}
TRM_INLINE void vstrbq_s32(int8_t *p, int32x4_t a) {
  for (int i = 0; i < 4; i++) p[i] = (int8_t)(a.v[i] & 0xFF);
}
TRM_INLINE void vstrwq_s32(int32_t *p, int32x4_t a) {
  for (int i = 0; i < 4; i++) p[i] = a.v[i];
}
TRM_INLINE int32x4_t vmulq_s32(int32x4_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)((uint32_t)a.v[i] * (uint32_t)b.v[i]);
  return a;
}
TRM_INLINE int32x4_t vmulq_n_s32(int32x4_t a, int32_t b) { return vmulq_s32(a, vdupq_n_s32(b)); }
TRM_INLINE int32x4_t vmlaq_n_s32(int32x4_t add, int32x4_t a, int32_t b) {
  for (int i = 0; i < 4; i++) add.v[i] = (int32_t)((uint32_t)add.v[i] + (uint32_t)a.v[i] * (uint32_t)b);
  return add;
}
/* rounding shift per lane or by a register; the kernels shift right only (n < 0): (a + 2^(-n-1)) >> -n, no overflow */
TRM_INLINE int32x4_t vrshlq_s32(int32x4_t a, int32x4_t n) {
  for (int i = 0; i < 4; i++) a.v[i] = (int32_t)(((int64_t)a.v[i] + ((int64_t)1 << (-n.v[i] - 1))) >> -n.v[i]);
  return a;
}
TRM_INLINE int32x4_t vrshlq_n_s32(int32x4_t a, int32_t n) { return vrshlq_s32(a, vdupq_n_s32(n)); }
typedef struct { uint8_t v[16]; } uint8x16_t;
TRM_INLINE uint8x16_t vldrbq_u8(const uint8_t *p) {
  uint8x16_t r;
  for (int i = 0; i < 16; i++) r.v[i] = p[i];
  return r;
}
TRM_INLINE void vstrbq_u8(uint8_t *p, uint8x16_t a) {
  for (int i = 0; i < 16; i++) p[i] = a.v[i];
}
TRM_INLINE uint8x16_t veorq_u8(uint8x16_t a, uint8x16_t b) {
  for (int i = 0; i < 16; i++) a.v[i] ^= b.v[i];
  return a;
}
TRM_INLINE uint8x16_t vdupq_n_u8(uint8_t x) {
  uint8x16_t r;
  for (int i = 0; i < 16; i++) r.v[i] = x;
  return r;
}
/* lane i = base[offset[i]] */
TRM_INLINE uint8x16_t vldrbq_gather_offset_u8(const uint8_t *base, uint8x16_t offset) {
  for (int i = 0; i < 16; i++) offset.v[i] = base[offset.v[i]];
  return offset;
}
/* saturating shift left by a register or an immediate (the kernels' counts are 0..24) */
TRM_INLINE int32_t trm_qshl32(int32_t a, int32_t n) {
  int64_t x = (int64_t)a * ((int64_t)1 << n);
  return x > INT32_MAX ? INT32_MAX : (x < INT32_MIN ? INT32_MIN : (int32_t)x);
}
TRM_INLINE int32x4_t vqshlq_r_s32(int32x4_t a, int32_t n) {
  for (int i = 0; i < 4; i++) a.v[i] = trm_qshl32(a.v[i], n);
  return a;
}
TRM_INLINE int32x4_t vqshlq_n_s32(int32x4_t a, int n) { return vqshlq_r_s32(a, n); }
/* a folded with the lanes' minimum / maximum */
TRM_INLINE int32_t vminvq_s32(int32_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) a = b.v[i] < a ? b.v[i] : a;
  return a;
}
TRM_INLINE int32_t vmaxvq_s32(int32_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) a = b.v[i] > a ? b.v[i] : a;
  return a;
}
/* high word of the doubled product, floor(a*b / 2^31); saturates only for INT32_MIN * INT32_MIN (the kernels
 * never pass INT32_MIN as b) */
TRM_INLINE int32x4_t vqdmulhq_s32(int32x4_t a, int32x4_t b) {
  for (int i = 0; i < 4; i++) {
    int64_t x = ((int64_t)a.v[i] * b.v[i]) >> 31;
    a.v[i] = x > INT32_MAX ? INT32_MAX : (int32_t)x;
  }
  return a;
}
TRM_INLINE int32x4_t vqdmulhq_n_s32(int32x4_t a, int32_t b) { return vqdmulhq_s32(a, vdupq_n_s32(b)); }
TRM_INLINE int32x4_t vshrq_n_s32(int32x4_t a, int n) {
  for (int i = 0; i < 4; i++) a.v[i] >>= n;
  return a;
}
/* byte i of base + offset[i] = low byte of lane i, active lanes only */
TRM_INLINE void vstrbq_scatter_offset_p_s32(int8_t *base, uint32x4_t offset, int32x4_t value, mve_pred16_t p) {
  for (int i = 0; i < 4; i++)
    if (trm_lane32(p, i)) base[offset.v[i]] = (int8_t)(value.v[i] & 0xFF);
}
TRM_INLINE void vstrbq_scatter_offset_s32(int8_t *base, uint32x4_t offset, int32x4_t value) {
  vstrbq_scatter_offset_p_s32(base, offset, value, 0xFFFF);
}
#endif

#endif
