"""The hand-written dsp and mve kernels (project_templates/kernels/handwritten/) on the host, 0 LSB.

The SAME C source as on the boards, with the Arm intrinsics replaced by the exact plain-C emulations of
trm_simd.h. Every case is checked against trm_tvm.quant.spec and against the ref twin on the same vectors: small
odd shapes (kernel_cases.linear_case), shapes with several token blocks and chunks plus tails, the model's shapes,
saturation and rounding ties, unaligned activation / weight / output / scratch buffers, and that a kernel never
writes outside its output and its declared scratch.
"""
import ctypes

import numpy as np
import pytest

from kernel_cases import linear_case, requant_params
from trm_tvm.boards import load_board
from trm_tvm.compile.backends import handwritten
from trm_tvm.compile.hostcc import build_shared
from trm_tvm.compile.kernel_abi import KERNELS_DIR, REF_SOURCES
from trm_tvm.quant import spec

N = 1000
VARIANTS = ("dsp", "mve")
SENTINEL = 0x5A


@pytest.fixture(scope="module")
def lib():
    srcs = [handwritten.HANDWRITTEN_DIR / s for s in (*handwritten.SOURCES.values(), handwritten.OPS_SOURCE)] + REF_SOURCES
    return build_shared(srcs, [KERNELS_DIR, handwritten.HANDWRITTEN_DIR])


def call_linear(lib, variant, a, w, bias, mult, shift, packed_s4, offset=0):
    """Run trm_linear_<s8|s4>_<variant> with every int8 buffer starting `offset` bytes past an aligned address;
    check the bytes around the output and past the declared scratch are untouched. Returns the int8 output."""
    tokens, n_in = a.shape
    n_out = w.shape[0]

    def place(arr, extra=0):
        raw = np.full(arr.nbytes + offset + extra + 16, SENTINEL, np.uint8)
        base = (-raw.ctypes.data) % 16 + offset  # 16-byte aligned start, then the offset
        view = raw[base:base + arr.nbytes]
        view[:] = np.ascontiguousarray(arr).view(np.uint8).ravel()
        return raw, base, view

    _, _, a_buf = place(a)
    _, _, w_buf = place(w)
    out_raw, out_base, out_buf = place(np.zeros((tokens, n_out), np.int8))
    scratch_n = handwritten.linear_scratch_bytes("s4" if packed_s4 else "s8", variant, tokens, n_in, n_out)
    s_raw, s_base, _ = place(np.zeros(scratch_n, np.uint8))
    i32 = lambda x: np.ascontiguousarray(x, np.int32)  # noqa: E731 -- int32 arrays are aligned by contract
    bias_c, mult_c, shift_c = (None if bias is None else i32(bias)), i32(mult), i32(shift)
    p = lambda x: None if x is None else x.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    fn = getattr(lib, f"trm_linear_{'s4' if packed_s4 else 's8'}_{variant}")
    fn(p(a_buf), p(w_buf), p(bias_c), p(mult_c), p(shift_c), p(out_buf), tokens, n_in, n_out,
       p(s_raw[s_base:]) if scratch_n else None)
    assert (out_raw[:out_base] == SENTINEL).all() and (out_raw[out_base + out_buf.size:] == SENTINEL).all()
    assert (s_raw[:s_base] == SENTINEL).all() and (s_raw[s_base + scratch_n:] == SENTINEL).all()
    return out_buf.view(np.int8).reshape(tokens, n_out).copy()


def ref_linear(lib, a, w, bias, mult, shift, packed_s4):
    return call_linear(lib, "ref", a, w, bias, mult, shift, packed_s4)


def want_linear(a, w, bias, mult, sh, packed_s4):
    """(spec output, weights as the kernel takes them)"""
    b = np.zeros(w.shape[0], np.int64) if bias is None else bias
    if packed_s4:
        wp = spec.pack_s4(w)
        return spec.linear_s4(a, wp, a.shape[1], b, mult, sh), wp
    return spec.linear_s8(a, w, b, mult, sh), w


