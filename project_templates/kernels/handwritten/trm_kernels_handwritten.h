/* The hand-written back end: dsp kernels (Cortex-M4/M7/M33, Arm DSP extension) and mve kernels (Cortex-M55,
 * Helium), same signatures as their ref twins in ../trm_kernels.h. Naming, blocking and the scratch contract:
 * docs/kernels.md. Each *_scratch_bytes(tokens, n_in, n_out) is the `scratch` a call needs (any alignment);
 * trm_tvm/compile/backends/handwritten.py computes the same number for the executor's arena plan. */
#ifndef TRM_KERNELS_HANDWRITTEN_H
#define TRM_KERNELS_HANDWRITTEN_H
#include "trm_kernels.h"

TRM_DECLARE_KERNELS(dsp)
TRM_DECLARE_KERNELS(mve)

/* bytes of `scratch` one call of trm_linear_<dtype>_<variant> needs */
int trm_linear_s8_dsp_scratch_bytes(int tokens, int n_in, int n_out);
int trm_linear_s4_dsp_scratch_bytes(int tokens, int n_in, int n_out);
int trm_linear_s8_mve_scratch_bytes(int tokens, int n_in, int n_out);
int trm_linear_s4_mve_scratch_bytes(int tokens, int n_in, int n_out);

#endif
