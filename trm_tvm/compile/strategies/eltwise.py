"""Strategies for the small ops around the linear layers: add (int8 or int32 out), mul, LUT, mean_pool,
transpose, patching (series input) and embedding (token input). Semantics: docs/integer-spec.md.

One tensor expression per op. Knobs: `unroll`: split the innermost loop by this factor and unroll it (1 = none;
applied only when it divides the loop); `int32` (mul): when the tensor's shift is >= 33 (checked once per call),
rq in int32 as the hand-written kernels do (docs/kernels.md): (hi32(a*b*M) + 2^(sh-33)) >> (sh-32), one long
multiply, an add, a shift and SSAT (trm_ssat8, kernels/tvm/trm_acle.h); else the spec's int64 rq.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from trm_tvm.compile.strategies.common import i64, rq, rq_high, sat

NAIVE = {"unroll": 1, "int32": False}


@dataclass(frozen=True)
class EltShape:
    op: str          # add_s8 | add_s32 | mul | lut | mean_pool | transpose | patch | embed
    dims: tuple      # add/mul/lut: (len,); mean_pool/transpose: (rows, cols); patch: (channels, samples, patch);
    n_in: int = 1    # embed: (tokens, dim, vocab); add: number of inputs

    @property
    def key(self) -> str:
        n = f"_n{self.n_in}" if self.op.startswith("add") else ""
        return f"{self.op}{n}_{'x'.join(map(str, self.dims))}"


def _int8(shape, name):
    return te.placeholder(shape, "int8", name=name)


def _add(s: EltShape):
    (n,) = s.dims
    ins = [_int8((n,), f"in{j}") for j in range(s.n_in)]
    m = te.placeholder((s.n_in,), "int32", name="m")

    def total(i):
        v = tirx.Cast("int32", ins[0][i]) * m[0]
        for j in range(1, s.n_in):
            v = v + tirx.Cast("int32", ins[j][i]) * m[j]
        return v

    if s.op == "add_s32":
        return [*ins, m, te.compute((n,), total, name="out")]
    shift = te.var("s", "int32")
    one = tirx.const(1, "int64")
    out = te.compute((n,), lambda i: sat(tirx.shift_right(i64(total(i)) + tirx.shift_left(one, i64(shift) - one),
                                                          i64(shift)), "int8"), name="out")
    return [*ins, m, shift, out]


def _mul(s: EltShape):
    (n,) = s.dims
    a, b = _int8((n,), "a"), _int8((n,), "b")
    mult, shift = te.var("mult", "int32"), te.var("shift", "int32")
    out = te.compute((n,), lambda i: sat(rq(tirx.Cast("int32", a[i]) * tirx.Cast("int32", b[i]), mult, shift),
                                         "int8"), name="out")
    return [a, b, mult, shift, out]


def mul_int32(s: EltShape, unroll: int) -> tirx.PrimFunc:
    """mul with the shift tested once: an int32 loop (shift >= 33) and the spec's int64 loop, each unrolled."""
    (n,) = s.dims
    u = unroll if unroll > 1 and n % unroll == 0 and n > unroll else 1

    @T.prim_func
    def mul(a: T.Buffer((n,), "int8"), b: T.Buffer((n,), "int8"), mult: T.int32, shift: T.int32,
            out: T.Buffer((n,), "int8")):
        T.func_attr({"tirx.noalias": True})
        if shift >= 33:
            for i0 in range(n // u):
                for i1 in T.unroll(u):
                    out[i0 * u + i1] = T.Cast("int8", T.call_extern("int32", "trm_ssat8", rq_high(
                        T.Cast("int32", a[i0 * u + i1]) * T.Cast("int32", b[i0 * u + i1]), mult, shift)))
        else:
            for i0 in range(n // u):
                for i1 in T.unroll(u):
                    out[i0 * u + i1] = sat(rq(T.Cast("int32", a[i0 * u + i1]) * T.Cast("int32", b[i0 * u + i1]),
                                              mult, shift), "int8")

    return mul


def _lut(s: EltShape):
    (n,) = s.dims
    a, table = _int8((n,), "a"), _int8((256,), "table")
    return [a, table, te.compute((n,), lambda i: table[tirx.Cast("int32", a[i]) + 128], name="out")]


def _mean_pool(s: EltShape):
    rows, cols = s.dims
    a = _int8((rows, cols), "a")
    mult, shift = te.var("mult", "int32"), te.var("shift", "int32")
    t = te.reduce_axis((0, rows), name="t")
    total = te.compute((cols,), lambda d: te.sum(tirx.Cast("int32", a[t, d]), axis=t), name="acc")
    return [a, mult, shift, te.compute((cols,), lambda d: sat(rq(total[d], mult, shift), "int8"), name="out")]


def _transpose(s: EltShape):
    rows, cols = s.dims
    a = _int8((rows, cols), "a")
    return [a, te.compute((cols, rows), lambda c, r: a[r, c], name="out")]


def _patch(s: EltShape):
    ch, samples, p = s.dims
    x = _int8((ch, samples), "x")
    return [x, te.compute((samples // p, ch * p),
                          lambda t, f: x[tirx.floordiv(f, p), t * p + tirx.floormod(f, p)], name="out")]


def _embed(s: EltShape):
    tokens, dim, vocab = s.dims
    digits = te.placeholder((tokens,), "uint8", name="digits")
    table = _int8((vocab, dim), "table")
    return [digits, table, te.compute((tokens, dim), lambda t, d: table[tirx.Cast("int32", digits[t]), d],
                                      name="out")]


COMPUTE = {"add_s8": _add, "add_s32": _add, "mul": _mul, "lut": _lut, "mean_pool": _mean_pool,
           "transpose": _transpose, "patch": _patch, "embed": _embed}


def scratch_bytes(s: EltShape, knobs: dict) -> int:
    return 0


def schedule(s: EltShape, knobs: dict) -> tirx.PrimFunc:
    if s.op == "mul" and knobs.get("int32"):
        return mul_int32(s, knobs["unroll"])
    sch = s_tir.Schedule(te.create_prim_func(COMPUTE[s.op](s)))
    if s.op == "mean_pool":  # the int32 column sums stay in a register, not a D-sized stack array
        sch.reverse_compute_at(sch.get_sblock("out"), sch.get_loops(sch.get_sblock("acc"))[0])
        sch.decompose_reduction(sch.get_sblock("acc"), sch.get_loops(sch.get_sblock("acc"))[1])
    inner = sch.get_loops(sch.get_sblock("out"))[-1]
    extent = int(sch.get(inner).extent)
    if knobs["unroll"] > 1 and extent % knobs["unroll"] == 0 and extent > knobs["unroll"]:
        _, li = sch.split(inner, [None, knobs["unroll"]])
        sch.unroll(li)
    return sch.mod["main"]
