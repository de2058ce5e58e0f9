"""The hand-written element-wise kernels on the host, 0 LSB: dsp (handwritten/trm_ops_dsp.c, also the token-mixing
transpose) and mve (the add, mul, LUT and RMSNorm of handwritten/trm_kernels_mve.c).

The SAME C source as on the boards with the DSP instructions emulated in plain C (trm_simd.h). Each op runs
>= 1000 random vectors (kernel_cases: odd lengths, extreme inputs, saturation, rounding ties, every requantisation
path) with every int8 buffer 0-3 bytes past an aligned address, against trm_tvm.quant.spec and the ref twin on the
same vectors; sentinels check that nothing is written outside the output.
"""
import ctypes

import numpy as np
import pytest

from kernel_cases import int8, requant_params, rmsnorm_case
from trm_tvm.boards import load_board
from trm_tvm.compile.backends import handwritten
from trm_tvm.compile.hostcc import build_shared
from trm_tvm.compile.kernel_abi import KERNELS_DIR, REF_SOURCES
from trm_tvm.quant import spec

N = 1000
SENTINEL = 0x5A


@pytest.fixture(scope="module")
def lib():
    srcs = [handwritten.HANDWRITTEN_DIR / s for s in (handwritten.OPS_SOURCE, handwritten.SOURCES["mve"])]
    return build_shared(srcs + REF_SOURCES, [KERNELS_DIR, handwritten.HANDWRITTEN_DIR])


class Buffers:
    """Arrays placed `offset` bytes past a 16-byte aligned address, with sentinel bytes around each output."""

    def __init__(self, offset: int):
        self.offset, self.outs, self.keep = offset, [], []

    def put(self, arr: np.ndarray) -> ctypes.c_void_p:
        arr = np.ascontiguousarray(arr)
        raw = np.full(arr.nbytes + 32, SENTINEL, np.uint8)
        base = (-raw.ctypes.data) % 16 + self.offset
        raw[base:base + arr.nbytes] = arr.view(np.uint8).ravel()
        self.keep.append(raw)
        return ctypes.c_void_p(raw.ctypes.data + base), raw, base

    def inp(self, arr) -> ctypes.c_void_p:
        return self.put(arr)[0]

    def out(self, n: int, dtype) -> ctypes.c_void_p:
        ptr, raw, base = self.put(np.zeros(n, dtype))
        self.outs.append((raw, base, n * np.dtype(dtype).itemsize, dtype))
        return ptr

    def result(self, i: int = 0) -> np.ndarray:
        raw, base, nbytes, dtype = self.outs[i]
        assert (raw[:base] == SENTINEL).all() and (raw[base + nbytes:] == SENTINEL).all(), "wrote outside output"
        return raw[base:base + nbytes].copy().view(dtype)


def run_add(lib, variant, ins, m, s, offset):
    b = Buffers(offset)
    ptrs = (ctypes.c_void_p * len(ins))(*[b.inp(x) for x in ins])
    mc = np.ascontiguousarray(m, np.int32)
    n = ins[0].size
    if s is None:
        getattr(lib, f"trm_add_s32_{variant}")(ptrs, mc.ctypes.data_as(ctypes.c_void_p), len(ins), b.out(n, np.int32), n)
    else:
        getattr(lib, f"trm_add_s8_{variant}")(ptrs, mc.ctypes.data_as(ctypes.c_void_p), len(ins), ctypes.c_int32(s),
                                              b.out(n, np.int8), n)
    return b.result()


def run_mul(lib, variant, a, x, mult, shift, offset):
    b = Buffers(offset)
    getattr(lib, f"trm_mul_s8_{variant}")(b.inp(a), b.inp(x), ctypes.c_int32(int(mult)), ctypes.c_int32(int(shift)),
                                          b.out(a.size, np.int8), a.size)
    return b.result()


def run_lut(lib, variant, a, table, offset):
    b = Buffers(offset)
    getattr(lib, f"trm_lut_s8_{variant}")(b.inp(a), b.inp(table), b.out(a.size, np.int8), a.size)
    return b.result()


def run_rmsnorm(lib, variant, r, eps, mult, shift, offset):
    b = Buffers(offset)
    i32 = lambda x: np.ascontiguousarray(x, np.int32).ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    mc, sc = np.ascontiguousarray(mult, np.int32), np.ascontiguousarray(shift, np.int32)
    getattr(lib, f"trm_rmsnorm_s32_{variant}")(i32(r), ctypes.c_int64(int(eps)), i32(mc), i32(sc),
                                               b.out(r.size, np.int8), r.shape[0], r.shape[1])
    return b.result().reshape(r.shape)


