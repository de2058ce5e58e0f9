"""Strategy for linear layers: int8 or packed-int4 weights x int8 activations, int32 accumulation, per-channel
requantisation to int8 (or int16 for the heads).

Compute (tensor expression) + schedule (s_tir.Schedule) with the knobs the tuner searches:
  order     "to" (tokens outer) | "ot" (output channels outer)
  tile_o    output channels computed together (register blocking), 1 = none
  tile_t    tokens computed together (order "to"; each weight word is widened once for tile_t tokens), 1 = none
  unroll_k  inner unroll factor of the reduction (s4: even, so the nibble select folds away), 1 = none
  fuse      requantise right after each accumulation (accumulator stays in registers); False = naive: a full
            int32 accumulator tensor, passed in as arena scratch (never on the stack)
  dsp       Arm DSP extension (int8 weights, n_in % 4 == 0, fused): the activations and weights are read as 32-bit
            words, widened with __sxtb16 and accumulated with __smlad (2 instructions per 4 MACs) -- ACLE
            instruction intrinsics through call_extern, exact host emulations in kernels/tvm/trm_acle.h
Layout variants for token mixing: `a_trans` reads the input as [n_in][tokens] (i.e. transpose(h) without moving
data), `out_trans` writes [n_out][tokens].
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from trm_tvm.compile.strategies.common import rq_sat, s4_nibble

NAIVE = {"order": "to", "tile_o": 1, "tile_t": 1, "unroll_k": 1, "fuse": False, "dsp": False}


@dataclass(frozen=True)
class LinearShape:
    tokens: int
    n_in: int
    n_out: int
    wbits: int = 8          # 8 | 4 (packed)
    out_dtype: str = "int8"  # int8 | int16 (heads)
    bias: bool = False
    a_trans: bool = False
    out_trans: bool = False

    @property
    def key(self) -> str:
        lay = ("t" if self.a_trans else "") + ("T" if self.out_trans else "")
        return (f"linear_s{self.wbits}{'_o16' if self.out_dtype == 'int16' else ''}{'_b' if self.bias else ''}"
                f"_{self.tokens}x{self.n_in}x{self.n_out}{'_' + lay if lay else ''}")


def compute(s: LinearShape, fuse: bool):
    """The tensor expression of the op: its parameter tensors in C argument order."""
    ain = te.placeholder((s.n_in, s.tokens) if s.a_trans else (s.tokens, s.n_in), "int8", name="a")
    if s.wbits == 8:
        w = te.placeholder((s.n_out, s.n_in), "int8", name="w")
        weight = lambda o, k: tirx.Cast("int32", w[o, k])  # noqa: E731
    else:
        w = te.placeholder((s.n_out, (s.n_in + 1) // 2), "uint8", name="w")
        weight = lambda o, k: s4_nibble(w[o, tirx.floordiv(k, 2)], k)  # noqa: E731
    bias = te.placeholder((s.n_out,), "int32", name="bias") if s.bias else None
    mult = te.placeholder((s.n_out,), "int32", name="mult")
    shift = te.placeholder((s.n_out,), "int32", name="shift")
    k = te.reduce_axis((0, s.n_in), name="k")
    a_at = (lambda t, kk: ain[kk, t]) if s.a_trans else (lambda t, kk: ain[t, kk])
    acc = te.compute((s.tokens, s.n_out),
                     lambda t, o: te.sum(tirx.Cast("int32", a_at(t, k)) * weight(o, k), axis=k), name="acc")

    def requant(t, o):
        v = acc[t, o] + (bias[o] if bias is not None else 0)
        return rq_sat(v, mult[o], shift[o], s.out_dtype)

    oshape = (s.n_out, s.tokens) if s.out_trans else (s.tokens, s.n_out)
    out = te.compute(oshape, (lambda o, t: requant(t, o)) if s.out_trans else requant, name="out")
    params = [ain, w] + ([bias] if bias is not None else []) + [mult, shift, out]
    if not fuse:
        params.append(acc)  # naive: the accumulator tensor is arena scratch
    return params


def uses_dsp(s: LinearShape, knobs: dict) -> bool:
    return bool(knobs.get("dsp")) and knobs["fuse"] and s.wbits == 8 and s.n_in % 4 == 0 and not s.a_trans


def _sxtb16(v):
    return tirx.call_extern("int32", "__sxtb16", v)


def _sxtb16_ror8(v):
    return tirx.call_extern("int32", "trm_sxtb16_ror8", v)


def dsp_func(s: LinearShape) -> tirx.PrimFunc:
    """acc = bias + sum over words of SMLAD(bytes 0,2) + SMLAD(bytes 1,3); the same requantisation after."""
    M, N, K4, has_bias, odt = s.tokens, s.n_out, s.n_in // 4, s.bias, s.out_dtype
    o_shape = (N, M) if s.out_trans else (M, N)

    @T.prim_func(s_tir=True)
    def linear_dsp(a: T.Buffer((M, K4), "int32"), w: T.Buffer((N, K4), "int32"), bias: T.Buffer((N,), "int32"),
                   mult: T.Buffer((N,), "int32"), shift: T.Buffer((N,), "int32"), out: T.Buffer(o_shape, odt)):
        with T.sblock("root"):
            acc = T.sblock_alloc_buffer((M, N), "int32")
            for t, o, k in T.grid(M, N, K4):
                with T.sblock("acc"):
                    vt, vo, vk = T.axis.remap("SSR", [t, o, k])
                    with T.init():
                        if has_bias:
                            acc[vt, vo] = bias[vo]
                        else:
                            acc[vt, vo] = 0
                    acc[vt, vo] = T.call_extern("int32", "__smlad", _sxtb16(a[vt, vk]), _sxtb16(w[vo, vk]),
                                                T.call_extern("int32", "__smlad", _sxtb16_ror8(a[vt, vk]),
                                                              _sxtb16_ror8(w[vo, vk]), acc[vt, vo]))
            for t, o in T.grid(M, N):
                with T.sblock("out"):
                    vt, vo = T.axis.remap("SS", [t, o])
                    if s.out_trans:
                        out[vo, vt] = rq_sat(acc[vt, vo], mult[vo], shift[vo], odt, ssat=True)
                    else:
                        out[vt, vo] = rq_sat(acc[vt, vo], mult[vo], shift[vo], odt, ssat=True)

    if not has_bias:  # drop the unused bias parameter (the C signature is that of the non-DSP kernel)
        linear_dsp = tirx.PrimFunc([p for p in linear_dsp.params if p.name != "bias"], linear_dsp.body,
                                   linear_dsp.ret_type, linear_dsp.attrs)
    return linear_dsp


def scratch_bytes(s: LinearShape, knobs: dict) -> int:
    return 0 if knobs["fuse"] else 4 * s.tokens * s.n_out


def base_func(s: LinearShape, knobs: dict) -> tirx.PrimFunc:
    """The unscheduled kernel for the knobs that change its form (dsp, fuse)."""
    return dsp_func(s) if uses_dsp(s, knobs) else te.create_prim_func(compute(s, knobs["fuse"]))


def schedule(s: LinearShape, knobs: dict) -> tirx.PrimFunc:
    sch = s_tir.Schedule(base_func(s, knobs))
    apply_knobs(sch, s, knobs)
    return sch.mod["main"]


def apply_knobs(sch: s_tir.Schedule, s: LinearShape, knobs: dict) -> None:
    """The loop knobs as schedule primitives on `sch` (also the tuner's design space, trm_tvm/tune/space.py)."""
    acc = sch.get_sblock("acc")
    t, o, k = sch.get_loops(acc)
    if knobs["order"] == "ot":
        sch.reorder(o, t)
    inner, lanes = (t if knobs["order"] == "ot" else o), []
    if knobs["order"] == "to":
        tile_t = knobs.get("tile_t", 1) if s.tokens % knobs.get("tile_t", 1) == 0 else 1
        tile_o = knobs["tile_o"] if s.n_out % knobs["tile_o"] == 0 else 1
        if tile_t > 1:
            t, t_lane = sch.split(t, [None, tile_t])
            lanes.append(t_lane)
        if tile_o > 1:
            o, o_lane = sch.split(o, [None, tile_o])
            lanes.append(o_lane)
        if lanes:
            sch.reorder(t, o, k, *lanes)
        inner = o
    if knobs["fuse"]:
        sch.reverse_compute_at(sch.get_sblock("out"), inner)
        init = sch.decompose_reduction(acc, k)
        if lanes:  # constant tile indices everywhere, so the C compiler keeps the accumulators in registers
            for loop in sch.get_loops(init)[-len(lanes):] + sch.get_loops(sch.get_sblock("out"))[-len(lanes):]:
                sch.unroll(loop)
    k_extent = s.n_in // 4 if uses_dsp(s, knobs) else s.n_in
    if knobs["unroll_k"] > 1 and k_extent % knobs["unroll_k"] == 0:
        _, ki = sch.split(k, [None, knobs["unroll_k"]])
        sch.unroll(ki)
    for lane in lanes:
        sch.unroll(lane)
