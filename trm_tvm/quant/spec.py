"""The integer spec (docs/integer-spec.md) in numpy: every primitive once, integers only.

Each function mirrors one kernel of project_templates/kernels/trm_kernels.h (`trm_linear_s8_ref` ->
`linear_s8`, ...) and is the reference the C back ends are tested against with 0 LSB difference. Functions take
leading batch axes so the golden model can run many inferences at once. Intermediates are int64; where the C
kernels hold a value in int32, `_check_i32` raises `SpecViolation` instead of silently disagreeing with a C
wrap-around (the quantiser's bounds make that unreachable; the check catches quantiser bugs).

Only the quantiser-side helpers at the bottom (`encode_multiplier`, `encode_multiplier_shift32`, `add_multipliers`,
`residual_multipliers`, `silu_lut`, `eps_int`) and the host-side ones (`quantize_input`, `q_threshold`) use floats:
they turn real scales into the integers the device then uses.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
ADD_MULT_LIMIT = 2 ** 15          # add multipliers are in [0, 2^15)
WIDE_ADD_MULT_LIMIT = 2 ** 23     # study-only 16-bit state: wider input-add multipliers (int64 sums, golden only)
RESIDUAL_SHIFT = 14               # residual scale = max input scale / 2^14
RMS_MAX = 2 ** 24                 # |r| < 2^24 at the RMSNorm input


class SpecViolation(ArithmeticError):
    """A value left the range the spec guarantees (a C kernel would wrap here): a quantiser bug."""


# -- rounding and saturation --------------------------------------------------------------------------------------
def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _check_i32(v: np.ndarray, where: str) -> np.ndarray:
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise SpecViolation(f"{where}: value {int(v.min())}..{int(v.max())} does not fit int32")
    return v


def _dtype_for(bits: int):
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32


def rq(v, mult, shift) -> np.ndarray:
    """(v*M + 2^(sh-1)) >> sh in int64, arithmetic shift: round half up. mult/shift broadcast (per channel)."""
    v, mult, shift = _i64(v), _i64(mult), _i64(shift)
    return (v * mult + np.left_shift(np.int64(1), shift - 1)) >> shift


def sat(v, bits: int) -> np.ndarray:
    """Saturate to signed `bits` bits; returned in the smallest C container (int8 / int16 / int32)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(_i64(v), lo, hi).astype(_dtype_for(bits))


def sat8(v) -> np.ndarray:
    return sat(v, 8)


def sat16(v) -> np.ndarray:
    return sat(v, 16)


def _rq_sat(v, mult, shift, bits: int, where: str) -> np.ndarray:
    return sat(_check_i32(rq(v, mult, shift), where), bits)


# -- packed int4 weights --------------------------------------------------------------------------------------------
def pack_s4(w) -> np.ndarray:
    """int4 values [n_out][n_in] (in [-8, 7]) -> uint8 [n_out][ceil(n_in/2)]: 2j low nibble, 2j+1 high, pad 0."""
    w = _i64(w)
    if w.size and (w.min() < -8 or w.max() > 7):
        raise ValueError(f"int4 weights must be in [-8, 7], got {int(w.min())}..{int(w.max())}")
    n_out, n_in = w.shape
    if n_in % 2:
        w = np.concatenate([w, np.zeros((n_out, 1), np.int64)], axis=1)
    nib = w & 0xF
    return (nib[:, 0::2] | (nib[:, 1::2] << 4)).astype(np.uint8)


def unpack_s4(packed, n_in: int) -> np.ndarray:
    """Inverse of pack_s4: uint8 [n_out][ceil(n_in/2)] -> int8 [n_out][n_in] (two's complement nibbles)."""
    p = np.asarray(packed, dtype=np.uint8).astype(np.int64)
    if p.shape[-1] != (n_in + 1) // 2:
        raise ValueError(f"packed row has {p.shape[-1]} bytes, expected {(n_in + 1) // 2} for n_in={n_in}")
    lo, hi = p & 0xF, p >> 4
    both = np.stack([lo, hi], axis=-1).reshape(p.shape[0], -1)[:, :n_in]
    return ((both ^ 8) - 8).astype(np.int8)


# -- the ops of one net call ----------------------------------------------------------------------------------------
EXACT_F64 = 2 ** 53


