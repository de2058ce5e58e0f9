"""Strategy for the integer RMSNorm of docs/integer-spec.md, exact in TIR.

Per token: ss = eps + sum r^2 (int64); d = isqrt(ss) by the digit-by-digit method (32 fixed steps, one result
bit each, no division, no float); b = bit_length(d) (33 compare steps); inv = 2^(b+29) / d (one 64/64 division);
n_k = (r_k*inv + 2^(b+13)) >> (b+14); out_k = sat8(rq(n_k, M_k, sh_k)).
The per-token scalars live in 1-element buffers (registers after C compilation), never in token-sized scratch.
No knobs yet (naive == default): the kernel is a small share of the cycles next to the linear layers.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import tirx
from tvm.script import tirx as T

NAIVE: dict = {}


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