def model_case(rng, tokens, n_in, n_out, packed_s4):
    """A case at a given shape with kernel_cases' value and requantisation distributions."""
    a = rng.integers(-128, 128, size=(tokens, n_in)).astype(np.int8)
    lim = 8 if packed_s4 else 128
    w = rng.integers(-lim, lim, size=(n_out, n_in)).astype(np.int8)
    bias = rng.integers(-(1 << 20), 1 << 20, size=n_out).astype(np.int32)
    mult, sh = requant_params(rng, n_out, 50.0 * (8 if packed_s4 else 70) * np.sqrt(n_in))
    return a, w, bias, mult, sh


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_small_odd_shapes(lib, variant, packed_s4):
    """1000 cases of kernel_cases.linear_case (tokens 1-5, n_in/n_out 1-39, extremes, ties), unaligned by case."""
    rng = np.random.default_rng(80 + 2 * packed_s4 + (variant == "mve"))
    saturated = 0
    for i in range(N):
        a, w, bias, mult, sh = linear_case(rng, packed_s4)
        want, wk = want_linear(a, w, bias, mult, sh, packed_s4)
        got = call_linear(lib, variant, a, wk, bias, mult, sh, packed_s4, offset=i % 4)
        np.testing.assert_array_equal(got, want, err_msg=f"case {i} shape {a.shape}x{w.shape}")
        np.testing.assert_array_equal(got, ref_linear(lib, a, wk, bias, mult, sh, packed_s4))
        saturated += int(np.isin(want, [-128, 127]).sum())
    assert saturated > 100


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_blocks_and_tails(lib, variant, packed_s4):
    """Every token tail of both blockings (3 and 4 tokens) and k tails of both chunkings (8 and 16), several
    blocks and chunks per call, each buffer offset 0-3 bytes."""
    rng = np.random.default_rng(90 + 2 * packed_s4 + (variant == "mve"))
    for tokens in range(1, 14):
        for n_in in (1, 7, 8, 9, 15, 16, 17, 31, 33, 47, 64, 71):
            n_out = int(rng.integers(1, 12))
            a, w, bias, mult, sh = model_case(rng, tokens, n_in, n_out, packed_s4)
            want, wk = want_linear(a, w, bias, mult, sh, packed_s4)
            got = call_linear(lib, variant, a, wk, bias, mult, sh, packed_s4, offset=(tokens + n_in) % 4)
            np.testing.assert_array_equal(got, want, err_msg=f"{tokens}x{n_in}x{n_out}")