def int_matmul(a, w) -> np.ndarray:
    """Exact integer a @ w.T as int64.

    numpy has no integer BLAS, so when every partial sum is provably below 2^53 in magnitude (K * max|a| * max|w|)
    the product runs through float64 BLAS: every product and partial sum is then an integer float64 represents
    exactly, in any summation order or with FMA, so the result is the same integers, 4x faster. Otherwise int64.
    """
    a, w = np.asarray(a), np.asarray(w)
    amax = int(np.abs(a.astype(np.int64)).max()) if a.size else 0
    wmax = int(np.abs(w.astype(np.int64)).max()) if w.size else 0
    if a.shape[-1] * amax * wmax < EXACT_F64:
        return (a.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    return _i64(a) @ _i64(w).T


def linear_s8(a, w, bias, mult, shift, out_bits: int = 8) -> np.ndarray:
    """out[..., t, o] = sat(rq(bias[o] + sum_k a[..., t, k] * w[o, k], mult[o], shift[o])); int32 accumulator."""
    acc = int_matmul(a, w) + _i64(bias)
    return _rq_sat(_check_i32(acc, "linear accumulator"), mult, shift, out_bits, "linear rq")


def linear_s4(a, w_packed, n_in: int, bias, mult, shift, out_bits: int = 8) -> np.ndarray:
    """linear_s8 with packed int4 weights (row stride ceil(n_in/2) bytes)."""
    return linear_s8(a, unpack_s4(w_packed, n_in), bias, mult, shift, out_bits)


def head_s8(a, w, bias, mult, shift) -> np.ndarray:
    """Output / halting heads: linear_s8 with int16 outputs (the logits)."""
    return linear_s8(a, w, bias, mult, shift, out_bits=16)


def add_s8(inputs: Sequence[np.ndarray], m, s: int, out_bits: int = 8, wide: bool = False) -> np.ndarray:
    """sat((sum_i q_i * m_i + 2^(s-1)) >> s): rescaled sum of operands with different scales (broadcasting).

    wide: int64 sum (study-only 16-bit state input add; no device kernel can do this)."""
    return sat(rq(add_s32(inputs, m, wide), 1, s), out_bits)


def add_s32(inputs: Sequence[np.ndarray], m, wide: bool = False) -> np.ndarray:
    """sum_i q_i * m_i kept in int32 (the residual feeding RMSNorm); returned as int64 values."""
    m = _i64(m)
    if len(inputs) != m.size:
        raise ValueError(f"{len(inputs)} inputs but {m.size} multipliers")
    v = sum(_i64(q) * m[i] for i, q in enumerate(inputs))
    return v if wide else _check_i32(v, "add accumulator")


def mul_s8(a, b, mult, shift, out_bits: int = 8) -> np.ndarray:
    """sat(rq(a * b, M, sh)): the SwiGLU product silu(gate) * up."""
    return _rq_sat(_i64(a) * _i64(b), mult, shift, out_bits, "mul rq")


def lut_s8(q, table) -> np.ndarray:
    """table[q + 128]; table is int8[256]."""
    return np.asarray(table, dtype=np.int8)[_i64(q) + 128]


def transpose_s8(a) -> np.ndarray:
    """(rows, cols) -> (cols, rows) on the last two axes, exact."""
    return np.swapaxes(np.asarray(a), -1, -2)


def isqrt(v) -> np.ndarray:
    """Exact floor(sqrt(v)) for int64 v >= 0, elementwise, by integer Newton iteration from above."""
    v = _i64(v)
    if v.size and v.min() < 0:
        raise ValueError("isqrt of a negative number")
    x = np.left_shift(np.int64(1), (bit_length(v) + 1) // 2)       # 2^ceil(b/2) >= sqrt(v)
    while True:
        nxt = (x + v // x) >> 1
        done = (nxt >= x) | (v == 0)
        if done.all():
            return np.where(v == 0, 0, x)
        x = np.where(done, x, nxt)


def bit_length(v) -> np.ndarray:
    """Number of bits of non-negative int64 values (0 for 0), elementwise, by binary search."""
    v = _i64(v)
    b = np.zeros_like(v)
    for step in (32, 16, 8, 4, 2, 1):
        big = (v >> (b + step)) > 0
        b = np.where(big, b + step, b)
    return b + (v > 0)


def rmsnorm_s32(r, eps: int, mult, shift, out_bits: int = 8) -> np.ndarray:
    """Integer RMSNorm over the last axis (docs/integer-spec.md): int32 residual in, Q15 r/d, per-channel rq out."""
    r = _i64(r)
    if r.size and np.abs(r).max() >= RMS_MAX:
        raise SpecViolation(f"rmsnorm input {int(np.abs(r).max())} exceeds 2^24")
    ss = (r * r).sum(axis=-1, keepdims=True) + np.int64(eps)
    d = isqrt(ss)
    b = bit_length(d)
    safe_d = np.where(d == 0, 1, d)
    inv = np.left_shift(np.int64(1), b + 29) // safe_d                 # in (2^29, 2^30]
    n = (r * inv + np.left_shift(np.int64(1), b + 13)) >> (b + 14)      # r / d in Q15
    out = _rq_sat(n, mult, shift, out_bits, "rmsnorm rq")
    return np.where(ss == 0, 0, out).astype(out.dtype)


def mean_pool_s8(y, mult, shift, out_bits: int = 8) -> np.ndarray:
    """p[..., d] = sat(rq(sum_t y[..., t, d], M, sh)) over the token axis (-2)."""
    return _rq_sat(_i64(y).sum(axis=-2), mult, shift, out_bits, "mean_pool rq")


def patch_s8(x, patch: int) -> np.ndarray:
    """Series [..., C, S] -> patches [..., S/P, C*P], feature index c*P + i."""
    x = np.asarray(x)
    *lead, C, S = x.shape
    if S % patch:
        raise ValueError(f"{S} samples is not a multiple of patch {patch}")
    t = x.reshape(*lead, C, S // patch, patch)
    return np.swapaxes(t, -3, -2).reshape(*lead, S // patch, C * patch)


def embed_s8(digits, table) -> np.ndarray:
    """Token input: out[..., t, :] = table[digits[..., t]]."""
    return np.asarray(table, dtype=np.int8)[np.asarray(digits, dtype=np.int64)]


def argmax_s16(x) -> np.ndarray:
    """Argmax over the last axis, ties to the lowest index (numpy's argmax already does this)."""
    return np.argmax(np.asarray(x), axis=-1)


def halt_decision(q, q_thr: int) -> np.ndarray:
    """Stop after this supervision step when q >= q_thr (q int16, q_thr int32)."""
    return _i64(q) >= np.int64(q_thr)


# -- quantiser side: real scales -> device integers -----------------------------------------------------------------
def _round_half_up(x) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def encode_multiplier(m) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers m -> (M int32, sh int32) with M / 2^sh ~ m, M = round(f * 2^31) for m = f * 2^e.

    Sign goes into M; |m| with sh > 62 (too small) or m == 0 gives (0, 1); sh < 1 (|m| >= 2^30) is an error.
    """
    m = np.asarray(m, dtype=np.float64)
    if not np.isfinite(m).all():
        raise ValueError("multiplier is not finite")
    f, e = np.frexp(np.abs(m))
    M = _round_half_up(f * 2.0 ** 31).astype(np.int64)
    carry = M == 2 ** 31
    M = np.where(carry, 2 ** 30, M)
    sh = 31 - (e.astype(np.int64) + carry)
    if (sh[m != 0] < 1).any():
        raise ValueError(f"multiplier {np.abs(m).max():g} too large for the rq encoding (needs < 2^30)")
    tiny = (sh > 62) | (m == 0)
    M = np.where(tiny, 0, np.where(m < 0, -M, M))
    sh = np.where(tiny, 1, sh)
    return M.astype(np.int32), sh.astype(np.int32)


SHIFT32_MIN_MULT = 2 ** 15       # shift-32 multipliers keep >= 16 bits: relative error <= 2^-16 (docs/integer-spec.md)


def encode_multiplier_shift32(m) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers m -> (M, sh) with sh = 32 where it is valid and precise, else `encode_multiplier`'s.

    M = round_half_up(|m| * 2^32) (sign into M) when that is in [SHIFT32_MIN_MULT, 2^31): rq at shift 32 is the
    rounded high word of v*M, one SMMULR (VRMULH) on Arm. Larger |m| would not fit int32; smaller would keep
    fewer than 16 bits of m: those channels (and m == 0) take the normalised encoding.
    """
    m = np.asarray(m, dtype=np.float64)
    M_norm, sh_norm = encode_multiplier(m)             # also refuses non-finite and too-large m
    M32 = _round_half_up(np.abs(m) * 2.0 ** 32)
    fits = (M32 >= SHIFT32_MIN_MULT) & (M32 < 2 ** 31)
    M = np.where(fits, np.where(m < 0, -M32, M32), M_norm)
    return M.astype(np.int32), np.where(fits, 32, sh_norm).astype(np.int32)


LINEAR_MULTIPLIER_ENCODINGS = {"normalised": encode_multiplier, "shift32": encode_multiplier_shift32}


def decode_multiplier(M, sh) -> np.ndarray:
    """The real value M / 2^sh (for study tools and tests)."""
    return np.asarray(M, dtype=np.float64) / np.exp2(np.asarray(sh, dtype=np.float64))


def add_multipliers(in_scales: Sequence[float], out_scale: float, limit: int = ADD_MULT_LIMIT,
                    max_shift: int = 30) -> tuple[np.ndarray, int]:
    """add_s8 parameters: m_i = round(s_i / s_out * 2^s) < limit (2^15) with the largest s in [1, max_shift]."""
    ratios = np.asarray(in_scales, dtype=np.float64) / float(out_scale)
    top = float(ratios.max())
    s = min(max_shift, math.floor(math.log2((limit - 0.5) / top)))
    while s >= 1 and _round_half_up(top * 2.0 ** s) >= limit:
        s -= 1
    if s < 1:
        raise ValueError(f"add input/output scale ratio {top:g} too large (needs < {limit // 2})")
    return _round_half_up(ratios * 2.0 ** s).astype(np.int32), s


def residual_multipliers(in_scales: Sequence[float]) -> tuple[np.ndarray, float]:
    """add_s32 parameters: residual scale s_r = max(s_i) / 2^14, m_i = round(s_i / s_r) (the largest is 2^14)."""
    s = np.asarray(in_scales, dtype=np.float64)
    s_r = float(s.max()) / 2.0 ** RESIDUAL_SHIFT
    return _round_half_up(s / s_r).astype(np.int32), s_r


def eps_int(eps: float, dim: int, residual_scale: float) -> int:
    """RMSNorm epsilon in the residual's integer units: round(D * eps / s_r^2), capped below 2^62."""
    return int(min(_round_half_up(dim * eps / residual_scale ** 2), 2.0 ** 62 - 1))


def rmsnorm_multipliers(gamma, dim: int, out_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (M_k, sh_k) with M_k / 2^sh_k = sqrt(D) * gamma_k / (2^15 * s_out)."""
    return encode_multiplier(math.sqrt(dim) * np.asarray(gamma, np.float64) / (2.0 ** 15 * out_scale))


def silu_lut(in_scale: float, out_scale: float, out_bits: int = 8) -> np.ndarray:
    """int8[256]: table[q + 128] = sat(round_half_up(silu(q * s_in) / s_out)). Once built it *is* the spec."""
    x = np.arange(-128, 128, dtype=np.float64) * in_scale
    silu = x / (1.0 + np.exp(-x))
    return sat(_round_half_up(silu / out_scale), out_bits).astype(np.int8)


# -- host side --------------------------------------------------------------------------------------------------------
def quantize_input(x, scale: float, bits: int = 8) -> np.ndarray:
    """Host conversion of a float input to the device's int8: sat(round_half_up(x / s_in))."""
    return sat(_round_half_up(np.asarray(x, dtype=np.float64) / scale), bits)


def q_threshold(tau: float, q_scale: float) -> int:
    """Probability threshold -> int32 q_thr: 0 -> INT32_MIN (stop after step 1), 1 -> INT32_MAX (never early)."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"halting threshold must be in [0, 1], got {tau}")
    if tau == 0.0:
        return INT32_MIN
    if tau == 1.0:
        return INT32_MAX
    logit = math.log(tau / (1.0 - tau))
    return int(min(max(math.ceil(logit / q_scale), INT32_MIN), INT32_MAX))
