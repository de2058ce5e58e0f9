/* The hand-written back end: dsp kernels (Cortex-M4/M7/M33, Arm DSP extension) and mve kernels (Cortex-M55,
 * Helium), same signatures as their ref twins in ../trm_kernels.h. Naming, blocking and the scratch contract:
 * docs/kernels.md. Each *_scratch_bytes(tokens, n_in, n_out) is the `scratch` a call needs (any alignment);
 * trm_tvm/compile/backends/handwritten.py computes the same number for the executor's arena plan. */
#ifndef TRM_KERNELS_HANDWRITTEN_H
#define TRM_KERNELS_HANDWRITTEN_H
#include "trm_kernels.h"

/* The k lengths (n_in = 16, 32, ..., 96) with an unrolled linear instance: bit n_in / 16 of TRM_HW_S8_KS /
 * TRM_HW_S4_KS. A model's build sets them to the lengths its linear calls use (build.json "defines"); any other
 * length takes the rolled loops, so a clear bit costs speed, never exactness. Undefined: every instance. */
#ifndef TRM_HW_S8_KS
#define TRM_HW_S8_KS 0x7e
#endif
#ifndef TRM_HW_S4_KS
#define TRM_HW_S4_KS 0x7e
#endif
#define TRM_HW_KS_s8 TRM_HW_S8_KS
#define TRM_HW_KS_s4 TRM_HW_S4_KS
#define TRM_HW_UNROLLED(dtype, n_in) ((TRM_HW_KS_##dtype >> ((n_in) / 16)) & 1) /* dtype: s8 | s4 */

TRM_DECLARE_KERNELS(dsp)
TRM_DECLARE_KERNELS(mve)

/* element-wise ops (trm_ops_dsp.c): the DSP extension, also on the Cortex-M55 */
void trm_add_s8_dsp(const int8_t *const *in, const int32_t *m, int n_in, int32_t s, int8_t *out, int len);
void trm_add_s32_dsp(const int8_t *const *in, const int32_t *m, int n_in, int32_t *out, int len);
void trm_mul_s8_dsp(const int8_t *a, const int8_t *b, int32_t mult, int32_t shift, int8_t *out, int len);
void trm_lut_s8_dsp(const int8_t *in, const int8_t *table, int8_t *out, int len);
void trm_rmsnorm_s32_dsp(const int32_t *in, int64_t eps, const int32_t *mult, const int32_t *shift, int8_t *out,
                         int tokens, int dim);
/* out[c*rows + r] = in[r*cols + c] (token mixing), 4 x 4 byte blocks */
void trm_transpose_s8_dsp(const int8_t *in, int8_t *out, int rows, int cols);
/* RMSNorm steps 2-3 of one token (ss > 0): returns b = bit_length(isqrt(ss)), *inv = 2^(b+29) / isqrt(ss) */
int trm_rmsnorm_scale(int64_t ss, int32_t *inv);

/* the element-wise ops with Helium (trm_kernels_mve.c) */
void trm_add_s8_mve(const int8_t *const *in, const int32_t *m, int n_in, int32_t s, int8_t *out, int len);
void trm_add_s32_mve(const int8_t *const *in, const int32_t *m, int n_in, int32_t *out, int len);
void trm_mul_s8_mve(const int8_t *a, const int8_t *b, int32_t mult, int32_t shift, int8_t *out, int len);
void trm_lut_s8_mve(const int8_t *in, const int8_t *table, int8_t *out, int len);
void trm_rmsnorm_s32_mve(const int32_t *in, int64_t eps, const int32_t *mult, const int32_t *shift, int8_t *out,
                         int tokens, int dim);

/* bytes of `scratch` one call of trm_linear_<dtype>_<variant> needs */
int trm_linear_s8_dsp_scratch_bytes(int tokens, int n_in, int n_out);
int trm_linear_s4_dsp_scratch_bytes(int tokens, int n_in, int n_out);
int trm_linear_s8_mve_scratch_bytes(int tokens, int n_in, int n_out);
int trm_linear_s4_mve_scratch_bytes(int tokens, int n_in, int n_out);

#endif
