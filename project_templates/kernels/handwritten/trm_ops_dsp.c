/* Hand-written element-wise kernels for cores with the Arm DSP extension (Cortex-M4/M7/M33 and the Cortex-M55,
 * which has it beside Helium): the residual add, the SwiGLU product, the LUT activation, the per-element part of
 * RMSNorm and the token-mixing transpose. Exactly docs/integer-spec.md, like their ref twins in
 * ../reference/trm_kernels_ref.c.
 *
 * Four elements per turn from one word of each int8 operand: SXTB16 splits a word into (e0,e2) and (e1,e3)
 * halfword pairs, so two int8 operands become SMLAD/SMULBB operands without a byte load per element; the
 * requantisations with shift >= 33 are one SMMLA and one ASR (trm_requant.h). Tails and the rare small shifts
 * take the plain per-element path. */
#include <stddef.h>
#include "trm_kernels_handwritten.h"
#include "trm_requant.h"
#include "trm_simd.h"

/* ---- add: v = sum_j in_j * m_j, m_j in [0, 2^15) (int16), operands taken two at a time by SMLAD ---------- */

/* v[0..3] += the 4 elements at i of inputs j and j+1 times (m_j, m_j+1) */
TRM_INLINE void trm_add_pair4(const int8_t *a, const int8_t *b, uint32_t m_pair, int32_t v[4]) {
  uint32_t x = trm_read_u32(a), y = trm_read_u32(b);
  uint32_t x02 = trm_sxtb16(x), x13 = trm_sxtb16_ror8(x), y02 = trm_sxtb16(y), y13 = trm_sxtb16_ror8(y);
  v[0] = trm_smlad(trm_pkhbt16(x02, y02), m_pair, v[0]);
  v[1] = trm_smlad(trm_pkhbt16(x13, y13), m_pair, v[1]);
  v[2] = trm_smlad(trm_pkhtb16(y02, x02), m_pair, v[2]);
  v[3] = trm_smlad(trm_pkhtb16(y13, x13), m_pair, v[3]);
}

/* the sums of the 4 elements at i (i + 4 <= len) */
TRM_INLINE void trm_add_sums4(const int8_t *const *in, const int32_t *m, int n_in, int i, int32_t v[4]) {
  v[0] = v[1] = v[2] = v[3] = 0;
  int j = 0;
  for (; j + 2 <= n_in; j += 2)
    trm_add_pair4(in[j] + i, in[j + 1] + i, (uint32_t)m[j] | (uint32_t)m[j + 1] << 16, v);
  if (j < n_in)
    for (int e = 0; e < 4; e++) v[e] += (int32_t)in[j][i + e] * m[j];
}

TRM_INLINE int32_t trm_add_sum1(const int8_t *const *in, const int32_t *m, int n_in, int i) {
  int32_t v = 0;
  for (int j = 0; j < n_in; j++) v += (int32_t)in[j][i] * m[j];
  return v;
}

void trm_add_s32_dsp(const int8_t *const *in, const int32_t *m, int n_in, int32_t *out, int len) {
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    int32_t v[4];
    trm_add_sums4(in, m, n_in, i, v);
    out[i] = v[0], out[i + 1] = v[1], out[i + 2] = v[2], out[i + 3] = v[3];
  }
  for (; i < len; i++) out[i] = trm_add_sum1(in, m, n_in, i);
}

/* sat8((v + 2^(s-1)) >> s); |v| < 2^24 (int8 operands, m < 2^15, n_in <= 3 in the model; the spec keeps v in
 * int32), so the rounded sum cannot wrap */
TRM_INLINE int8_t trm_add_round(int32_t v, int32_t s) {
  return (int8_t)trm_ssat8((int32_t)(((int64_t)v + ((int64_t)1 << (s - 1))) >> s));
}

void trm_add_s8_dsp(const int8_t *const *in, const int32_t *m, int n_in, int32_t s, int8_t *out, int len) {
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    int32_t v[4];
    trm_add_sums4(in, m, n_in, i, v);
    for (int e = 0; e < 4; e++) out[i + e] = trm_add_round(v[e], s);
  }
  for (; i < len; i++) out[i] = trm_add_round(trm_add_sum1(in, m, n_in, i), s);
}

/* ---- mul: sat8(rq(a * b, M, sh)), one (M, sh) for the tensor ---------------------------------------------- */

