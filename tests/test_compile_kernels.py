"""TIR kernels of the `tvm` back end against the integer spec (0 LSB), at the naive and default schedules.

Each kernel family sees >= 1000 random vectors with saturation, rounding ties and extreme values, over a few
specialised shapes (odd sizes included). The C comes out of TVM's C code generator (no TVM runtime) and is
compiled with the host gcc -Werror.
"""
import ctypes

import numpy as np
import pytest

from kernel_cases import int8, pack_s4, requant_params, rmsnorm_case
from oracle import O
from trm_tvm.compile import strategies
from trm_tvm.compile.hostcc import build_shared
from trm_tvm.compile.kernel_abi import KERNELS_DIR
from trm_tvm.compile.lower_c import to_c
from trm_tvm.compile.strategies.eltwise import EltShape
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.compile.strategies.rmsnorm import RMSNormShape
from trm_tvm.quant.spec import bit_length, isqrt

LEVELS = ("naive", "default", "mve")  # mve: the default knobs on a Helium board (host: the C emulations)
LINEAR_LEVELS = LEVELS + ("unwidened",)  # the default knobs without widen: the dsp form widening both operands per 4 MACs
LINEAR_SHAPES = [LinearShape(3, 17, 12, 8), LinearShape(4, 16, 8, 4, bias=True), LinearShape(2, 9, 5, 4),
                 LinearShape(1, 24, 5, 8, "int16", True), LinearShape(5, 16, 8, 8, a_trans=True),
                 LinearShape(6, 8, 4, 4, a_trans=True, out_trans=True), LinearShape(4, 32, 12, 8, bias=True),
                 LinearShape(6, 8, 4, 8, out_trans=True),  # [1], [6], [7]: SMLAD/SXTB16 at the default level
                 LinearShape(5, 37, 7, 4, bias=True), LinearShape(7, 50, 9, 8, out_trans=True)]
# at level mve every shape with n_in >= 16 and no a_trans takes the Helium form, odd tokens / n_in tails included
ELT_SHAPES = [EltShape("add_s8", (37,), 3), EltShape("add_s8", (16,), 2), EltShape("add_s32", (37,), 2),
              EltShape("mul", (33,)), EltShape("lut", (40,)), EltShape("mean_pool", (7, 12)),
              EltShape("transpose", (5, 8)), EltShape("patch", (2, 24, 4)), EltShape("embed", (9, 6, 10))]
NORM_SHAPES = [RMSNormShape(3, 37), RMSNormShape(2, 48)]


def knobs_at(family: str, level: str) -> dict:
    if level == "mve":
        return strategies.with_mve(family, strategies.knobs_for(family, "default"), True)
    if level == "unwidened":
        return {**strategies.knobs_for(family, "default"), "widen": False}
    return strategies.knobs_for(family, level)


class Built:
    """Every test kernel at every level in one generated C file, compiled once."""

    def __init__(self, tmp):
        self.funcs, self.scratch = {}, {}
        for shape in LINEAR_SHAPES + ELT_SHAPES + NORM_SHAPES:
            for level in LINEAR_LEVELS if isinstance(shape, LinearShape) else LEVELS:
                knobs = knobs_at(strategies.family_of(shape), level)
                name, func, scratch = strategies.build(shape, knobs)
                name = f"{name}_{level}"
                self.funcs[name], self.scratch[(shape, level)] = func, scratch
        self.src = to_c(self.funcs)
        (tmp / "kernels_tvm.c").write_text(self.src)
        self.lib = build_shared([tmp / "kernels_tvm.c"], [KERNELS_DIR / "tvm"], flags=["-Wno-unused-variable"])

    def call(self, shape, level, *args):
        name = f"{strategies.kernel_name(shape, None)}_{level}"
        func = self.funcs[name]
        c_args = []
        for p, a in zip(func.params, args):
            if isinstance(a, np.ndarray):
                c_args.append(a.ctypes.data_as(ctypes.c_void_p))
            else:
                c_args.append({"int32": ctypes.c_int32, "int64": ctypes.c_int64}[str(p.ty.dtype)](int(a)))
        getattr(self.lib, name)(*c_args)


