/* CORE-V / Xpulp SIMD operations used by the TVM-generated per-core kernels (trm_tvm/gap9/tir_kernels.py) through
 * call_extern. Not kernels: the loops around them are TVM's.
 *
 * trm_cv_sdotsp4(a, b, acc) = acc + a.b0*b.b0 + a.b1*b.b1 + a.b2*b.b2 + a.b3*b.b3: the four signed bytes of two
 * words multiplied lane by lane and summed into a 32-bit accumulator that wraps around like the instruction
 * (cv.sdotsp.b / pv.sdotsp.b, one cycle on the cluster cores).
 * - GAP SDK build (TRM_GAP9_SDK, the SDK's PULP GCC): the builtin __builtin_pulp_sdotsp4(v4s x, v4s y, int acc),
 *   which the GAP SDK exposes as gap_sumdotp4 (GreenWaves-Technologies/gap_sdk,
 *   tools/autotiler_v3/Emulation/GapBuiltins.h; doc/source/reference/builtins "Dot Products").
 *   The project's syntax check here has no PULP GCC: it declares the builtin's prototype (TRM_CV_DECLARE_BUILTINS).
 * - Everywhere else (the functional build on QEMU, host tests): an exact C emulation, tested against numpy
 *   (tests/test_gap9_corev.py).
 * Functions, not macros: TVM's C code generator declares every call_extern callee. */
#ifndef TRM_COREV_H
#define TRM_COREV_H
#include <stdint.h>

#if defined(TRM_GAP9_SDK) && !defined(TRM_GAP9_COMPAT)
typedef signed char trm_v4s __attribute__((vector_size(4)));
#ifdef TRM_CV_DECLARE_BUILTINS
int __builtin_pulp_sdotsp4(trm_v4s x, trm_v4s y, int acc);
#endif
static inline int32_t trm_cv_sdotsp4(int32_t a, int32_t b, int32_t acc) {
  return __builtin_pulp_sdotsp4((trm_v4s)a, (trm_v4s)b, acc);
}
#else
static inline int32_t trm_cv_sdotsp4(int32_t a, int32_t b, int32_t acc) {
  uint32_t sum = (uint32_t)acc;
  for (int i = 0; i < 32; i += 8) /* byte lanes as signed: the conversion keeps the low 8 bits (GCC: modulo) */
    sum += (uint32_t)((int32_t)(int8_t)(uint8_t)((uint32_t)a >> i) * (int32_t)(int8_t)(uint8_t)((uint32_t)b >> i));
  return (int32_t)sum;
}
#endif

#endif