def run_transpose(lib, variant, a, in_offset, out_offset):
    bi, bo = Buffers(in_offset), Buffers(out_offset)
    rows, cols = a.shape
    getattr(lib, f"trm_transpose_s8_{variant}")(bi.inp(a), bo.out(a.size, np.int8), rows, cols)
    return bo.result().reshape(cols, rows)


def length(rng) -> int:
    """odd lengths around the 4-element blocks, and the model's 768 / 1536"""
    return int(rng.choice([int(rng.integers(1, 70)), 768, 1536], p=[0.9, 0.05, 0.05]))


@pytest.mark.parametrize("variant", ["dsp", "mve"])
@pytest.mark.parametrize("n_in", [1, 2, 3])
def test_add_s8_and_s32(lib, n_in, variant):
    rng = np.random.default_rng(200 + n_in)
    saturated = 0
    for i in range(N):
        n = length(rng)
        ins = [int8(rng, n, rng.random() < 0.1) for _ in range(n_in)]
        m = rng.integers(0, 1 << 15, size=n_in).astype(np.int32)
        if rng.random() < 0.1:
            m[:] = (1 << 15) - 1  # the largest multipliers: the int16 lanes at their limit
        s = int(rng.integers(1, 31))
        want8, want32 = spec.add_s8(ins, m, s), spec.add_s32(ins, m)
        got8, got32 = run_add(lib, variant, ins, m, s, i % 4), run_add(lib, variant, ins, m, None, i % 4)
        np.testing.assert_array_equal(got8, want8, err_msg=f"case {i} n={n}")
        np.testing.assert_array_equal(got32, want32, err_msg=f"case {i} n={n}")
        np.testing.assert_array_equal(got8, run_add(lib, "ref", ins, m, s, 0))
        saturated += int(np.isin(want8, [-128, 127]).sum())
    assert saturated > 100


@pytest.mark.parametrize("variant", ["dsp", "mve"])
def test_mul(lib, variant):
    rng = np.random.default_rng(210)
    saturated = 0
    for i in range(N):
        n = length(rng)
        a, x = int8(rng, n, rng.random() < 0.1), int8(rng, n, rng.random() < 0.1)
        (mult,), (shift,) = requant_params(rng, 1, 128 * 128)
        if rng.random() < 0.1:  # the int64 paths (sh <= 32) and sh == 33 exactly
            shift = np.int32(rng.choice([1, 16, 31, 32, 33]))
            mult = np.int32(rng.integers(-(1 << min(int(shift), 31)) + 1, 1 << min(int(shift), 31)))
        want = spec.mul_s8(a, x, mult, shift)
        got = run_mul(lib, variant, a, x, mult, shift, i % 4)
        np.testing.assert_array_equal(got, want, err_msg=f"case {i} n={n} M={mult} sh={shift}")
        np.testing.assert_array_equal(got, run_mul(lib, "ref", a, x, mult, shift, 0))
        saturated += int(np.isin(want, [-128, 127]).sum())
    assert saturated > 100


@pytest.mark.parametrize("variant", ["dsp", "mve"])
def test_lut(lib, variant):
    rng = np.random.default_rng(220)
    for i in range(N):
        n = length(rng)
        a, table = int8(rng, n, rng.random() < 0.1), int8(rng, 256)
        got = run_lut(lib, variant, a, table, i % 4)
        np.testing.assert_array_equal(got, spec.lut_s8(a, table))
        np.testing.assert_array_equal(got, run_lut(lib, "ref", a, table, 0))


@pytest.mark.parametrize("variant", ["dsp", "mve"])
def test_rmsnorm(lib, variant):
    """kernel_cases.rmsnorm_case (magnitudes 2^4 to 2^24: every b of the Q15 step), plus the model's 16 x 48; half
    the cases with every shift in 33..56 and dim a multiple of 4 (the mve vector path; else it takes the dsp one)."""
    rng = np.random.default_rng(230)
    for i in range(N):
        r, eps, mult, sh = rmsnorm_case(rng, dims=(16, 48) if i % 10 == 0 else (int(rng.integers(1, 5)),
                                                                                   4 * int(rng.integers(1, 20))))
        if i % 2:
            sh = rng.integers(33, 57, size=sh.size).astype(np.int32)
            mult = (rng.integers(1 << 30, 1 << 31, size=sh.size) * rng.choice([-1, 1], size=sh.size)).astype(np.int32)
        want = spec.rmsnorm_s32(r, eps, mult, sh)
        got = run_rmsnorm(lib, variant, r, eps, mult, sh, i % 4)
        np.testing.assert_array_equal(got, want, err_msg=f"case {i} shape {r.shape} eps {eps}")
        np.testing.assert_array_equal(got, run_rmsnorm(lib, "ref", r, eps, mult, sh, 0))


