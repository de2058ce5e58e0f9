"""Strategy for linear layers: int8 or packed-int4 weights x int8 activations, int32 accumulation, per-channel
requantisation to int8 (or int16 for the heads).

Compute (tensor expression) + schedule (s_tir.Schedule) with the knobs the tuner searches:
  order     "to" (tokens outer) | "ot" (output channels outer)
  tile_o    output channels computed together (register blocking), 1 = none
  tile_t    tokens computed together (order "to"; each weight word is widened once for tile_t tokens), 1 = none
  unroll_k  inner unroll factor of the reduction (s4: even, so the nibble select folds away), 1 = none, 0 = all
  fuse      requantise right after each accumulation (accumulator stays in registers); False = naive: a full
            int32 accumulator tensor, passed in as arena scratch (never on the stack)
  dsp       Arm DSP extension (fused; int8 weights with n_in % 4 == 0, packed int4 with n_in % 8 == 0): the
            activations and weights are read as 32-bit words, widened with SXTB16 and accumulated with SMLAD
            (2 per 4 MACs); int4 nibbles are masked into byte tops (x16) and the activation pairs matched with
            PKHBT/PKHTB -- ACLE intrinsics or one-instruction helpers through call_extern, exact host
            emulations in kernels/tvm/trm_acle.h
  widen     (dsp form) widen the activations once per call into arena scratch, as int16 pairs in the order the
            SMLAD loop reads them (s8: SXTB16 and SXTB16 ROR #8 of each word; s4: the 4 PKHBT/PKHTB pair-words of
            each word pair), so the reduction widens only the weights; False = both operands per 4 MACs
  mve       Helium (fused; n_in >= 16, boards listing `mve`, set by the back end, never searched): the reduction
            runs over chunks of 16 k, each one extern call trm_mve_dot_s8/s4(&a[t, 16c], &w[o, 16c], acc)
            (VLDRB x2 + VMLADAVA: 16 MACs; packed int4 unpacked in 4 vector instructions); a partial last chunk
            (n_in % 16) is a VCTP-predicated _tail call in the accumulator's init. The register tile (tile_t x
            tile_o) lets GCC load each weight chunk once per tile_t tokens and each activation chunk once per
            tile_o channels. Takes precedence over dsp.
Layout variants for token mixing: `a_trans` reads the input as [n_in][tokens] (i.e. transpose(h) without moving
data), `out_trans` writes [n_out][tokens].
Requantisation variant: `sh32`, a layer whose every shift is 32 (`linear_multipliers: shift32`,
docs/integer-spec.md) gets a kernel without the shift argument that requantises with the rounded high word:
SMMULR + SSAT (dsp), trm_mve_rq4_s8_sh32 on 4 tokens (VRMULH, mve), the int64 sum with a constant shift (plain);
other layers keep the per-channel branch of common.rq_sat (their generated code is unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from trm_tvm.compile.strategies.common import rq, rq_sat, rq_sat_sh32, s4_nibble, sat

NAIVE = {"order": "to", "tile_o": 1, "tile_t": 1, "unroll_k": 1, "fuse": False, "dsp": False, "mve": False,
         "widen": False}
MVE_CHUNK = 16  # int8 lanes of a Helium vector
# the mve form's defaults: a register tile of 4 tokens x 2 channels (each weight chunk loaded once per 4 tokens,
# each activation chunk once per 2 channels, 4 sums per rq4 call) and the chunk loop unrolled whole; the fewest
# modeled cycles of the tiles and unrolls measured on the QEMU Cortex-M55 at the ECG shapes (docs/compile.md)
MVE_DEFAULTS = {"tile_t": 4, "tile_o": 2, "unroll_k": 0}


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
    sh32: bool = False       # every shift is 32 (spec.encode_multiplier_shift32): rq is the rounded high word,
                             # and the kernel takes no shift argument

    @property
    def key(self) -> str:
        lay = ("t" if self.a_trans else "") + ("T" if self.out_trans else "")
        return (f"linear_s{self.wbits}{'_o16' if self.out_dtype == 'int16' else ''}{'_b' if self.bias else ''}"
                f"{'_sh32' if self.sh32 else ''}_{self.tokens}x{self.n_in}x{self.n_out}{'_' + lay if lay else ''}")

    def requant(self, v, mult, shift, o, ssat: bool = False):
        """sat(rq(v, mult[o], shift[o])) in the cheapest exact form the layer's shifts allow (common.rq_sat, or
        rq_sat_sh32 without touching `shift`, which the sh32 kernels do not have)."""
        if self.sh32:
            return rq_sat_sh32(v, mult[o], self.out_dtype, ssat)
        return rq_sat(v, mult[o], shift[o], self.out_dtype, ssat)


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
        if s.sh32:
            return s.requant(v, mult, shift, o)
        return sat(rq(v, mult[o], shift[o]), s.out_dtype)

    oshape = (s.n_out, s.tokens) if s.out_trans else (s.tokens, s.n_out)
    out = te.compute(oshape, (lambda o, t: requant(t, o)) if s.out_trans else requant, name="out")
    params = [ain, w] + ([bias] if bias is not None else []) + [mult] + ([] if s.sh32 else [shift]) + [out]
    if not fuse:
        params.append(acc)  # naive: the accumulator tensor is arena scratch
    return params


def uses_mve(s: LinearShape, knobs: dict) -> bool:
    return bool(knobs.get("mve")) and knobs["fuse"] and s.n_in >= MVE_CHUNK and not s.a_trans


def uses_rq4(s: LinearShape, knobs: dict) -> bool:
    """The mve form requantises 4 tokens per call (its register tile is 4 tokens)."""
    return (uses_mve(s, knobs) and knobs["order"] == "to" and knobs.get("tile_t") == 4 and s.tokens % 4 == 0
            and s.out_dtype == "int8")


def uses_dsp(s: LinearShape, knobs: dict) -> bool:
    if uses_mve(s, knobs):
        return False
    shape_ok = s.n_in % 4 == 0 if s.wbits == 8 else s.n_in % 8 == 0 and s.n_in < (1 << 17)  # s4: 16x sums fit int32
    return bool(knobs.get("dsp")) and knobs["fuse"] and shape_ok and not s.a_trans


def uses_widen(s: LinearShape, knobs: dict) -> bool:
    return bool(knobs.get("widen")) and uses_dsp(s, knobs)


def _sxtb16(v):
    return tirx.call_extern("int32", "__sxtb16", v)


def _sxtb16_ror8(v):
    return tirx.call_extern("int32", "trm_sxtb16_ror8", v)


def _smlad(x, y, acc):
    return tirx.call_extern("int32", "__smlad", x, y, acc)


def _nibbles_x16(w, low: bool):
    """The low (or high) nibble of each byte of a packed-int4 word, in that byte's top 4 bits: as signed bytes
    16 x the int4 values, so SXTB16 widens them exactly (mask arithmetic, no shifts of negative values)."""
    u = tirx.Cast("uint32", w)
    u = tirx.shift_left(u, tirx.const(4, "uint32")) if low else u
    return tirx.Cast("int32", tirx.bitwise_and(u, tirx.const(0xF0F0F0F0, "uint32")))


def _s8_pairs(a):
    """An activation word as the int16 pairs (a0,a2) (a1,a3) that _s8_step multiplies with the weight word."""
    return _sxtb16(a), _sxtb16_ror8(a)


def _s8_step_pairs(x, w, acc):
    return _smlad(x[0], _sxtb16(w), _smlad(x[1], _sxtb16_ror8(w), acc))


def _s8_step(a, w, acc):
    """4 MACs: bytes (0, 2) and (1, 3) of an activation and a weight word."""
    return _s8_step_pairs(_s8_pairs(a), w, acc)


def _s4_pairs(a0, a1):
    """The activation words a0 = a[0..3], a1 = a[4..7] as the int16 pairs (a0,a4) (a2,a6) (a1,a5) (a3,a7) that
    match the weight nibbles of _s4_step_pairs (PKHBT / PKHTB of the SXTB16 halves)."""
    x0, x1, y0, y1 = _sxtb16(a0), _sxtb16(a1), _sxtb16_ror8(a0), _sxtb16_ror8(a1)  # (a0,a2) (a4,a6) (a1,a3) (a5,a7)
    pk = lambda name, x, y: tirx.call_extern("int32", name, x, y)  # noqa: E731
    return pk("trm_pkhbt", x0, x1), pk("trm_pkhtb", x1, x0), pk("trm_pkhbt", y0, y1), pk("trm_pkhtb", y1, y0)


def _s4_step_pairs(x, w, acc):
    """8 MACs x 16: weight nibbles k0..k7 of one word as (k0,k4) (k2,k6) (k1,k5) (k3,k7) after SXTB16 of the
    masked words."""
    lo, hi = _nibbles_x16(w, True), _nibbles_x16(w, False)
    acc = _smlad(x[0], _sxtb16(lo), acc)            # a0*k0 + a4*k4
    acc = _smlad(x[1], _sxtb16_ror8(lo), acc)       # a2*k2 + a6*k6
    acc = _smlad(x[2], _sxtb16(hi), acc)            # a1*k1 + a5*k5
    return _smlad(x[3], _sxtb16_ror8(hi), acc)      # a3*k3 + a7*k7


def _s4_step(a0, a1, w, acc):
    return _s4_step_pairs(_s4_pairs(a0, a1), w, acc)


def dsp_func(s: LinearShape, widen: bool = False) -> tirx.PrimFunc:
    """int8 weights: acc = bias + sum over words of SMLAD(bytes 0,2) + SMLAD(bytes 1,3). Packed int4: acc = 16 x the
    dot product over word pairs (_s4_step), then acc >> 4 (exact) + bias. The same requantisation after.
    `widen`: block "widen" first writes every token's activation pairs (_s8_pairs / _s4_pairs, n_in / 2 words per
    token) into the scratch buffer `aw` (the last parameter: arena scratch), which the reduction then reads."""
    M, N, K4, has_bias, odt, s4 = s.tokens, s.n_out, s.n_in // 4, s.bias, s.out_dtype, s.wbits == 4
    KW = K4 // 2 if s4 else K4  # reduction steps: one weight word each
    P = 4 if s4 else 2          # activation pair-words per reduction step
    o_shape = (N, M) if s.out_trans else (M, N)

    def pairs(a, aw, t, k, fresh=False):
        """The activation pair-words of reduction step k of token t: read from `aw`, or widened here (`fresh`)."""
        if widen and not fresh:
            return [aw[t, k * P + j] for j in range(P)]
        return _s4_pairs(a[t, k * 2], a[t, k * 2 + 1]) if s4 else _s8_pairs(a[t, k])

    def total(acc, o, bias):
        if not s4:
            return acc
        return tirx.shift_right(acc, 4) + (bias[o] if has_bias else 0)

    @T.prim_func(s_tir=True)
    def linear_dsp(a: T.Buffer((M, K4), "int32"), w: T.Buffer((N, KW), "int32"), bias: T.Buffer((N,), "int32"),
                   mult: T.Buffer((N,), "int32"), shift: T.Buffer((N,), "int32"), out: T.Buffer(o_shape, odt),
                   aw: T.Buffer((M, KW * P), "int32")):
        with T.sblock("root"):
            acc = T.sblock_alloc_buffer((M, N), "int32")
            if widen:
                for t, k in T.grid(M, KW):
                    with T.sblock("widen"):
                        vt, vk = T.axis.remap("SS", [t, k])
                        T.reads(a[vt, vk * (P // 2):vk * (P // 2) + P // 2])
                        T.writes(aw[vt, vk * P:vk * P + P])
                        aw[vt, vk * P] = pairs(a, aw, vt, vk, fresh=True)[0]
                        aw[vt, vk * P + 1] = pairs(a, aw, vt, vk, fresh=True)[1]
                        if s4:
                            aw[vt, vk * P + 2] = pairs(a, aw, vt, vk, fresh=True)[2]
                            aw[vt, vk * P + 3] = pairs(a, aw, vt, vk, fresh=True)[3]
            for t, o, k in T.grid(M, N, KW):
                with T.sblock("acc"):
                    vt, vo, vk = T.axis.remap("SSR", [t, o, k])
                    with T.init():
                        if has_bias and not s4:
                            acc[vt, vo] = bias[vo]
                        else:
                            acc[vt, vo] = 0
                    if s4:
                        acc[vt, vo] = _s4_step_pairs(pairs(a, aw, vt, vk), w[vo, vk], acc[vt, vo])
                    else:
                        acc[vt, vo] = _s8_step_pairs(pairs(a, aw, vt, vk), w[vo, vk], acc[vt, vo])
            for t, o in T.grid(M, N):
                with T.sblock("out"):
                    vt, vo = T.axis.remap("SS", [t, o])
                    if s.out_trans:
                        out[vo, vt] = s.requant(total(acc[vt, vo], vo, bias), mult, shift, vo, ssat=True)
                    else:
                        out[vt, vo] = s.requant(total(acc[vt, vo], vo, bias), mult, shift, vo, ssat=True)

    unused = ({"bias"} if not has_bias else set()) | ({"aw"} if not widen else set()) | ({"shift"} if s.sh32 else set())
    if unused:  # drop them (the C signature is that of the non-DSP kernel, plus the scratch when widening)
        linear_dsp = tirx.PrimFunc([p for p in linear_dsp.params if p.name not in unused], linear_dsp.body,
                                   linear_dsp.ret_type, linear_dsp.attrs)
    return linear_dsp


def mve_func(s: LinearShape, rq4: bool = False) -> tirx.PrimFunc:
    """acc = bias + the partial last chunk (init) + one Helium dot per full chunk of 16 k; the dsp form's
    requantisation (the M55 has SSAT)."""
    M, N, K, odt, s4 = s.tokens, s.n_out, s.n_in, s.out_dtype, s.wbits == 4
    KC, rem = K // MVE_CHUNK, K % MVE_CHUNK
    w_shape, w_dt = ((N, (K + 1) // 2), "uint8") if s4 else ((N, K), "int8")
    wstep = MVE_CHUNK // 2 if s4 else MVE_CHUNK   # weight elements (bytes) per chunk
    dot, dot_tail = ("trm_mve_dot_s4", "trm_mve_dot_s4_tail") if s4 else ("trm_mve_dot_s8", "trm_mve_dot_s8_tail")
    o_shape = (N, M) if s.out_trans else (M, N)

    def start(a, w, bias, t, o):
        b = bias[o] if s.bias else T.int32(0)
        if not rem:
            return b
        return T.call_extern("int32", dot_tail, T.address_of(a[t, KC * MVE_CHUNK]), T.address_of(w[o, KC * wstep]),
                             rem, b)

    @T.prim_func(s_tir=True)
    def linear_mve(a: T.Buffer((M, K), "int8"), w: T.Buffer(w_shape, w_dt), bias: T.Buffer((N,), "int32"),
                   mult: T.Buffer((N,), "int32"), shift: T.Buffer((N,), "int32"), out: T.Buffer(o_shape, odt)):
        with T.sblock("root"):
            acc = T.sblock_alloc_buffer((M, N), "int32")
            for t, o, k in T.grid(M, N, KC):
                with T.sblock("acc"):
                    vt, vo, vk = T.axis.remap("SSR", [t, o, k])
                    with T.init():
                        acc[vt, vo] = start(a, w, bias, vt, vo)
                    acc[vt, vo] = T.call_extern("int32", dot, T.address_of(a[vt, vk * MVE_CHUNK]),
                                                T.address_of(w[vo, vk * wstep]), acc[vt, vo])
            if rq4:
                for t4, o in T.grid(M // 4, N):
                    with T.sblock("out"):
                        vt, vo = T.axis.remap("SS", [t4, o])
                        if s.sh32:
                            T.reads(acc[vt * 4:vt * 4 + 4, vo], mult[vo])
                        else:
                            T.reads(acc[vt * 4:vt * 4 + 4, vo], mult[vo], shift[vo])
                        T.writes(out[vo, vt * 4:vt * 4 + 4] if s.out_trans else out[vt * 4:vt * 4 + 4, vo])
                        if s.sh32:
                            T.evaluate(T.call_extern(
                                "int32", "trm_mve_rq4_s8_sh32",
                                T.address_of(out[vo, vt * 4]) if s.out_trans else T.address_of(out[vt * 4, vo]),
                                1 if s.out_trans else N, acc[vt * 4, vo], acc[vt * 4 + 1, vo], acc[vt * 4 + 2, vo],
                                acc[vt * 4 + 3, vo], mult[vo]))
                        elif shift[vo] >= 33 and shift[vo] <= 56:
                            T.evaluate(T.call_extern(
                                "int32", "trm_mve_rq4_s8",
                                T.address_of(out[vo, vt * 4]) if s.out_trans else T.address_of(out[vt * 4, vo]),
                                1 if s.out_trans else N, acc[vt * 4, vo], acc[vt * 4 + 1, vo], acc[vt * 4 + 2, vo],
                                acc[vt * 4 + 3, vo], mult[vo], shift[vo]))
                        else:
                            for j in T.unroll(4):
                                if s.out_trans:
                                    out[vo, vt * 4 + j] = rq_sat(acc[vt * 4 + j, vo], mult[vo], shift[vo], odt,
                                                                 ssat=True)
                                else:
                                    out[vt * 4 + j, vo] = rq_sat(acc[vt * 4 + j, vo], mult[vo], shift[vo], odt,
                                                                 ssat=True)
            else:
                for t, o in T.grid(M, N):
                    with T.sblock("out"):
                        vt, vo = T.axis.remap("SS", [t, o])
                        if s.out_trans:
                            out[vo, vt] = s.requant(acc[vt, vo], mult, shift, vo, ssat=True)
                        else:
                            out[vt, vo] = s.requant(acc[vt, vo], mult, shift, vo, ssat=True)

    unused = ({"bias"} if not s.bias else set()) | ({"shift"} if s.sh32 else set())
    if unused:  # same C signature as the other forms
        linear_mve = tirx.PrimFunc([p for p in linear_mve.params if p.name not in unused], linear_mve.body,
                                   linear_mve.ret_type, linear_mve.attrs)
    return linear_mve


def scratch_bytes(s: LinearShape, knobs: dict) -> int:
    """naive: the int32 accumulator tensor; widen: the activations as int16 pairs (n_in / 2 words per token)."""
    if not knobs["fuse"]:
        return 4 * s.tokens * s.n_out
    return 2 * s.tokens * s.n_in if uses_widen(s, knobs) else 0


def base_func(s: LinearShape, knobs: dict) -> tirx.PrimFunc:
    """The unscheduled kernel for the knobs that change its form (mve, dsp, fuse)."""
    if uses_mve(s, knobs):
        return mve_func(s, uses_rq4(s, knobs))
    return dsp_func(s, uses_widen(s, knobs)) if uses_dsp(s, knobs) else te.create_prim_func(compute(s, knobs["fuse"]))


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
        if lanes and (uses_dsp(s, knobs) or uses_mve(s, knobs)):
            # constant tile indices everywhere: the C compiler keeps the tile in registers (dsp/mve forms only, so
            # the plain form -- also the GAP9 per-core kernel -- stays as tuned there); the out block's own loops
            # (below `inner`; none when it requantises 4 tokens per call)
            own = sch.get_loops(sch.get_sblock("out"))[len(sch.get_loops(acc)) - 1 - len(lanes):]
            for loop in sch.get_loops(init)[-len(lanes):] + own:
                sch.unroll(loop)
    k_extent = s.n_in // (4 if s.wbits == 8 else 8) if uses_dsp(s, knobs) else s.n_in
    if uses_mve(s, knobs):
        k_extent = s.n_in // MVE_CHUNK
    if knobs["unroll_k"] == 0:          # the whole reduction (the mve default: at most n_in / 16 chunks)
        sch.unroll(k)
    elif knobs["unroll_k"] > 1 and k_extent % knobs["unroll_k"] == 0:
        _, ki = sch.split(k, [None, knobs["unroll_k"]])
        sch.unroll(ki)
    for lane in lanes:
        sch.unroll(lane)
