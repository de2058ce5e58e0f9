/* trm-tvm kernel interface: one signature per op, shared by every back end.
 *
 * Naming: trm_<op>_<dtype>_<variant>. dtype: s8 (int8 weights/activations), s4 (packed int4 weights, int8
 * activations), s32 (int32 input or output where stated). variant: ref (plain C straight from the spec:
 * kernels/reference/), dsp (Cortex-M DSP extension: SMLAD/SXTB16), mve (Helium, Cortex-M55), and generated
 * names for the tvm back end. Every variant implements docs/integer-spec.md exactly (0 LSB difference) and is
 * tested against the same vectors as its ref twin.
 *
 * Shapes are row-major. `scratch` is arena memory the executor reserves for kernels that need it (size from the
 * back end's scratch function in Python); ref kernels take NULL. No kernel allocates or keeps state.
 * `bias` may be NULL (the linear layers inside `net` have none).
 */
#ifndef TRM_KERNELS_H
#define TRM_KERNELS_H
#include <stdint.h>

/* rq(v, M, sh) = (v*M + 2^(sh-1)) >> sh in int64, arithmetic shift; sh in [1, 62]. */
static inline int32_t trm_rq(int64_t v, int32_t mult, int32_t shift) {
  return (int32_t)((v * (int64_t)mult + ((int64_t)1 << (shift - 1))) >> shift);
}
static inline int8_t trm_sat8(int32_t v) { return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v)); }
static inline int16_t trm_sat16(int32_t v) { return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }

#define TRM_DECLARE_KERNELS(variant)                                                                          \
  /* out[t][o] = sat8(rq(bias[o] + sum_k in[t][k]*w[o][k], mult[o], shift[o])); w: [n_out][n_in] */           \
  void trm_linear_s8_##variant(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,    \
                               const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out,            \
                               void *scratch);                                                                \
  /* the same with packed int4 weights: row stride (n_in+1)/2 bytes, element 2j low nibble, 2j+1 high */      \
  void trm_linear_s4_##variant(const int8_t *in, const uint8_t *w, const int32_t *bias, const int32_t *mult,   \
                               const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out,            \
                               void *scratch);

/* Ops outside the linear layers: one plain implementation, used by every back end unless it brings its own. */
/* int8 out: out[i] = sat8((sum_j in[j][i]*m[j] + 2^(s-1)) >> s), s >= 1 */
void trm_add_s8_ref(const int8_t *const *in, const int32_t *m, int n_in, int32_t s, int8_t *out, int len);
/* int32 out (residual feeding RMSNorm): out[i] = sum_j in[j][i]*m[j] */
void trm_add_s32_ref(const int8_t *const *in, const int32_t *m, int n_in, int32_t *out, int len);
void trm_mul_s8_ref(const int8_t *a, const int8_t *b, int32_t mult, int32_t shift, int8_t *out, int len);
void trm_lut_s8_ref(const int8_t *in, const int8_t *table, int8_t *out, int len);
/* integer RMSNorm over the last axis, see docs/integer-spec.md */
void trm_rmsnorm_s32_ref(const int32_t *in, int64_t eps, const int32_t *mult, const int32_t *shift,
                         int8_t *out, int tokens, int dim);
void trm_transpose_s8_ref(const int8_t *in, int8_t *out, int rows, int cols);
/* p[d] = sat8(rq(sum_t in[t][d], mult, shift)) */
void trm_mean_pool_s8_ref(const int8_t *in, int32_t mult, int32_t shift, int8_t *out, int tokens, int dim);
/* heads: int8 weights, int16 logits */
void trm_head_s8_ref(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, int16_t *out, int tokens, int n_in, int n_out);
/* series input [channels][samples] -> patches [samples/patch][channels*patch], feature index c*patch+i */
void trm_patch_s8_ref(const int8_t *in, int8_t *out, int channels, int samples, int patch);
/* token input: out[t] = table[digit[t]] */
void trm_embed_s8_ref(const uint8_t *digits, const int8_t *table, int8_t *out, int tokens, int dim);
/* argmax, ties to the lowest index */
int trm_argmax_s16_ref(const int16_t *x, int len);

TRM_DECLARE_KERNELS(ref)

#endif
