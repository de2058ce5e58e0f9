"""TIR building blocks shared by the strategies: the spec's rounding and saturation as TIR expressions."""
from __future__ import annotations

from tvm import tirx


def i64(x):
    return tirx.Cast("int64", x)


def rq(v, mult, shift):
    """rq(v, M, sh) = (v*M + 2^(sh-1)) >> sh, in int64 with an arithmetic shift (docs/integer-spec.md)."""
    sh = i64(shift)
    one = tirx.const(1, "int64")
    return tirx.shift_right(i64(v) * i64(mult) + tirx.shift_left(one, sh - one), sh)


def sat(v, dtype: str):
    """Clamp an int64 expression to the range of int8/int16 and cast."""
    bits = {"int8": 8, "int16": 16}[dtype]
    lo, hi = tirx.const(-(1 << (bits - 1)), "int64"), tirx.const((1 << (bits - 1)) - 1, "int64")
    return tirx.Cast(dtype, tirx.max(tirx.min(v, hi), lo))


def s4_nibble(byte_u8, k):
    """Element k of a packed-int4 row from its byte: low nibble for even k, high for odd; sign-extended by
    mask arithmetic (no shifts on negative values)."""
    w = tirx.Cast("int32", byte_u8)
    nib = tirx.if_then_else(tirx.floormod(k, 2) == 0, tirx.bitwise_and(w, 15), tirx.shift_right(w, 4))
    return nib - tirx.bitwise_and(nib, 8) * 2


def rq_sat(v, mult, shift, dtype: str, ssat: bool = False, sh32: bool = False):
    """sat(rq(v, M, sh)) with a cheap exact branch for sh >= 33 (the usual linear multipliers):
    rq = ((p >> (sh-1)) + 1) >> 1 (floor divisions compose), and p >> (sh-1) is the high word of p = v*M shifted
    by sh-33, so that branch is one long multiply and int32 shifts and saturation (|p| < 2^62: the +1 cannot
    overflow); `ssat`: that saturation is the SSAT instruction (trm_ssat8/16 of kernels/tvm/trm_acle.h).
    `sh32`: a second branch for sh == 32 (rq_sat_sh32), for kernels shared by layers of either encoding.
    Other shifts take the int64 form."""
    p = i64(v) * i64(mult)
    hi = tirx.Cast("int32", tirx.shift_right(p, tirx.const(32, "int64")))
    fast = tirx.shift_right(tirx.shift_right(hi, shift - 33) + 1, 1)
    bits = {"int8": 8, "int16": 16}[dtype]
    lo, hi_ = tirx.const(-(1 << (bits - 1)), "int32"), tirx.const((1 << (bits - 1)) - 1, "int32")
    fast_sat = tirx.call_extern("int32", f"trm_ssat{bits}", fast) if ssat else tirx.max(tirx.min(fast, hi_), lo)
    slow = sat(rq(v, mult, shift), dtype)
    if sh32:
        slow = tirx.if_then_else(shift == 32, rq_sat_sh32(v, mult, dtype, ssat), slow)
    return tirx.if_then_else(shift >= 33, tirx.Cast(dtype, fast_sat), slow)


def rq_sat_sh32(v, mult, dtype: str, ssat: bool = False):
    """sat(rq(v, M, 32)) for int32 v: the rounded high word (p + 2^31) >> 32 of p = v*M, exact (|p| <= 2^62) --
    one SMMULR (`ssat`: trm_smmulr and SSAT, kernels/tvm/trm_acle.h), else the int64 sum and a constant shift.
    For kernels whose every shift is 32 (linear multipliers encoded at shift 32, spec.encode_multiplier_shift32)."""
    bits = {"int8": 8, "int16": 16}[dtype]
    if ssat:
        return tirx.Cast(dtype, tirx.call_extern("int32", f"trm_ssat{bits}",
                                                 tirx.call_extern("int32", "trm_smmulr", v, mult)))
    p = i64(v) * i64(mult)
    return sat(tirx.shift_right(p + tirx.const(1 << 31, "int64"), tirx.const(32, "int64")), dtype)


def rq_high(v, mult, shift):
    """rq(v, M, sh) for sh >= 33 in int32 (docs/kernels.md): 2^(sh-1) is a multiple of 2^32, so
    rq = (hi32(v*M) + 2^(sh-33)) >> (sh-32) -- exact, |hi32| <= 2^30 and 2^(sh-33) <= 2^29 cannot wrap (sh <= 62).
    The high word plus the rounding constant is one SMMLA (trm_smmla, kernels/tvm/trm_acle.h)."""
    round_ = tirx.shift_left(tirx.const(1, "int32"), shift - 33)
    return tirx.shift_right(tirx.call_extern("int32", "trm_smmla", v, mult, round_), shift - 32)
