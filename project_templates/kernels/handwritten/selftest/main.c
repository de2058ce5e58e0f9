/* Kernel self-test and benchmark firmware (semihosting), built by trm_tvm/compile/backends/handwritten_bench.py.
 *
 * TRM_VARIANT (dsp | mve) names the hand-written kernels under test; the ref twins are linked beside them.
 * Self-test (default): TRM_CASES random cases generated here from the shared seeded PRNG (xorshift32, mirrored in
 * Python), each run through the hand-written and the ref kernel, s8 and s4, with buffers offset 0-3 bytes; one
 * line per case with the CRC-32 of each output, which the host compares with trm_tvm.quant.spec on the same
 * regenerated case. Bench (-DTRM_BENCH): each kernel at the model's shapes, SysTick ticks around one call (the
 * host runs QEMU with -icount, so ticks are executed instructions times a constant). */
#include <stdint.h>
#include "trm_kernels_handwritten.h"

void trm_puts(const char *s);
void trm_systick_start(void);
uint32_t trm_systick(void);

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define HW(op) CAT(op, TRM_VARIANT)
#define SCRATCH_BYTES(dtype) CAT(CAT(CAT(trm_linear_, dtype), TRM_VARIANT), _scratch_bytes)

/* ---- the shared PRNG and output ---------------------------------------------------------------------------- */
static uint32_t prng = 1;
static uint32_t next(void) {
  prng ^= prng << 13;
  prng ^= prng >> 17;
  prng ^= prng << 5;
  return prng;
}
static int32_t range(int32_t lo, int32_t hi) { return lo + (int32_t)(next() % (uint32_t)(hi - lo + 1)); }