# (tokens, n_in, n_out) of the ECG model (hidden 48, H 96, 16/32 tokens; token mixing on the transpose)
MODEL_SHAPES = [(16, 48, 96), (16, 96, 48), (48, 16, 32), (48, 32, 16), (32, 48, 96), (32, 96, 48), (48, 32, 64)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_model_shapes(lib, variant, packed_s4):
    rng = np.random.default_rng(100 + 2 * packed_s4 + (variant == "mve"))
    for shape in MODEL_SHAPES:
        a, w, bias, mult, sh = model_case(rng, *shape, packed_s4)
        want, wk = want_linear(a, w, bias, mult, sh, packed_s4)
        np.testing.assert_array_equal(call_linear(lib, variant, a, wk, bias, mult, sh, packed_s4), want)


@pytest.mark.parametrize("variant", VARIANTS)
def test_linear_extreme_accumulators(lib, variant):
    """All -128 activations against all -128 / 127 weights at n_in 1024: the largest sums, both signs."""
    rng = np.random.default_rng(7)
    for wv in (-128, 127):
        a = np.full((5, 1024), -128, np.int8)
        w = np.full((3, 1024), wv, np.int8)
        bias = np.array([0, 1 << 20, -(1 << 20)], np.int32)
        mult, sh = np.array([1 << 30, 1, 1 << 29], np.int32), np.array([40, 1, 62], np.int32)
        want, _ = want_linear(a, w, bias, mult, sh, False)
        np.testing.assert_array_equal(call_linear(lib, variant, a, w, bias, mult, sh, False, int(rng.integers(4))),
                                      want)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_every_requantisation_path(lib, variant, packed_s4):
    """Shifts 1-62 around the high-word paths (< 32 int64, == 32 rounded high word, >= 33 high word + constant),
    with small and large sums, biases and multipliers of both signs."""
    rng = np.random.default_rng(120 + 2 * packed_s4 + (variant == "mve"))
    for i in range(200):
        tokens, n_in, n_out = int(rng.integers(1, 10)), int(rng.integers(1, 70)), int(rng.integers(1, 20))
        a, w, bias, _, _ = model_case(rng, tokens, n_in, n_out, packed_s4)
        sh = rng.choice(np.array([1, 2, 16, 30, 31, 32, 33, 34, 40, 50, 62]), size=n_out)
        lim = np.minimum(1 << np.minimum(sh, 31), 1 << 31)  # |M| < 2^sh keeps rq(v) in int32, as the spec requires
        mult = (rng.random(n_out) * 2 - 1) * lim
        mult, sh = np.clip(mult, -(1 << 31), (1 << 31) - 1).astype(np.int32), sh.astype(np.int32)
        want, wk = want_linear(a, w, bias, mult, sh, packed_s4)
        got = call_linear(lib, variant, a, wk, bias, mult, sh, packed_s4, offset=i % 4)
        np.testing.assert_array_equal(got, want, err_msg=f"shifts {sh} mults {mult}")


def shift32(rng, mult, sh, keep=0.2):
    """The same multipliers mostly re-encoded at sh = 32 (M >> (sh - 32)): runs of sh = 32 rows, broken by the rows
    kept as they were (sh >= 33, and the ties' small shifts)."""
    to32 = (sh > 32) & (rng.random(sh.size) >= keep)
    mult, sh = mult.astype(np.int64), sh.astype(np.int64)
    mult[to32] = mult[to32] >> (sh[to32] - 32)
    sh[to32] = 32
    return mult.astype(np.int32), sh.astype(np.int32)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_shift32_runs(lib, variant, packed_s4):
    """Rows at sh = 32 (the dsp kernels' SMMULR runs, in asm on the core) at every unrolled k length, every token
    tail (1-3 tokens after the full blocks, and fewer than one block), runs broken by other shifts, with and
    without bias, every int8 buffer offset 0-3."""
    rng = np.random.default_rng(140 + 2 * packed_s4 + (variant == "mve"))
    for tokens in range(1, 14):
        for n_in in (16, 32, 48, 64, 96):
            n_out = int(rng.integers(1, 20))
            a, w, bias, mult, sh = model_case(rng, tokens, n_in, n_out, packed_s4)
            mult, sh = shift32(rng, mult, sh, keep=[0.0, 0.2, 0.5][tokens % 3])
            if tokens % 2:
                bias = None
            want, wk = want_linear(a, w, bias, mult, sh, packed_s4)
            got = call_linear(lib, variant, a, wk, bias, mult, sh, packed_s4, offset=(tokens + n_in // 16) % 4)
            np.testing.assert_array_equal(got, want, err_msg=f"{tokens}x{n_in}x{n_out} shifts {sh}")
            np.testing.assert_array_equal(got, ref_linear(lib, a, wk, bias, mult, sh, packed_s4))


def test_scratch_size_matches_c(lib):
    """The executor's arena plan (Python) and the kernels (C) agree on the scratch size."""
    for variant in VARIANTS:
        for dtype in ("s8", "s4"):
            fn = getattr(lib, f"trm_linear_{dtype}_{variant}_scratch_bytes")
            for tokens, n_in, n_out in [(1, 1, 1), (16, 48, 96), (48, 17, 5), (3, 1024, 2)]:
                assert fn(tokens, n_in, n_out) == handwritten.linear_scratch_bytes(dtype, variant, tokens, n_in, n_out)


def test_backend_picks_variant_by_board():
    assert handwritten.variant(load_board("cortex-m4")) == "dsp"
    assert handwritten.variant(load_board("cortex-m55")) == "mve"
    m4 = load_board("cortex-m4")
    assert handwritten.kernel("linear_s8", m4) == "trm_linear_s8_dsp"
    assert handwritten.kernel("rmsnorm_s32", m4) == "trm_rmsnorm_s32_dsp"
    assert handwritten.kernel("transpose_s8", m4) == "trm_transpose_s8_dsp"   # the dsp variant (trm_ops_dsp.c)
    assert handwritten.kernel("mean_pool_s8", m4) == "trm_mean_pool_s8_ref"
    assert handwritten.scratch_bytes("linear_s8", m4, 16, 48, 96) == 2 * 48 * 17 + 4 * 14 + 4 + 3
    assert handwritten.scratch_bytes("linear_s8", load_board("cortex-m55"), 17, 48, 96) == 4 * 20 + 3
    assert handwritten.scratch_bytes("linear_s4", load_board("cortex-m55"), 17, 48, 96) == 2 * 48 + 3  # unpacked rows
    assert handwritten.scratch_bytes("linear_s4", load_board("cortex-m55"), 33, 48, 96) == 4 * 36 + 3  # the sums
    assert handwritten.unrolled_defines([("linear_s4", 16), ("linear_s4", 64), ("linear_s8", 40), ("linear_s8", 112)],
                                        load_board("cortex-m55")) == {"TRM_HW_S8_KS": 0, "TRM_HW_S4_KS": 0b10010}
    assert handwritten.unrolled_defines([("linear_s8", 16)], load_board("gap9")) == {}   # no DSP: the ref kernels


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_tile_k_lengths(lib, variant, packed_s4):
    """The mve 4-token x 2-channel tile's k lengths (16..96, one asm loop each on the core): token tails, odd
    channel counts, pairs falling back to the rolled code (a shift < 32 or M = INT32_MIN in the pair), shifts 32
    and 62, extreme activations and weights, no bias."""
    check_k_lengths(lib, variant, packed_s4)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("packed_s4", [False, True], ids=["s8", "s4"])
def test_linear_k_lengths_a_build_did_not_unroll(variant, packed_s4):
    """A model's build unrolls only its k lengths (TRM_HW_S8_KS / TRM_HW_S4_KS, handwritten.unrolled_defines):
    the others take the rolled loops and stay bit-exact. Here s8 unrolls n_in = 32 only, s4 96 only."""
    defines = handwritten.unrolled_defines([("linear_s8", 32), ("linear_s4", 96)], load_board("cortex-m4"))
    assert defines == {"TRM_HW_S8_KS": 1 << 2, "TRM_HW_S4_KS": 1 << 6}
    srcs = [handwritten.HANDWRITTEN_DIR / s for s in handwritten.SOURCES.values()] + REF_SOURCES
    lib = build_shared([*srcs, handwritten.HANDWRITTEN_DIR / handwritten.OPS_SOURCE],
                       [KERNELS_DIR, handwritten.HANDWRITTEN_DIR], [f"-D{k}={v}" for k, v in defines.items()])
    check_k_lengths(lib, variant, packed_s4)


def check_k_lengths(lib, variant, packed_s4):
    rng = np.random.default_rng(140 + 2 * packed_s4 + (variant == "mve"))
    i = 0
    for n_in in (16, 32, 48, 64, 80, 96):
        for tokens in (4, 5, 7, 8, 11, 12):
            for n_out in (1, 2, 3, 6, 7):
                a, w, bias, mult, sh = model_case(rng, tokens, n_in, n_out, packed_s4)
                if i % 5 == 0:  # the largest sums
                    a[:] = rng.choice(np.array([-128, 127], np.int8), size=a.shape)
                    w[:] = rng.choice(np.array([-8, 7] if packed_s4 else [-128, 127], np.int8), size=w.shape)
                odd = rng.random(n_out) < 0.2
                sh[odd] = rng.choice(np.array([31, 32, 62]), size=int(odd.sum()))
                mult[odd & (sh == 62)] = np.iinfo(np.int32).min
                mult[rng.random(n_out) < 0.3] *= -1
                want, wk = want_linear(a, w, None if i % 7 == 0 else bias, mult, sh, packed_s4)
                got = call_linear(lib, variant, a, wk, None if i % 7 == 0 else bias, mult, sh, packed_s4,
                                  offset=i % 4)
                np.testing.assert_array_equal(got, want, err_msg=f"{tokens}x{n_in}x{n_out} shifts {sh}")
                i += 1
