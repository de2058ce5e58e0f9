/* Reference kernels: plain C99 straight from docs/integer-spec.md, one loop nest per op, no tricks.
 * Every other back end (tvm, dsp, mve, gap9) is tested against these and against trm_tvm/quant/spec.py. */
#include <stddef.h>
#include "trm_kernels.h"

/* Packed int4: byte j of a row holds element 2j (low nibble) and 2j+1 (high nibble), two's complement. */
static inline int32_t trm_w_s4(const uint8_t *row, int k) {
  int32_t nib = (row[k >> 1] >> ((k & 1) * 4)) & 15;
  return nib - ((nib & 8) << 1);
}
static inline int32_t trm_w_s8(const int8_t *row, int k) { return row[k]; }

/* One template for every weight format and output width: acc = bias + in . w, then requantise and saturate.
 * ROW_BYTES: bytes per weight row; LOAD: element k of a row; SAT: saturation to the output type. */
#define TRM_LINEAR_REF(name, wtype, otype, ROW_BYTES, LOAD, SAT)                                            \
  static void name(const int8_t *in, const wtype *w, const int32_t *bias, const int32_t *mult,                \
                   const int32_t *shift, otype *out, int tokens, int n_in, int n_out) {                      \
    for (int t = 0; t < tokens; t++) {                                                                       \
      const int8_t *a = in + (size_t)t * n_in;                                                               \
      for (int o = 0; o < n_out; o++) {                                                                      \
        const wtype *row = w + (size_t)o * (ROW_BYTES);                                                      \
        int32_t acc = bias ? bias[o] : 0;                                                                    \
        for (int k = 0; k < n_in; k++) acc += (int32_t)a[k] * LOAD(row, k);                                  \
        out[(size_t)t * n_out + o] = SAT(trm_rq(acc, mult[o], shift[o]));                                   \
      }                                                                                                      \
    }                                                                                                        \
  }

TRM_LINEAR_REF(linear_s8, int8_t, int8_t, n_in, trm_w_s8, trm_sat8)
TRM_LINEAR_REF(linear_s4, uint8_t, int8_t, (n_in + 1) / 2, trm_w_s4, trm_sat8)
TRM_LINEAR_REF(head_s8, int8_t, int16_t, n_in, trm_w_s8, trm_sat16)

void trm_linear_s8_ref(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  (void)scratch;
  linear_s8(in, w, bias, mult, shift, out, tokens, n_in, n_out);
}

void trm_linear_s4_ref(const int8_t *in, const uint8_t *w, const int32_t *bias, const int32_t *mult,
                       const int32_t *shift, int8_t *out, int tokens, int n_in, int n_out, void *scratch) {
  (void)scratch;
  linear_s4(in, w, bias, mult, shift, out, tokens, n_in, n_out);
}

void trm_head_s8_ref(const int8_t *in, const int8_t *w, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, int16_t *out, int tokens, int n_in, int n_out) {
  head_s8(in, w, bias, mult, shift, out, tokens, n_in, n_out);
}

static int32_t add_sum(const int8_t *const *in, const int32_t *m, int n_in, int i) {
  int32_t v = 0;
  for (int j = 0; j < n_in; j++) v += (int32_t)in[j][i] * m[j];
  return v;
}

void trm_add_s8_ref(const int8_t *const *in, const int32_t *m, int n_in, int32_t s, int8_t *out, int len) {
  for (int i = 0; i < len; i++)
    out[i] = trm_sat8((int32_t)(((int64_t)add_sum(in, m, n_in, i) + ((int64_t)1 << (s - 1))) >> s));
}

void trm_add_s32_ref(const int8_t *const *in, const int32_t *m, int n_in, int32_t *out, int len) {
  for (int i = 0; i < len; i++) out[i] = add_sum(in, m, n_in, i);
}

void trm_mul_s8_ref(const int8_t *a, const int8_t *b, int32_t mult, int32_t shift, int8_t *out, int len) {
  for (int i = 0; i < len; i++) out[i] = trm_sat8(trm_rq((int32_t)a[i] * b[i], mult, shift));
}

void trm_lut_s8_ref(const int8_t *in, const int8_t *table, int8_t *out, int len) {
  for (int i = 0; i < len; i++) out[i] = table[in[i] + 128];
}

/* floor(sqrt(x)), exact: one result bit per step, from the top. */
static uint64_t isqrt64(uint64_t x) {
  uint64_t res = 0, bit = (uint64_t)1 << 62;
  while (bit > x) bit >>= 2;
  while (bit) {
    if (x >= res + bit) {
      x -= res + bit;
      res = (res >> 1) + bit;
    } else {
      res >>= 1;
    }
    bit >>= 2;
  }
  return res;
}

static int bit_length(uint64_t v) {
  int b = 0;
  while (v) { b++; v >>= 1; }
  return b;
}

void trm_rmsnorm_s32_ref(const int32_t *in, int64_t eps, const int32_t *mult, const int32_t *shift,
                         int8_t *out, int tokens, int dim) {
  for (int t = 0; t < tokens; t++) {
    const int32_t *r = in + (size_t)t * dim;
    int8_t *o = out + (size_t)t * dim;
    int64_t ss = eps;
    for (int k = 0; k < dim; k++) ss += (int64_t)r[k] * r[k];
    if (ss == 0) {
      for (int k = 0; k < dim; k++) o[k] = 0;
      continue;
    }
    int64_t d = (int64_t)isqrt64((uint64_t)ss);
    int b = bit_length((uint64_t)d);
    int64_t inv = ((int64_t)1 << (b + 29)) / d;
    for (int k = 0; k < dim; k++) {
      int64_t n = ((int64_t)r[k] * inv + ((int64_t)1 << (b + 13))) >> (b + 14);
      o[k] = trm_sat8(trm_rq(n, mult[k], shift[k]));
    }
  }
}

void trm_transpose_s8_ref(const int8_t *in, int8_t *out, int rows, int cols) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
}

void trm_mean_pool_s8_ref(const int8_t *in, int32_t mult, int32_t shift, int8_t *out, int tokens, int dim) {
  for (int d = 0; d < dim; d++) {
    int32_t sum = 0;
    for (int t = 0; t < tokens; t++) sum += in[(size_t)t * dim + d];
    out[d] = trm_sat8(trm_rq(sum, mult, shift));
  }
}

void trm_patch_s8_ref(const int8_t *in, int8_t *out, int channels, int samples, int patch) {
  int tokens = samples / patch;
  for (int t = 0; t < tokens; t++)
    for (int c = 0; c < channels; c++)
      for (int i = 0; i < patch; i++)
        out[((size_t)t * channels + c) * patch + i] = in[(size_t)c * samples + t * patch + i];
}

void trm_embed_s8_ref(const uint8_t *digits, const int8_t *table, int8_t *out, int tokens, int dim) {
  for (int t = 0; t < tokens; t++)
    for (int d = 0; d < dim; d++) out[(size_t)t * dim + d] = table[(size_t)digits[t] * dim + d];
}

int trm_argmax_s16_ref(const int16_t *x, int len) {
  int best = 0;
  for (int i = 1; i < len; i++)
    if (x[i] > x[best]) best = i;
  return best;
}