@pytest.fixture(scope="module")
def K(tmp_path_factory):
    return Built(tmp_path_factory.mktemp("tvm_kernels"))


def c(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


@pytest.mark.parametrize("level", LINEAR_LEVELS)
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=lambda s: s.key)
def test_linear(K, shape, level):
    rng = np.random.default_rng(hash(shape.key) % 2**32)
    s, vectors, ties = shape, 0, 0
    lim = 8 if s.wbits == 4 else 128
    while vectors < 1000:
        extreme = rng.random() < 0.1
        a = int8(rng, (s.tokens, s.n_in), extreme)
        w = rng.integers(-lim, lim, size=(s.n_out, s.n_in)).astype(np.int8)
        bias = rng.integers(-(1 << 20), 1 << 20, size=s.n_out).astype(np.int32) if s.bias else None
        mult, sh = requant_params(rng, s.n_out, 50.0 * lim * 0.6 * np.sqrt(s.n_in))
        if s.out_dtype == "int16":
            sh = np.maximum(sh - 8, 1).astype(np.int32)
        want = O.linear(a, w, bias, mult, sh, out_bits=16 if s.out_dtype == "int16" else 8)
        out = np.zeros(want.T.shape if s.out_trans else want.shape, want.dtype)
        args = [c(a.T if s.a_trans else a, np.int8), c(pack_s4(w) if s.wbits == 4 else w, np.uint8 if s.wbits == 4 else np.int8)]
        args += ([c(bias, np.int32)] if s.bias else []) + [c(mult, np.int32), c(sh, np.int32), out]
        scratch = K.scratch[(shape, level)]
        if scratch:
            args.append(np.zeros(scratch // 4, np.int32))
        K.call(shape, level, *args)
        np.testing.assert_array_equal(out.T if s.out_trans else out, want)
        vectors += s.tokens
        ties += O.tie_count(O.acc(a, w, bias), mult, sh)
    assert ties > 20


@pytest.mark.parametrize("level", LINEAR_LEVELS)
@pytest.mark.parametrize("shape", [LINEAR_SHAPES[i] for i in (1, 3, 6)], ids=lambda s: s.key)
def test_linear_requant_at_every_shift(K, shape, level):
    """The requantisation's int32 branch (shift >= 33) and int64 branch (below) around their edge, shift 31..62,
    with the largest multipliers of both signs, all-extreme and random activations and biases."""
    rng = np.random.default_rng(5)
    s, lim = shape, 8 if shape.wbits == 4 else 128
    for case in range(300):
        a = int8(rng, (s.tokens, s.n_in), extreme=case % 2 == 0)
        w = rng.choice(np.array([-lim, lim - 1], np.int8), size=(s.n_out, s.n_in)) if case % 4 == 0 else \
            rng.integers(-lim, lim, size=(s.n_out, s.n_in)).astype(np.int8)
        bias = rng.integers(-(1 << 20), 1 << 20, size=s.n_out).astype(np.int32) if s.bias else None
        sh = ((np.arange(s.n_out) + case) % 32 + 31).astype(np.int32)
        mult = rng.choice(np.array([(1 << 31) - 1, 1 << 30, -(1 << 30), -(1 << 31) + 1], np.int64), size=s.n_out)
        mult = np.where(rng.random(s.n_out) < 0.5, mult, rng.integers(-(1 << 31) + 1, 1 << 31, size=s.n_out))
        mult = mult.astype(np.int32)
        want = O.linear(a, w, bias, mult, sh, out_bits=16 if s.out_dtype == "int16" else 8)
        out = np.zeros(want.shape, want.dtype)
        args = [c(a, np.int8), c(pack_s4(w) if s.wbits == 4 else w, np.uint8 if s.wbits == 4 else np.int8)]
        args += ([c(bias, np.int32)] if s.bias else []) + [c(mult, np.int32), c(sh, np.int32), out]
        if K.scratch[(shape, level)]:
            args.append(np.zeros(K.scratch[(shape, level)] // 4, np.int32))
        K.call(shape, level, *args)
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("shape", NORM_SHAPES, ids=lambda s: s.key)
def test_rmsnorm(K, shape, level):
    rng = np.random.default_rng(7)
    for _ in range(1000 // shape.tokens + 1):
        r, eps, mult, sh = rmsnorm_case(rng, dims=(shape.tokens, shape.dim))
        out = np.zeros(r.shape, np.int8)
        K.call(shape, level, c(r, np.int32), eps, mult, sh, out)
        np.testing.assert_array_equal(out, O.rmsnorm(r, eps, mult, sh))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("shape", NORM_SHAPES, ids=lambda s: s.key)
def test_rmsnorm_int32_paths(K, shape, level):
    """Every branch of the int32 form: every bit length b of isqrt(ss) (1..31: magnitudes 2^0..2^24 and eps up to
    2^61), so both Q15 paths (b <= 18, b >= 19); every channel's shift in 33..56 (mve: 4 lanes), 33..62 (the
    int32 rq) or one below 33 (the int64 rq), with the extreme multipliers."""
    rng = np.random.default_rng(13)
    bits = set()
    for case in range(600):
        mag = 1 << int(rng.integers(0, 25))
        r = rng.integers(-mag, mag, size=(shape.tokens, shape.dim), endpoint=True).clip(-(1 << 24) + 1, (1 << 24) - 1)
        eps = int(rng.choice([0, 1, 1 << int(rng.integers(0, 62))]))
        if case % 7 == 0:
            r[:] = 0  # ss = eps: all outputs 0 (eps 0), b = 1 (eps 1)
        sh = rng.integers(33, 57 if case % 2 else 63, size=shape.dim).astype(np.int32)  # 33..56: Helium lanes
        if case % 3 == 0:
            sh[int(rng.integers(0, shape.dim))] = int(rng.integers(17, 33))  # |n| <= 2^15: rq fits int32
        mult = rng.choice(np.array([(1 << 31) - 1, 1 << 30, -(1 << 30), -(1 << 31) + 1], np.int64), size=shape.dim)
        mult = np.where(rng.random(shape.dim) < 0.5, mult, rng.integers(-(1 << 31) + 1, 1 << 31, size=shape.dim))
        out = np.zeros(r.shape, np.int8)
        K.call(shape, level, c(r, np.int32), eps, c(mult, np.int32), sh, out)
        np.testing.assert_array_equal(out, O.rmsnorm(r, eps, mult.astype(np.int32), sh))
        ss = (r.astype(np.int64) ** 2).sum(axis=1) + eps
        bits |= set(bit_length(isqrt(ss)).tolist())
    assert {0, 1, 18, 19, 27, 31} <= bits


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("shape", ELT_SHAPES, ids=lambda s: s.key)
def test_eltwise(K, shape, level):
    rng = np.random.default_rng(11)
    for _ in range(1000):
        op, d = shape.op, shape.dims
        if op.startswith("add"):
            ins = [int8(rng, d, rng.random() < 0.1) for _ in range(shape.n_in)]
            m = rng.integers(0, 1 << 15, size=shape.n_in).astype(np.int32)
            s = int(rng.integers(1, 20))
            want = O.add(ins, m, s if op == "add_s8" else None)
            out = np.zeros_like(want)
            K.call(shape, level, *ins, m, *([s] if op == "add_s8" else []), out)
        elif op == "mul":
            a, b = int8(rng, d), int8(rng, d)
            (mult,), (sh,) = requant_params(rng, 1, 128 * 128)
            want = O.mul(a, b, mult, sh)
            out = np.zeros_like(want)
            K.call(shape, level, a, b, mult, sh, out)
        elif op == "lut":
            a, table = int8(rng, d), int8(rng, 256)
            want, out = table[a.astype(np.int64) + 128], np.zeros(d, np.int8)
            K.call(shape, level, a, table, out)
        elif op == "mean_pool":
            a = int8(rng, d, rng.random() < 0.1)
            (mult,), (sh,) = requant_params(rng, 1, 128 * d[0])
            want = O.mean_pool(a, mult, sh)
            out = np.zeros_like(want)
            K.call(shape, level, a, mult, sh, out)
        elif op == "transpose":
            a = int8(rng, d)
            want, out = a.T.copy(), np.zeros(d[::-1], np.int8)
            K.call(shape, level, a, out)
        elif op == "patch":
            ch, samples, p = d
            x = int8(rng, (ch, samples))
            want = x.reshape(ch, samples // p, p).transpose(1, 0, 2).reshape(samples // p, ch * p)
            out = np.zeros_like(want)
            K.call(shape, level, x, out)
        else:  # embed
            tokens, dim, vocab = d
            digits, table = rng.integers(0, vocab, size=tokens).astype(np.uint8), int8(rng, (vocab, dim))
            want, out = table[digits], np.zeros((tokens, dim), np.int8)
            K.call(shape, level, digits, table, out)
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("level", LEVELS)
def test_mul_at_every_shift(K, level):
    """mul's int32 loop (shift >= 33) and int64 loop (below), shift 17..62, extreme multipliers and operands."""
    shape = next(s for s in ELT_SHAPES if s.op == "mul")
    rng = np.random.default_rng(17)
    for case in range(400):
        a, b = int8(rng, shape.dims, case % 2 == 0), int8(rng, shape.dims, case % 3 == 0)
        sh = 17 + case % 46
        mult = int(rng.choice([(1 << 31) - 1, -(1 << 31) + 1, 1 << 30, int(rng.integers(-(1 << 31) + 1, 1 << 31))]))
        if sh < 31:  # the spec wants rq inside int32 (|a*b| <= 2^14)
            mult >>= 31 - sh
        want = O.mul(a, b, mult, sh)
        out = np.zeros_like(want)
        K.call(shape, level, a, b, mult, sh, out)
        np.testing.assert_array_equal(out, want)


def test_sources_come_from_tvm_and_follow_the_knobs(K):
    shape = LINEAR_SHAPES[6]  # int8, n_in and n_out divisible by the default tile and unroll: dsp applies
    base = strategies.knobs_for("linear", "default")
    changes = ({}, {"tile_o": 1}, {"tile_t": 1}, {"unroll_k": 2}, {"order": "ot"}, {"fuse": False}, {"dsp": False},
               {"widen": False})
    srcs = {to_c({"k": strategies.build(shape, dict(base, **change))[1]}) for change in changes}
    assert len(srcs) == len(changes)  # every knob changes the generated code
    for src in srcs | {K.src}:
        assert "// tvm target" in src  # emitted by TVM's C code generator
        assert "TVMFFI" not in src and "tvm/" not in src and "malloc" not in src
    assert "__smlad(__sxtb16(" in K.src  # DSP intrinsics at the default level, from call_extern
    assert "__smlad(trm_pkhtb(" in K.src  # and the packed-int4 DSP form
    assert "__smlad(aw[" in K.src  # default: the activations widened once per call into scratch


def test_mve_form_is_chosen_by_the_board_and_covers_the_tails(K):
    mve = knobs_at("linear", "mve")
    assert not strategies.knobs_for("linear", "default").get("mve")  # a board without Helium never gets it
    for shape in LINEAR_SHAPES:
        src = to_c({"k": strategies.build(shape, mve)[1]})
        dot = f"trm_mve_dot_s{shape.wbits}"
        assert (dot + "(" in src) == (shape.n_in >= 16 and not shape.a_trans), shape.key
        assert (dot + "_tail(" in src) == (shape.n_in >= 16 and not shape.a_trans and shape.n_in % 16 > 0), shape.key
    assert "trm_mve_dot_s4_tail(" in K.src and "trm_mve_dot_s8_tail(" in K.src
    for ext in ("lut_s8x16", "mul_s8x4", "add3_s8x4", "add2_s8x4", "add2_s32x4", "sumsq4", "rms_s8x4"):
        assert f"trm_mve_{ext}(" in K.src, ext  # the element-wise Helium forms
    assert "trm_mve_rq4_s8(" in K.src  # 4-token requantisation (tokens % 4 == 0: [1], [6]; every shift covered by
    # test_linear_requant_at_every_shift)


def test_naive_scratch_comes_from_the_arena():
    shape = LINEAR_SHAPES[0]
    naive = strategies.knobs_for("linear", "naive")
    name, func, scratch = strategies.build(shape, naive)
    assert scratch == 4 * shape.tokens * shape.n_out and len(func.params) == 6
    src = to_c({name: func})
    assert "int32_t* acc" in src  # accumulator tensor is a pointer argument, not a stack array