@pytest.mark.parametrize("variant", ["dsp", "mve"])
def test_rmsnorm_every_bit_length(lib, variant):
    """One token per magnitude 2^0 .. 2^24 (b of isqrt from 1 to 31), both signs, each Q15 path boundary."""
    rng = np.random.default_rng(231)
    for p in range(25):
        for dim in (1, 3, 48, 332):
            r = rng.integers(-(1 << p), (1 << p) + 1, size=(2, dim)).clip(-(1 << 24) + 1, (1 << 24) - 1)
            r = r.astype(np.int32)
            mult, sh = requant_params(rng, dim, (1 << 15) / np.sqrt(dim) * 2)
            sh = np.clip(sh, 33, 56).astype(np.int32) if p % 2 else sh  # odd p: the mve vector path
            for eps in (0, 1, int(rng.integers(0, 1 << 30))):
                np.testing.assert_array_equal(run_rmsnorm(lib, variant, r, eps, mult, sh, p % 4),
                                              spec.rmsnorm_s32(r, eps, mult, sh), err_msg=f"2^{p} dim {dim}")


MODEL_TRANSPOSES = [(16, 48), (48, 16), (32, 48), (48, 32)]   # (rows, cols) of the ECG model's token mixing


def test_transpose(lib):
    """Random shapes 1..70 x 1..70 (every rows % 4 and cols % 4 tail) and the model's four, input and output each
    0-3 bytes past an aligned address (independently)."""
    rng = np.random.default_rng(240)
    for i in range(N):
        rows, cols = (MODEL_TRANSPOSES[i // 10 % 4] if i % 10 == 0
                      else (int(rng.integers(1, 71)), int(rng.integers(1, 71))))
        a = int8(rng, (rows, cols), rng.random() < 0.1)
        got = run_transpose(lib, "dsp", a, i % 4, i // 4 % 4)
        np.testing.assert_array_equal(got, spec.transpose_s8(a), err_msg=f"case {i} {rows}x{cols}")
        np.testing.assert_array_equal(got, run_transpose(lib, "ref", a, 0, 0))


def test_transpose_every_small_shape(lib):
    """Every shape up to 9 x 9 at every pair of offsets: each block / tail combination."""
    rng = np.random.default_rng(241)
    for rows in range(1, 10):
        for cols in range(1, 10):
            for off in range(16):
                a = int8(rng, (rows, cols))
                np.testing.assert_array_equal(run_transpose(lib, "dsp", a, off % 4, off // 4), a.T,
                                              err_msg=f"{rows}x{cols} offsets {off % 4}, {off // 4}")


def test_backend_swaps_in_the_element_wise_kernels():
    m4, m55 = load_board("cortex-m4"), load_board("cortex-m55")
    assert handwritten.kernel("mul_s8", m4) == "trm_mul_s8_dsp" and handwritten.kernel("mul_s8", m55) == "trm_mul_s8_mve"
    assert handwritten.kernel("rmsnorm_s32", m4) == "trm_rmsnorm_s32_dsp"
    assert handwritten.kernel("rmsnorm_s32", m55) == "trm_rmsnorm_s32_mve"
    for board in (m4, m55):  # the transpose has a dsp variant only: the M55 runs it too
        assert handwritten.kernel("transpose_s8", board) == "trm_transpose_s8_dsp"
        assert handwritten.kernel("mean_pool_s8", board) == "trm_mean_pool_s8_ref"
        assert handwritten.OPS_SOURCE in [p.name for p in handwritten.sources(board)]
        stmt = handwritten.rename_calls("trm_lut_s8_ref(a, t, o, 8); trm_transpose_s8_ref(a, o, 2, 4);", board)
        assert stmt == f"{handwritten.kernel('lut_s8', board)}(a, t, o, 8); trm_transpose_s8_dsp(a, o, 2, 4);"
    assert handwritten.kernel("transpose_s8", load_board("gap9")) == "trm_transpose_s8_ref"  # no DSP extension