void trm_mul_s8_dsp(const int8_t *a, const int8_t *b, int32_t mult, int32_t shift, int8_t *out, int len) {
  trm_requant_t q = trm_requant_init(&mult, &shift, 0);
  int i = 0;
  if (q.shift >= 33) {
    int32_t s = q.shift - 32;
    for (; i + 4 <= len; i += 4) {
      uint32_t x = trm_read_u32(a + i), y = trm_read_u32(b + i);
      uint32_t x02 = trm_sxtb16(x), x13 = trm_sxtb16_ror8(x), y02 = trm_sxtb16(y), y13 = trm_sxtb16_ror8(y);
      out[i] = (int8_t)trm_ssat8(trm_smmla(trm_smulbb(x02, y02), q.mult, q.round) >> s);
      out[i + 1] = (int8_t)trm_ssat8(trm_smmla(trm_smulbb(x13, y13), q.mult, q.round) >> s);
      out[i + 2] = (int8_t)trm_ssat8(trm_smmla(trm_smultt(x02, y02), q.mult, q.round) >> s);
      out[i + 3] = (int8_t)trm_ssat8(trm_smmla(trm_smultt(x13, y13), q.mult, q.round) >> s);
    }
  }
  for (; i < len; i++) out[i] = trm_requant((int32_t)a[i] * b[i], q);
}

/* ---- lut: table[q + 128]; q + 128 is q's byte with the top bit flipped ------------------------------------ */

void trm_lut_s8_dsp(const int8_t *in, const int8_t *table, int8_t *out, int len) {
  const uint8_t *t = (const uint8_t *)table;
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t x = trm_read_u32(in + i) ^ 0x80808080u;
    uint32_t y = (uint32_t)t[x & 0xFF] | (uint32_t)t[(x >> 8) & 0xFF] << 8 | (uint32_t)t[(x >> 16) & 0xFF] << 16 |
                 (uint32_t)t[x >> 24] << 24;
    trm_write_u32(out + i, y);
  }
  for (; i < len; i++) out[i] = table[in[i] + 128];
}

/* ---- transpose: out[c*rows + r] = in[r*cols + c], the token mixing ----------------------------------------- */

/* swap byte 1 of *lo with byte 0 of *hi and byte 3 of *lo with byte 2 of *hi (a 2 x 2 byte transpose in each
 * halfword pair): 4 instructions, the shifts ride on the EORs */
TRM_INLINE void trm_swap_bytes_2x2(uint32_t *lo, uint32_t *hi) {
  uint32_t x = (*lo ^ *hi << 8) & 0xFF00FF00u;
  *lo ^= x, *hi ^= x >> 8;
}

/* the 4 x 4 block at in (row stride cols) to out (row stride rows) in 4 word loads and 4 word stores instead of 16
 * byte moves: PKHBT/PKHTB transpose the 2 x 2 halfwords of rows 0/2 and 1/3, then the bytes inside each halfword
 * pair swap; aij = byte j of row i */
TRM_INLINE void trm_transpose4x4(const int8_t *in, int cols, int8_t *out, int rows) {
  uint32_t a0 = trm_read_u32(in), a1 = trm_read_u32(in + cols), a2 = trm_read_u32(in + 2 * cols),
           a3 = trm_read_u32(in + 3 * cols);
  uint32_t t0 = trm_pkhbt16(a0, a2), t1 = trm_pkhbt16(a1, a3); /* a00 a01 a20 a21, a10 a11 a30 a31 */
  uint32_t t2 = trm_pkhtb16(a2, a0), t3 = trm_pkhtb16(a3, a1); /* a02 a03 a22 a23, a12 a13 a32 a33 */
  trm_swap_bytes_2x2(&t0, &t1);                                /* a00 a10 a20 a30, a01 a11 a21 a31 */
  trm_swap_bytes_2x2(&t2, &t3);
  trm_write_u32(out, t0);
  trm_write_u32(out + rows, t1);
  trm_write_u32(out + 2 * rows, t2);
  trm_write_u32(out + 3 * rows, t3);
}

