"""Per-core compute of the GAP9 cluster linear layer from the Cortex-M path's TIR linear strategy.

A core's share of an L1 tile is computed by a kernel generated from TIR: the SIMD form below where the rows start
on words, else the strategy's compact linear kernel (trm_tvm.compile.strategies.linear, with bias, fused, the
default Cortex-M knobs without the Arm DSP form). Either way:
- split by token: `rows` contiguous input rows x the tile's `to_n` channels -> contiguous output rows;
- split by channel: every row of the tile x the core's `no` channels; its output is a column block of the tile
  (row stride to_n). The SIMD form writes it in one call (a strided output buffer, so the token blocking stays);
  the plain form is called once per row by the dispatcher (the strategy's output is contiguous).
A call is (rows, channels, output row stride). The shapes are few and known at generation time (full / last token
tile x full / last channel tile x the cores' floor/ceil shares), so each gets a statically shaped kernel lowered by
our C pipeline (trm_tvm.compile.lower_c.to_c) and one dispatcher per (n_in, wbits) picks it
(`trm_linear_cl_args_t.share`); trm_linear_cl.c keeps the tiling, DMA, fork and barriers.

SIMD form (int8 weights with n_in % 4 == 0, packed int4 with n_in % 8 == 0: every activation and weight row starts
on a word in L1): the reduction runs over 32-bit words, each step CORE-V sums-of-dot-products
`trm_cv_sdotsp4(a_word, w_word, acc)` (4 MACs each; project_templates/gap9/kernels/trm_corev.h maps it to the
PULP builtin or emulates it exactly), in a register block of 2 tokens x 4 output channels when the share's sizes
allow (PULP-NN's 4x2, the cycle model's block).
- int8: one step per word.
- int4: the weights are stored in the CORE-V word layout (`s4_word_layout`, byte j of a word = weight j in the low
  nibble, weight j + 4 in the high one), so `(w << 4) & 0xF0F0F0F0` and `w & 0xF0F0F0F0` are the word's weights
  0-3 and 4-7 as bytes holding 16 x the int4 value: two masks and a shift unpack 8 lanes in activation order, two
  sdotsp4 with the two activation words accumulate 16 x the dot product, `>> 4` (exact) restores it.
Other shapes keep the strategy's plain form (and the spec's weight layout).

What this is not: the tiles/DMA as TIR (docs/gap9.md "Kernels from the TIR strategies").
"""
from __future__ import annotations

import numpy as np
from tvm import s_tir, tirx
from tvm.script import tirx as T

from trm_tvm.compile import strategies
from trm_tvm.compile.strategies import linear
from trm_tvm.compile.strategies.common import rq_sat
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.compile.strategies.linear import _nibbles_x16  # bytes of 16 x a word's low (or high) nibbles
from trm_tvm.gap9.tiling import LinearTiling

KNOBS = {**strategies.knobs_for("linear", "default"), "dsp": False}   # the Cortex-M default schedule, no Arm DSP
SDOTSP4 = "trm_cv_sdotsp4"      # acc + 4 signed byte products of two words (cv.sdotsp.b; trm_corev.h)
BLOCK_T, BLOCK_O = 2, 4         # register block of the SIMD form: tokens x output channels


def uses_simd(n_in: int, wbits: int) -> bool:
    return n_in % (4 if wbits == 8 else 8) == 0 and n_in < (1 << 17)   # int4: 16 x the sums stays in int32


