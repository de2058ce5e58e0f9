/* Arm ACLE DSP intrinsics used by TVM-generated kernels (call_extern "__sxtb16" / "__smlad" / "trm_sxtb16_ror8" /
 * "trm_pkhbt" / "trm_pkhtb" / "trm_ssat8" / "trm_ssat16").
 * On a core with the DSP extension they are single instructions from <arm_acle.h>; elsewhere (host tests)
 * exact C emulations of the same instructions. Not a kernel: one instruction each. */
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
static inline int32_t trm_ssat16(int32_t x) { return x < -32768 ? -32768 : x > 32767 ? 32767 : x; }
#endif
#endif