__attribute__((unused)) static uint32_t crc32(const int8_t *p, int n) {
  uint32_t c = 0xFFFFFFFFu;
  for (int i = 0; i < n; i++) {
    c ^= (uint8_t)p[i];
    for (int b = 0; b < 8; b++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

static char line[160];
static int pos;
static void put_str(const char *s) {
  while (*s) line[pos++] = *s++;
}
static void put_hex(uint32_t v) {
  line[pos++] = ' ';
  for (int i = 7; i >= 0; i--) line[pos++] = "0123456789abcdef"[(v >> (4 * i)) & 15];
}
static void flush(void) {
  line[pos++] = '\n';
  line[pos] = 0;
  trm_puts(line);
  pos = 0;
}

typedef void (*linear_s8_fn)(const int8_t *, const int8_t *, const int32_t *, const int32_t *, const int32_t *,
                             int8_t *, int, int, int, void *);
typedef void (*linear_s4_fn)(const int8_t *, const uint8_t *, const int32_t *, const int32_t *, const int32_t *,
                             int8_t *, int, int, int, void *);

static void pack_s4(const int8_t *w, uint8_t *p, int n_out, int n_in) {
  int stride = (n_in + 1) / 2;
  for (int o = 0; o < n_out; o++)
    for (int j = 0; j < stride; j++) {
      int lo = w[o * n_in + 2 * j], hi = 2 * j + 1 < n_in ? w[o * n_in + 2 * j + 1] : 0;
      p[o * stride + j] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
    }
}

#ifndef TRM_BENCH
/* ---- self-test ---------------------------------------------------------------------------------------------- */
#define MAX_T 9
#define MAX_IN 100
#define MAX_OUT 20
static int8_t a_buf[MAX_T * MAX_IN + 4], w8_buf[MAX_OUT * MAX_IN + 4], w4[MAX_OUT * MAX_IN], out_buf[MAX_T * MAX_OUT + 4];
static uint8_t w4p_buf[MAX_OUT * MAX_IN / 2 + MAX_OUT + 4];
static uint8_t scratch_buf[2 * 112 * (MAX_T + 1) + 64 + 4]; /* >= every variant's need, + offset */
static int32_t bias[MAX_OUT], mult8[MAX_OUT], shift8[MAX_OUT], mult4[MAX_OUT], shift4[MAX_OUT];

static int8_t value(int extreme, int lo, int hi) { return (int8_t)(extreme ? (next() & 1 ? hi : lo) : range(lo, hi)); }

static int bit_length(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

/* per-channel (M, sh) around +-200 output, with rounding ties (M = 2^p, small sh), negative multipliers and
 * shifts 31-33 (mostly saturating); in a third of the calls the rows carry the same multipliers encoded at sh = 32
 * (the dsp kernels' SMMULR runs of rows), every 8th row still a tie with a small shift (a run ends there) */
static void requant(int32_t *mult, int32_t *shift, int n_out, int base) {
  int at32 = range(0, 2) == 0;
  for (int o = 0; o < n_out; o++) {
    int kind = range(0, 7);
    if (at32 && kind != 0) {
      int sh = base + range(-1, 2);
      mult[o] = range(1 << 30, 0x7FFFFFFF) >> (sh > 32 ? sh - 32 : 0);
      if (kind == 1) mult[o] = -mult[o];
      shift[o] = 32;
    } else if (kind == 0) {
      int p = range(0, 3);
      mult[o] = 1 << p;
      shift[o] = p + range(1, 3);
    } else {
      mult[o] = range(1 << 30, 0x7FFFFFFF);
      if (kind == 1) mult[o] = -mult[o];
      shift[o] = kind == 2 ? range(31, 33) : base + range(-1, 2); /* 31..33: each requantisation path */
    }
  }
}

static uint32_t run_s8(linear_s8_fn fn, const int8_t *a, const int8_t *w, int8_t *out, void *scratch, int tokens,
                       int n_in, int n_out) {
  for (int k = 0; k < tokens * n_out; k++) out[k] = 0x5A; /* a kernel that skips an output cannot pass */
  fn(a, w, bias, mult8, shift8, out, tokens, n_in, n_out, scratch);
  return crc32(out, tokens * n_out);
}

static uint32_t run_s4(linear_s4_fn fn, const int8_t *a, const uint8_t *w, int8_t *out, void *scratch,
                       int tokens, int n_in, int n_out) {
  for (int k = 0; k < tokens * n_out; k++) out[k] = 0x5A;
  fn(a, w, bias, mult4, shift4, out, tokens, n_in, n_out, scratch);
  return crc32(out, tokens * n_out);
}

/* ---- element-wise ops (dsp: trm_ops_dsp.c; mve: trm_kernels_mve.c): O lines -------------------------------- */
#define TRM_OPS_SEED 0x0B5EEDu /* the op cases' own PRNG stream: the linear cases stay as they were */
#define MAX_N 70
#define MAX_DIM 60
static int8_t x_buf[3][MAX_N + 4], table_buf[256 + 4], o8_buf[3 * MAX_DIM + 4];
static int32_t o32[MAX_N], r_buf[3 * MAX_DIM], m_add[3], mult_r[MAX_DIM], shift_r[MAX_DIM];
/* the transpose: up to 48 x 48 (the model's 16/32 x 48 and back), input and output offsets drawn apart */
#define MAX_T_SIDE 48
static const int model_transposes[4][2] = {{16, 48}, {48, 16}, {32, 48}, {48, 32}};
static int8_t t_in_buf[MAX_T_SIDE * MAX_T_SIDE + 4], t_out_buf[MAX_T_SIDE * MAX_T_SIDE + 8];
static int t_rows, t_cols, t_in_off, t_out_off;

typedef void (*add_s8_fn)(const int8_t *const *, const int32_t *, int, int32_t, int8_t *, int);
typedef void (*add_s32_fn)(const int8_t *const *, const int32_t *, int, int32_t *, int);
typedef void (*mul_fn)(const int8_t *, const int8_t *, int32_t, int32_t, int8_t *, int);
typedef void (*lut_fn)(const int8_t *, const int8_t *, int8_t *, int);
typedef void (*rms_fn)(const int32_t *, int64_t, const int32_t *, const int32_t *, int8_t *, int, int);
typedef void (*transpose_fn)(const int8_t *, int8_t *, int, int);

static void clear(int8_t *o, int n) {
  for (int k = 0; k < n; k++) o[k] = 0x5A;
}

/* one case: CRCs of add_s8, add_s32, mul, lut, rmsnorm, transpose of one variant on the same vectors */
static void run_ops(add_s8_fn add8, add_s32_fn add32, mul_fn mul, lut_fn lut, rms_fn rms, transpose_fn transpose,
                    const int8_t *const *x, int n_in, int n, int32_t s, int32_t mult, int32_t shift, int8_t *o, int off,
                    int tokens, int dim, int64_t eps) {
  clear(o, n);
  add8(x, m_add, n_in, s, o, n);
  put_hex(crc32(o, n));
  for (int k = 0; k < n; k++) o32[k] = 0x5A5A5A5A;
  add32(x, m_add, n_in, o32, n);
  put_hex(crc32((const int8_t *)o32, 4 * n));
  clear(o, n);
  mul(x[0], x[1], mult, shift, o, n);
  put_hex(crc32(o, n));
  clear(o, n);
  lut(x[0], table_buf + off, o, n);
  put_hex(crc32(o, n));
  clear(o, tokens * dim);
  rms(r_buf, eps, mult_r, shift_r, o, tokens, dim);
  put_hex(crc32(o, tokens * dim));
  /* the CRC spans the output offset's bytes before and 4 bytes after it: a stray write changes it */
  int t_n = t_rows * t_cols;
  clear(t_out_buf, t_out_off + t_n + 4);
  transpose(t_in_buf + t_in_off, t_out_buf + t_out_off, t_rows, t_cols);
  put_hex(crc32(t_out_buf, t_out_off + t_n + 4));
}

static void ops_case(int i) {
  int n = range(1, MAX_N), n_in = range(2, 3), off = i % 4, extreme = range(0, 7) == 0;
  const int8_t *x[3];
  for (int j = 0; j < 3; j++) {
    for (int k = 0; k < n; k++) x_buf[j][off + k] = value(extreme, -128, 127);
    x[j] = x_buf[j] + off;
  }
  for (int j = 0; j < 3; j++) m_add[j] = range(0, (1 << 15) - 1);
  int32_t s = range(1, 30), mult, shift;
  requant(&mult, &shift, 1, 38 + range(-1, 2));
  for (int k = 0; k < 256; k++) table_buf[off + k] = (int8_t)range(-128, 127);
  /* half the RMSNorm cases with what the vector paths take: dim a multiple of 4, every shift in 33..56 */
  int vec = range(0, 1), tokens = range(1, 3), dim = vec ? 4 * range(1, MAX_DIM / 4) : range(1, MAX_DIM);
  int mag = range(0, 24);
  for (int k = 0; k < tokens * dim; k++) r_buf[k] = range(-(1 << mag) + 1, (1 << mag) - 1);
  int64_t eps = range(0, 2) == 0 ? 0 : range(0, 1 << 20);
  if (vec)
    for (int k = 0; k < dim; k++) {
      int32_t m = range(1 << 30, 0x7FFFFFFF);
      mult_r[k] = range(0, 1) ? m : -m;
      shift_r[k] = range(33, 44);
    }
  else
    requant(mult_r, shift_r, dim, 36 + range(0, 6));
  int model_shape = range(0, 7) == 0, which = range(0, 3);
  t_rows = model_shape ? model_transposes[which][0] : range(1, MAX_T_SIDE);
  t_cols = model_shape ? model_transposes[which][1] : range(1, MAX_T_SIDE);
  t_in_off = off, t_out_off = range(0, 3);
  for (int e = 0; e < t_rows * t_cols; e++) t_in_buf[t_in_off + e] = value(extreme, -128, 127);
  put_str("O");
  put_hex((uint32_t)i);
  /* the board's variants (the transpose has only a dsp one, on the M55 too) */
  run_ops(HW(trm_add_s8_), HW(trm_add_s32_), HW(trm_mul_s8_), HW(trm_lut_s8_), HW(trm_rmsnorm_s32_),
          trm_transpose_s8_dsp, x, n_in, n, s, mult, shift, o8_buf + off, off, tokens, dim, eps);
  run_ops(trm_add_s8_ref, trm_add_s32_ref, trm_mul_s8_ref, trm_lut_s8_ref, trm_rmsnorm_s32_ref, trm_transpose_s8_ref,
          x, n_in, n, s, mult, shift, o8_buf + off, off, tokens, dim, eps);
  flush();
}

int main(void) {
  prng = TRM_SEED;
  for (int i = 0; i < TRM_CASES; i++) {
    int tokens = range(1, MAX_T), n_in = range(0, 2) ? range(1, MAX_IN) : 16 * range(1, MAX_IN / 16);
    int n_out = range(1, MAX_OUT), off = i % 4; /* a third of the cases at the k lengths the dsp kernels unroll */
    int extreme = range(0, 7) == 0;
    int8_t *a = a_buf + off, *w8 = w8_buf + off, *out = out_buf + off;
    uint8_t *w4p = w4p_buf + off;
    void *scratch = scratch_buf + off;
    for (int k = 0; k < tokens * n_in; k++) a[k] = value(extreme, -128, 127);
    for (int k = 0; k < n_out * n_in; k++) w8[k] = value(extreme, -128, 127);
    for (int k = 0; k < n_out * n_in; k++) w4[k] = value(extreme, -8, 7);
    for (int o = 0; o < n_out; o++) bias[o] = range(-(1 << 20), 1 << 20);
    requant(mult8, shift8, n_out, 34 + bit_length((uint32_t)n_in) / 2);
    requant(mult4, shift4, n_out, 31 + bit_length((uint32_t)n_in) / 2);
    pack_s4(w4, w4p, n_out, n_in);
    put_str("C");
    put_hex((uint32_t)i);
    put_hex(run_s8(HW(trm_linear_s8_), a, w8, out, scratch, tokens, n_in, n_out));
    put_hex(run_s8(trm_linear_s8_ref, a, w8, out, 0, tokens, n_in, n_out));
    put_hex(run_s4(HW(trm_linear_s4_), a, w4p, out, scratch, tokens, n_in, n_out));
    put_hex(run_s4(trm_linear_s4_ref, a, w4p, out, 0, tokens, n_in, n_out));
    flush();
  }
  prng = TRM_SEED ^ TRM_OPS_SEED;
  for (int i = 0; i < TRM_CASES; i++) ops_case(i);
  trm_puts("done\n");
  return 0;
}

#else
/* ---- benchmark ---------------------------------------------------------------------------------------------- */
static const int shapes[][3] = {TRM_BENCH_SHAPES};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))
#define MAX_ELEMS 8192
static int8_t a[MAX_ELEMS], w8[MAX_ELEMS], w4[MAX_ELEMS], out[MAX_ELEMS];
static uint8_t w4p[MAX_ELEMS], scratch[2 * MAX_ELEMS + 64];
static int32_t bias[256], mult[256], shift[256], mult32[256], shift32[256];

/* the same call with an empty body: the measurement's own overhead */
__attribute__((noinline)) static void empty_linear(const int8_t *in, const int8_t *w, const int32_t *b,
                                                   const int32_t *m, const int32_t *s, int8_t *o, int tokens,
                                                   int n_in, int n_out, void *scr) {
  (void)in, (void)w, (void)b, (void)m, (void)s, (void)o, (void)tokens, (void)n_in, (void)n_out, (void)scr;
  __asm__ volatile("");
}

static void report(const char *name, const int *shape, uint32_t ticks) {
  put_str("B ");
  put_str(name);
  for (int i = 0; i < 3; i++) put_hex((uint32_t)shape[i]);
  put_hex(ticks);
  flush();
}

/* marks for the host's timing plugin (per-class counts of each measured call): entered just around the call */
__attribute__((noinline)) void trm_bench_begin(void) { __asm__ volatile(""); }
__attribute__((noinline)) void trm_bench_end(void) { __asm__ volatile(""); }

#define MEASURE(name, call)                                                   \
  do {                                                                        \
    uint32_t t0 = trm_systick();                                              \
    trm_bench_begin();                                                        \
    call;                                                                     \
    trm_bench_end();                                                          \
    uint32_t t1 = trm_systick();                                              \
    report(name, shapes[s], (t0 - t1) & 0xFFFFFF);                            \
  } while (0)

int main(void) {
  prng = TRM_SEED;
  trm_systick_start();
  for (int s = 0; s < N_SHAPES; s++) {
    int tokens = shapes[s][0], n_in = shapes[s][1], n_out = shapes[s][2];
    if (tokens * n_in > MAX_ELEMS || n_out * n_in > MAX_ELEMS || tokens * n_out > MAX_ELEMS || n_out > 256 ||
        SCRATCH_BYTES(s4_)(tokens, n_in, n_out) > (int)sizeof scratch ||
        SCRATCH_BYTES(s8_)(tokens, n_in, n_out) > (int)sizeof scratch) {
      put_str("E shape too large");
      flush();
      return 3;
    }
    for (int k = 0; k < tokens * n_in; k++) a[k] = (int8_t)range(-128, 127);
    for (int k = 0; k < n_out * n_in; k++) w8[k] = (int8_t)range(-128, 127), w4[k] = (int8_t)range(-8, 7);
    /* the same real multiplier 2^-10 in two encodings: the spec's (M in [2^30, 2^31)) and with sh fixed at 32 */
    for (int o = 0; o < n_out; o++)
      bias[o] = range(-1000, 1000), mult[o] = 1 << 30, shift[o] = 40, mult32[o] = 1 << 22, shift32[o] = 32;
    pack_s4(w4, w4p, n_out, n_in);
    MEASURE("empty", empty_linear(a, w8, bias, mult, shift, out, tokens, n_in, n_out, scratch));
    MEASURE("s8_hw", HW(trm_linear_s8_)(a, w8, bias, mult, shift, out, tokens, n_in, n_out, scratch));
    MEASURE("s4_hw", HW(trm_linear_s4_)(a, w4p, bias, mult, shift, out, tokens, n_in, n_out, scratch));
    MEASURE("s8_hw_s32", HW(trm_linear_s8_)(a, w8, bias, mult32, shift32, out, tokens, n_in, n_out, scratch));
    MEASURE("s4_hw_s32", HW(trm_linear_s4_)(a, w4p, bias, mult32, shift32, out, tokens, n_in, n_out, scratch));
    MEASURE("s8_ref", trm_linear_s8_ref(a, w8, bias, mult, shift, out, tokens, n_in, n_out, 0));
    MEASURE("s4_ref", trm_linear_s4_ref(a, w4p, bias, mult, shift, out, tokens, n_in, n_out, 0));
  }
  trm_puts("done\n");
  return 0;
}
#endif