def s4_word_layout(w_packed: np.ndarray, n_in: int) -> np.ndarray:
    """Packed int4 weights from the spec's layout (byte j: weight 2j low nibble, 2j+1 high; trm_tvm.quant.spec)
    to the CORE-V word layout of the SIMD form: per word of 8 weights, byte j holds weight j (low) and j + 4 (high)."""
    from trm_tvm.quant import spec

    w = spec.unpack_s4(w_packed, n_in).astype(np.int64) & 0xF
    g = w.reshape(w.shape[0], n_in // 8, 2, 4)
    return (g[:, :, 0, :] | (g[:, :, 1, :] << 4)).reshape(w.shape[0], n_in // 2).astype(np.uint8)


def per_core_form(n_in: int, wbits: int) -> str:
    """Which form computes a layer's shares: "simd" (CORE-V dot products) or "plain" (the strategy's plain loop)."""
    return "simd" if uses_simd(n_in, wbits) else "plain"


def in_word_layout(n_in: int, wbits: int) -> bool:
    """Whether the generated kernel of this layer reads its weights in the CORE-V word layout (int4 SIMD form)."""
    return wbits == 4 and uses_simd(n_in, wbits)


def device_weights(w: np.ndarray, n_in: int, wbits: int) -> np.ndarray:
    """The weight array the generated per-core kernel of this layer reads."""
    return s4_word_layout(w, n_in) if in_word_layout(n_in, wbits) else w


def _sdotsp4(a_word, w_word, acc):
    return tirx.call_extern("int32", SDOTSP4, a_word, w_word, acc)


def _s4_step(a_lo, a_hi, w_word, acc):
    """8 MACs x 16: weights 0-3 of the word with activation word a_lo, weights 4-7 with a_hi."""
    return _sdotsp4(a_hi, _nibbles_x16(w_word, False), _sdotsp4(a_lo, _nibbles_x16(w_word, True), acc))


def simd_func(s: LinearShape, out_stride: int | None = None) -> tirx.PrimFunc:
    """acc = bias + sum over the row's words of sdotsp4(activation word, weight word) (int4: the 16 x sums of
    `_s4_step`, then >> 4 + bias); the spec's requantisation (int32 branches for sh >= 33 and sh == 32: a
    dispatcher serves layers of either multiplier encoding). Activations are int32 buffers of n_in / 4 words per
    row, weights of n_in / 4 (int8) or n_in / 8 (int4) words (the C caller passes the byte rows); output rows
    `out_stride` bytes apart (default: contiguous)."""
    M, N, KA, s4 = s.tokens, s.n_out, s.n_in // 4, s.wbits == 4
    S = out_stride or N
    KW = KA // 2 if s4 else KA     # reduction steps: one weight word each

    def total(acc, bias):
        return tirx.shift_right(acc, 4) + bias if s4 else acc

    @T.prim_func(s_tir=True)
    def linear_cv(a: T.Buffer((M, KA), "int32"), w: T.Buffer((N, KW), "int32"), bias: T.Buffer((N,), "int32"),
                  mult: T.Buffer((N,), "int32"), shift: T.Buffer((N,), "int32"),
                  out: T.Buffer((M, N), "int8", strides=(S, 1))):
        with T.sblock("root"):
            acc = T.sblock_alloc_buffer((M, N), "int32")
            for t, o, k in T.grid(M, N, KW):
                with T.sblock("acc"):
                    vt, vo, vk = T.axis.remap("SSR", [t, o, k])
                    with T.init():
                        if s4:
                            acc[vt, vo] = 0
                        else:
                            acc[vt, vo] = bias[vo]
                    if s4:
                        acc[vt, vo] = _s4_step(a[vt, vk * 2], a[vt, vk * 2 + 1], w[vo, vk], acc[vt, vo])
                    else:
                        acc[vt, vo] = _sdotsp4(a[vt, vk], w[vo, vk], acc[vt, vo])
            for t, o in T.grid(M, N):
                with T.sblock("out"):
                    vt, vo = T.axis.remap("SS", [t, o])
                    out[vt, vo] = rq_sat(total(acc[vt, vo], bias[vo]), mult[vo], shift[vo], "int8", sh32=True)

    return linear_cv


def block_sizes(rows: int, n_out: int) -> tuple[int, int]:
    """The register block: 2 x 4 where the share divides, else the largest of 2 / 1 tokens x 4 / 2 / 1 channels
    that does (no predicated lanes in the inner loop)."""
    bt = BLOCK_T if rows % BLOCK_T == 0 else 1
    bo = next(b for b in (BLOCK_O, 2, 1) if n_out % b == 0)
    return bt, bo


def schedule_simd(s: LinearShape, out_stride: int | None = None) -> tirx.PrimFunc:
    """Register-block the SIMD form: tokens and channels split by the block, the word loop outside the block's
    lanes (each word loaded once per block), the requantisation at the block, every lane unrolled (the block's
    accumulators are scalars in registers)."""
    sch = s_tir.Schedule(simd_func(s, out_stride))
    acc = sch.get_sblock("acc")
    t, o, k = sch.get_loops(acc)
    bt, bo = block_sizes(s.tokens, s.n_out)
    t, t_lane = sch.split(t, [None, bt])
    o, o_lane = sch.split(o, [None, bo])
    sch.reorder(t, o, k, t_lane, o_lane)
    out = sch.get_sblock("out")
    sch.reverse_compute_at(out, o)
    init = sch.decompose_reduction(acc, k)
    for loop in [t_lane, o_lane, *sch.get_loops(init)[-2:], *sch.get_loops(out)[-2:]]:
        sch.unroll(loop)
    return sch.mod["main"]


def share_func(rows: int, n_in: int, n_out: int, wbits: int, out_stride: int | None = None) -> tirx.PrimFunc:
    """The kernel of one call: the SIMD form (any output row stride) or the plain form (contiguous output)."""
    s = LinearShape(rows, n_in, n_out, wbits, bias=True)
    if uses_simd(n_in, wbits):
        return schedule_simd(s, out_stride)
    assert out_stride in (None, n_out), "the plain form writes contiguous rows"
    return linear.schedule(s, KNOBS)


def share_shapes(t: LinearTiling, cores: int) -> set[tuple[int, int, int]]:
    """(rows, channels, output row stride) of every core's share of every tile, as trm_linear_cl.c splits them
    (items [n * c / cores, n * (c + 1) / cores) of core c; the stride is the tile's width)."""
    heights = {min(t.tile_tokens, t.tokens - i) for i in range(0, t.tokens, t.tile_tokens)}
    widths = {min(t.tile_out, t.n_out - o) for o in range(0, t.n_out, t.tile_out)}
    share = lambda n, c: n * (c + 1) // cores - n * c // cores  # noqa: E731
    if t.split_tokens:
        shapes = {(share(h, c), w, w) for h in heights for w in widths for c in range(cores)}
    else:
        shapes = {(h, share(w, c), w) for h in heights for w in widths for c in range(cores)}
    return {(r, n, st) for r, n, st in shapes if r and n}


def kernel_calls(rows: int, n_out: int, stride: int, n_in: int, wbits: int) -> tuple[int, int, int | None]:
    """(rows, channels, stride) of the kernel that computes a share (the plain form: one row per call when the
    output is strided; stride None = contiguous)."""
    if stride == n_out:
        return rows, n_out, None
    return (rows, n_out, stride) if uses_simd(n_in, wbits) else (1, n_out, None)


def dispatcher_name(n_in: int, wbits: int) -> str:
    return f"trm_gap9_share_s{wbits}_k{n_in}"


def kernel_name(rows: int, n_in: int, n_out: int, wbits: int, stride: int | None = None) -> str:
    return f"trm_linear_s{wbits}_b_{rows}x{n_in}x{n_out}{f'_os{stride}' if stride else ''}_gap9share"


def _dispatch_case(rows: int, n_out: int, stride: int, n_in: int, wbits: int) -> str:
    """The dispatcher's branch for one share shape: one kernel call, or (plain form, strided output) one per row."""
    kr, kn, kst = kernel_calls(rows, n_out, stride, n_in, wbits)
    simd = uses_simd(n_in, wbits)
    xtype, wtype = ("int32_t", "int32_t") if simd else ("int8_t", "uint8_t" if wbits == 4 else "int8_t")
    name = kernel_name(kr, n_in, kn, wbits, kst)
    params = "(int32_t *)bias, (int32_t *)mult, (int32_t *)shift"
    if kr == rows:
        call = f"{name}(({xtype} *)x, ({wtype} *)w, {params}, out);"
    else:
        call = (f"for (int t = 0; t < {rows}; t++)\n      {name}(({xtype} *)(x + t * {n_in}), ({wtype} *)w, {params}, "
                f"out + t * {stride});")
    return (f"  if (rows == {rows} && n_out == {n_out} && out_stride == {stride}) {{\n    {call}\n"
            "    return 0;\n  }\n")


def source(tilings: list[LinearTiling], cores: int) -> tuple[str, str]:
    """(C source, header) of the share kernels and their dispatchers for these tilings."""
    from trm_tvm.compile.lower_c import to_c

    shapes: dict[tuple[int, int], set[tuple[int, int, int]]] = {}
    for t in tilings:
        shapes.setdefault((t.n_in, t.wbits), set()).update(share_shapes(t, cores))
    calls = {(k, w, *kernel_calls(*rns, k, w)) for (k, w), rn in shapes.items() for rns in rn}
    funcs = {kernel_name(r, k, n, w, st): share_func(r, k, n, w, st) for k, w, r, n, st in calls}
    header = ["/* generated by trm_tvm/gap9/tir_kernels.py: per-core linear kernels from the TIR strategy */",
              "#ifndef TRM_GAP9_TIR_H", "#define TRM_GAP9_TIR_H", "#include <stdint.h>"]
    kernels = to_c(funcs) if funcs else "#include <stdint.h>\n"
    body = [('#include "trm_corev.h"\n' if SDOTSP4 in kernels else "") + kernels, '#include "trm_gap9_tir.h"']
    for (k, w), rn in sorted(shapes.items()):
        proto = (f"int {dispatcher_name(k, w)}(int rows, int n_out, int out_stride, const int8_t *x, const uint8_t *w, "
                 "const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out)")
        header.append(proto + ";")
        simd = uses_simd(k, w)        # word loads (int4: the weights are in the word layout, device_weights)
        aligned = "  if (((uintptr_t)x | (uintptr_t)w) & 3u) return -1; /* rows must start on words */\n"
        cases = (aligned if simd else "") + "".join(_dispatch_case(r, n, st, k, w) for r, n, st in sorted(rn))
        body.append(f"{proto} {{\n{cases}  return -1;\n}}")
    header.append("#endif")
    return "\n".join(body) + "\n", "\n".join(header) + "\n"
