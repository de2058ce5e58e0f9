"""Strategies for the small ops around the linear layers: add (int8 or int32 out), mul, LUT, mean_pool,
transpose, patching (series input) and embedding (token input). Semantics: docs/integer-spec.md.

One tensor expression per op. Knobs: `unroll`: split the innermost loop by this factor and unroll it (1 = none;
applied only when it divides the loop); `int32` (mul): when the tensor's shift is >= 33 (checked once per call),
rq in int32 as the hand-written kernels do (docs/kernels.md): (hi32(a*b*M) + 2^(sh-33)) >> (sh-32), one SMMLA,
a shift and SSAT (trm_smmla / trm_ssat8, kernels/tvm/trm_acle.h); else the spec's int64 rq.
`mve` (Helium boards, set by the back end): lut, mul (shift 33..56), add_s8 and add_s32 (2 or 3 inputs) loop over
vectors, one extern of kernels/tvm/trm_acle.h per 16 (lut) or 4 elements, and finish the n % 16 (n % 4) tail
with the scalar form.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from trm_tvm.compile.strategies.common import i64, rq, rq_high, sat

NAIVE = {"unroll": 1, "int32": False, "mve": False}
MVE_LANES = {"lut": 16, "mul": 4, "add_s8": 4, "add_s32": 4}


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


def mul_int32(s: EltShape, unroll: int, mve: bool = False) -> tirx.PrimFunc:
    """mul with the shift tested once: an int32 loop (shift >= 33) and the spec's int64 loop, each unrolled; with
    `mve`, shifts 33..56 first take 4 lanes per extern (trm_mve_mul_s8x4) and the n % 4 tail in int32."""
    (n,) = s.dims
    u = unroll if unroll > 1 and n % unroll == 0 and n > unroll else 1
    nv = n // 4

    def high(a, b, mult, shift, i):
        return T.Cast("int8", T.call_extern("int32", "trm_ssat8", rq_high(
            T.Cast("int32", a[i]) * T.Cast("int32", b[i]), mult, shift)))

    @T.prim_func
    def mul(a: T.Buffer((n,), "int8"), b: T.Buffer((n,), "int8"), mult: T.int32, shift: T.int32,
            out: T.Buffer((n,), "int8")):
        T.func_attr({"tirx.noalias": True})
        if mve and shift >= 33 and shift <= 56:
            for i in range(nv):
                T.evaluate(T.call_extern("int32", "trm_mve_mul_s8x4", T.address_of(out[i * 4]),
                                         T.address_of(a[i * 4]), T.address_of(b[i * 4]), mult, shift))
            for i in range(n - nv * 4):
                out[nv * 4 + i] = high(a, b, mult, shift, nv * 4 + i)
        elif shift >= 33:
            for i0 in range(n // u):
                for i1 in T.unroll(u):
                    out[i0 * u + i1] = high(a, b, mult, shift, i0 * u + i1)
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


def _mve_lut(s: EltShape) -> tirx.PrimFunc:
    (n,) = s.dims
    nv = n // 16

    @T.prim_func
    def lut(a: T.Buffer((n,), "int8"), table: T.Buffer((256,), "int8"), out: T.Buffer((n,), "int8")):
        T.func_attr({"tirx.noalias": True})
        for i in range(nv):
            T.evaluate(T.call_extern("int32", "trm_mve_lut_s8x16", T.address_of(out[i * 16]),
                                     T.address_of(a[i * 16]), T.address_of(table[0])))
        for i in range(n - nv * 16):
            out[nv * 16 + i] = table[T.Cast("int32", a[nv * 16 + i]) + 128]

    return lut


def _mve_add(s: EltShape) -> tirx.PrimFunc:
    """v = sum_j in_j * m_j on 4 lanes per extern (2 or 3 inputs), the tail as the tensor expression's loop."""
    (n,) = s.dims
    nv, three, s8 = n // 4, s.n_in == 3, s.op == "add_s8"
    odt = "int8" if s8 else "int32"
    name = f"trm_mve_add{s.n_in}_s{8 if s8 else 32}x4"

    def total(a, b, c, m, i):
        v = T.Cast("int32", a[i]) * m[0] + T.Cast("int32", b[i]) * m[1]
        return v + T.Cast("int32", c[i]) * m[2] if three else v

    def vec_args(a, b, c, m, i):
        ins = [T.address_of(a[i]), T.address_of(b[i])] + ([T.address_of(c[i])] if three else [])
        return ins + [m[j] for j in range(s.n_in)]

    def tail(a, b, c, m, shift, i):
        v = total(a, b, c, m, i)
        if not s8:
            return v
        return sat(tirx.shift_right(i64(v) + tirx.shift_left(tirx.const(1, "int64"), i64(shift) - 1), i64(shift)),
                   "int8")

    @T.prim_func
    def add(a: T.Buffer((n,), "int8"), b: T.Buffer((n,), "int8"), c: T.Buffer((n,), "int8"),
            m: T.Buffer((s.n_in,), "int32"), shift: T.int32, out: T.Buffer((n,), odt)):
        T.func_attr({"tirx.noalias": True})
        for i in range(nv):
            T.evaluate(T.call_extern("int32", name, T.address_of(out[i * 4]), *vec_args(a, b, c, m, i * 4),
                                     *([shift] if s8 else [])))
        for i in range(n - nv * 4):
            out[nv * 4 + i] = tail(a, b, c, m, shift, nv * 4 + i)

    drop = ({"c"} if not three else set()) | ({"shift"} if not s8 else set())  # the C signature of the te form
    return tirx.PrimFunc([p for p in add.params if p.name not in drop], add.body, add.ret_type, add.attrs)


def mve_func(s: EltShape, knobs: dict):
    """The Helium form of an element-wise op, or None where it has none (other ops, shorter than a vector)."""
    lanes = MVE_LANES.get(s.op)
    if not knobs.get("mve") or lanes is None or s.dims[0] < lanes:
        return None
    if s.op == "lut":
        return _mve_lut(s)
    if s.op == "mul":
        return mul_int32(s, knobs["unroll"], mve=True) if knobs.get("int32") else None
    return _mve_add(s) if s.n_in in (2, 3) else None


def schedule(s: EltShape, knobs: dict) -> tirx.PrimFunc:
    vec = mve_func(s, knobs)
    if vec is not None:
        return vec
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
