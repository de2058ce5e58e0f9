"""Strategy for the integer RMSNorm of docs/integer-spec.md, exact in TIR.

Per token: ss = eps + sum r^2 (int64); d = isqrt(ss) by the digit-by-digit method (32 fixed steps, one result
bit each, no division, no float); b = bit_length(d) (33 compare steps); inv = 2^(b+29) / d (one 64/64 division);
n_k = (r_k*inv + 2^(b+13)) >> (b+14); out_k = sat8(rq(n_k, M_k, sh_k)).
The per-token scalars live in 1-element buffers (registers after C compilation), never in token-sized scratch.

Knob `int32` (default on; off = the plain int64 form above, the naive level), what the hand-written kernels do
(docs/kernels.md "Element-wise"), exact per the spec:
  - isqrt starts at the highest power of 4 <= ss, 4^m with m = (bit_length(ss) - 1) / 2 (trm_bit_length64: CLZ),
    instead of 2^62, and m gives b = m + 1 without the 33 compares (4^m <= ss < 4^(m+1) => 2^m <= d < 2^(m+1));
  - step 4 in int32: b <= 18: r * 2^(18-b) fits 19 bits and ((r << (18-b)) * inv + 2^31) >> 32 is the same
    rounding (the rounded high word, SMMULR: trm_smmulr); b >= 19: 2^(b+13) is a multiple of 2^32, so
    n = (hi32(r*inv) + 2^(b-19)) >> (b-18) (SMMLA: trm_smmla) -- the branch is taken once per token;
  - step 5, when every channel's shift is >= 33 (checked once per call): (hi32(n*M) + 2^(sh-33)) >> (sh-32) by
    SMMLA, ASR and SSAT (trm_smmla / trm_ssat8 of kernels/tvm/trm_acle.h; docs/kernels.md "Both requantise
    exactly"); else the spec's int64 rq.
Knob `mve` (Helium boards, set by the back end; dim % 4 == 0): the sum of squares 4 lanes per VMLALDAVA
(trm_mve_sumsq4) and, when every shift is in 33..56, steps 4-5 on 4 channels per trm_mve_rms_s8x4 (per-lane M and
shift, the VQSHL/VSHR narrow).
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import tirx
from tvm.script import tirx as T

from trm_tvm.compile.strategies.common import rq, rq_high, sat

NAIVE: dict = {"int32": False, "mve": False}


@dataclass(frozen=True)
class RMSNormShape:
    tokens: int
    dim: int

    @property
    def key(self) -> str:
        return f"rmsnorm_{self.tokens}x{self.dim}"


def scratch_bytes(s: RMSNormShape, knobs: dict) -> int:
    return 0


def schedule(s: RMSNormShape, knobs: dict) -> tirx.PrimFunc:
    if knobs.get("int32"):
        return int32_func(s, bool(knobs.get("mve")) and s.dim % 4 == 0)
    return int64_func(s)


def int64_func(s: RMSNormShape) -> tirx.PrimFunc:
    L, D = s.tokens, s.dim
    @T.prim_func
    def rmsnorm(r: T.Buffer((L, D), "int32"), eps: T.int64, mult: T.Buffer((D,), "int32"),
                shift: T.Buffer((D,), "int32"), out: T.Buffer((L, D), "int8")):
        T.func_attr({"tirx.noalias": True})
        ss = T.alloc_buffer((1,), "int64")
        res = T.alloc_buffer((1,), "int64")
        bit = T.alloc_buffer((1,), "int64")
        nb = T.alloc_buffer((1,), "int64")
        for t in range(L):
            ss[0] = eps
            for k in range(D):
                ss[0] = ss[0] + T.Cast("int64", r[t, k]) * T.Cast("int64", r[t, k])
            if ss[0] == T.int64(0):
                for k in range(D):
                    out[t, k] = T.int8(0)
            else:
                # d = isqrt(ss): ss is consumed as the remainder, res collects the root
                res[0] = T.int64(0)
                for i in range(32):
                    bit[0] = T.shift_left(T.int64(1), T.Cast("int64", 62 - 2 * i))
                    if ss[0] >= res[0] + bit[0]:
                        ss[0] = ss[0] - (res[0] + bit[0])
                        res[0] = T.shift_right(res[0], T.int64(1)) + bit[0]
                    else:
                        res[0] = T.shift_right(res[0], T.int64(1))
                nb[0] = T.int64(0)
                for i in range(33):
                    if T.shift_right(res[0], T.Cast("int64", i)) > T.int64(0):
                        nb[0] = T.Cast("int64", i + 1)
                # inv = 2^(b+29) / d, kept in ss
                ss[0] = T.truncdiv(T.shift_left(T.int64(1), nb[0] + T.int64(29)), res[0])
                for k in range(D):
                    out[t, k] = T.Cast("int8", T.max(T.min(
                        T.shift_right(T.shift_right(
                            T.Cast("int64", r[t, k]) * ss[0] + T.shift_left(T.int64(1), nb[0] + T.int64(13)),
                            nb[0] + T.int64(14)) * T.Cast("int64", mult[k])
                            + T.shift_left(T.int64(1), T.Cast("int64", shift[k]) - T.int64(1)),
                            T.Cast("int64", shift[k])),
                        T.int64(127)), T.int64(-128)))

    return rmsnorm


def int32_func(s: RMSNormShape, mve: bool = False) -> tirx.PrimFunc:
    L, D = s.tokens, s.dim
    D4 = D // 4

    @T.prim_func
    def rmsnorm(r: T.Buffer((L, D), "int32"), eps: T.int64, mult: T.Buffer((D,), "int32"),
                shift: T.Buffer((D,), "int32"), out: T.Buffer((L, D), "int8")):
        T.func_attr({"tirx.noalias": True})
        ss = T.alloc_buffer((1,), "int64")
        res = T.alloc_buffer((1,), "int64")
        bit = T.alloc_buffer((1,), "int64")
        m = T.alloc_buffer((1,), "int32")
        inv = T.alloc_buffer((1,), "int32")
        high = T.alloc_buffer((1,), "int32")
        high[0] = 2 if mve else 1   # 2: every shift in 33..56 (Helium lanes), 1: every shift >= 33, 0: else
        for k in range(D):
            if shift[k] < 33:
                high[0] = 0
            elif shift[k] > 56 and high[0] == 2:
                high[0] = 1
        for t in range(L):
            ss[0] = eps
            if mve:
                for k in range(D4):
                    ss[0] = T.call_extern("int64", "trm_mve_sumsq4", T.address_of(r[t, k * 4]), ss[0])
            else:
                for k in range(D):
                    ss[0] = ss[0] + T.Cast("int64", r[t, k]) * T.Cast("int64", r[t, k])
            if ss[0] == T.int64(0):
                for k in range(D):
                    out[t, k] = T.int8(0)
            else:
                # the highest power of 4 <= ss is 4^m (one CLZ pair, trm_acle.h)
                m[0] = T.shift_right(T.call_extern("int32", "trm_bit_length64", ss[0]) - 1, 1)
                # d = isqrt(ss) from bit 4^m down: ss is consumed as the remainder, res collects the root
                res[0] = T.int64(0)
                for i in T.serial(m[0] + 1):
                    bit[0] = T.shift_left(T.int64(1), T.Cast("int64", 2 * (m[0] - i)))
                    if ss[0] >= res[0] + bit[0]:
                        ss[0] = ss[0] - (res[0] + bit[0])
                        res[0] = T.shift_right(res[0], T.int64(1)) + bit[0]
                    else:
                        res[0] = T.shift_right(res[0], T.int64(1))
                # b = m + 1; inv = 2^(b+29) / d
                inv[0] = T.Cast("int32", T.truncdiv(T.shift_left(T.int64(1), T.Cast("int64", m[0] + 30)), res[0]))
                if high[0] == 2:
                    for k in range(D4):
                        T.evaluate(T.call_extern("int32", "trm_mve_rms_s8x4", T.address_of(out[t, k * 4]),
                                                 T.address_of(r[t, k * 4]), inv[0], m[0], T.address_of(mult[k * 4]),
                                                 T.address_of(shift[k * 4])))
                elif m[0] + 1 <= 18:
                    if high[0] >= 1:
                        for k in range(D):
                            out[t, k] = _rq_high(_q15_small(r[t, k], inv[0], m[0]), mult[k], shift[k])
                    else:
                        for k in range(D):
                            out[t, k] = _rq_any(_q15_small(r[t, k], inv[0], m[0]), mult[k], shift[k])
                else:
                    if high[0] >= 1:
                        for k in range(D):
                            out[t, k] = _rq_high(_q15_large(r[t, k], inv[0], m[0]), mult[k], shift[k])
                    else:
                        for k in range(D):
                            out[t, k] = _rq_any(_q15_large(r[t, k], inv[0], m[0]), mult[k], shift[k])

    return rmsnorm


def _q15_small(r, inv, m):
    """Step 4 for b = m + 1 <= 18: the rounded high word of r * 2^(18-b) * inv (SMMULR)."""
    return T.call_extern("int32", "trm_smmulr", r * T.shift_left(1, 17 - m), inv)


def _q15_large(r, inv, m):
    """Step 4 for b = m + 1 >= 19: (hi32(r * inv) + 2^(b-19)) >> (b-18) (SMMLA, ASR)."""
    return T.shift_right(T.call_extern("int32", "trm_smmla", r, inv, T.shift_left(1, m - 18)), m - 17)


def _rq_high(n, mult, shift):
    """sat8(rq(n, M, sh)) for sh >= 33 in int32, saturated by SSAT (kernels/tvm/trm_acle.h)."""
    return T.Cast("int8", T.call_extern("int32", "trm_ssat8", rq_high(n, mult, shift)))


def _rq_any(n, mult, shift):
    return sat(rq(n, mult, shift), "int8")