void trm_transpose_s8_dsp(const int8_t *in, int8_t *out, int rows, int cols) {
  int rows4 = rows & ~3, cols4 = cols & ~3;
  for (int r = 0; r < rows4; r += 4)
    for (int c = 0; c < cols4; c += 4)
      trm_transpose4x4(in + (size_t)r * cols + c, cols, out + (size_t)c * rows + r, rows);
  for (int c = cols4; c < cols; c++) /* the last cols % 4 columns of the blocks' rows */
    for (int r = 0; r < rows4; r++) out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
  for (int r = rows4; r < rows; r++) /* the last rows % 4 rows */
    for (int c = 0; c < cols; c++) out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
}

/* ---- rmsnorm ----------------------------------------------------------------------------------------------- */

TRM_INLINE int trm_bit_length64(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

/* floor(sqrt(x)), exact: one result bit per step from the highest one x can have */
static uint32_t trm_isqrt64(uint64_t x) {
  uint64_t res = 0, bit = (uint64_t)1 << ((trm_bit_length64(x) - 1) & ~1);
  for (; bit; bit >>= 2) {
    if (x >= res + bit) {
      x -= res + bit;
      res = (res >> 1) + bit;
    } else {
      res >>= 1;
    }
  }
  return (uint32_t)res;
}

/* n = (r * inv + 2^(b+13)) >> (b+14) without 64-bit arithmetic (|r| <= d < 2^b, inv <= 2^30):
 * b <= 18: r << (18-b) fits in 19 bits and (r*2^(18-b)*inv + 2^31) >> 32 is the same rounding -- one SMMULR;
 * b >= 19: the rounding constant is a multiple of 2^32 (trm_requant.h) -- SMMLA and ASR. */
TRM_INLINE int32_t trm_rms_q15(int32_t r, int32_t inv, int b) {
  if (b <= 18) return trm_smmulr((int32_t)((uint32_t)r << (18 - b)), inv);
  return trm_smmla(r, inv, (int32_t)1 << (b - 19)) >> (b - 18);
}

/* steps 2-3 of a token (ss > 0): b = bit_length(isqrt(ss)), *inv = 2^(b+29) / isqrt(ss) */
int trm_rmsnorm_scale(int64_t ss, int32_t *inv) {
  uint32_t d = trm_isqrt64((uint64_t)ss); /* < 2^31: |r| < 2^24 and D <= 2^14 keep ss below 2^62 */
  int b = trm_bit_length64(d);
  *inv = (int32_t)(((int64_t)1 << (b + 29)) / d);
  return b;
}

/* steps 4-5 of one token when every shift is >= 33: the Q15 path chosen once (SMALL: b <= 18), per channel one
 * SMMLA and one ASR (trm_requant.h) */
TRM_INLINE void trm_rmsnorm_high(const int32_t *r, int32_t inv, int b, const int32_t *mult, const int32_t *shift,
                                 int8_t *o, int dim, int small) {
  for (int k = 0; k < dim; k++) {
    int32_t n = small ? trm_smmulr((int32_t)((uint32_t)r[k] << (18 - b)), inv)
                      : trm_smmla(r[k], inv, (int32_t)1 << (b - 19)) >> (b - 18);
    o[k] = (int8_t)trm_ssat8(trm_smmla(n, mult[k], (int32_t)1 << (shift[k] - 33)) >> (shift[k] - 32));
  }
}

void trm_rmsnorm_s32_dsp(const int32_t *in, int64_t eps, const int32_t *mult, const int32_t *shift, int8_t *out,
                         int tokens, int dim) {
  int high = 1;
  for (int k = 0; k < dim; k++) high &= shift[k] >= 33;
  for (int t = 0; t < tokens; t++) {
    const int32_t *r = in + (size_t)t * dim;
    int8_t *o = out + (size_t)t * dim;
    int64_t ss = eps;
    for (int k = 0; k < dim; k++) ss += (int64_t)r[k] * r[k]; /* SMLAL */
    if (ss == 0) {
      for (int k = 0; k < dim; k++) o[k] = 0;
      continue;
    }
    int32_t inv;
    int b = trm_rmsnorm_scale(ss, &inv);
    if (high && b <= 18)
      trm_rmsnorm_high(r, inv, b, mult, shift, o, dim, 1);
    else if (high)
      trm_rmsnorm_high(r, inv, b, mult, shift, o, dim, 0);
    else
      for (int k = 0; k < dim; k++) o[k] = trm_requant(trm_rms_q15(r[k], inv, b), trm_requant_init(mult, shift, k));
  }
}
