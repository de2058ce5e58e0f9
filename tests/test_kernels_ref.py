"""The reference C kernels (project_templates/kernels/reference/) against the integer spec, 0 LSB.

Each op runs on >= 1000 random cases with odd sizes, saturation at both ends, rounding ties and extreme inputs.
The C is compiled with the host gcc (-Wall -Wextra -Werror) and called through ctypes.
"""
import numpy as np
import pytest

from kernel_cases import int8, linear_case, pack_s4, rmsnorm_case, requant_params
from oracle import O
from trm_tvm.compile.hostcc import build_shared
from trm_tvm.compile.kernel_abi import KERNELS_DIR, REF_SOURCES, Kernels

N = 1000


@pytest.fixture(scope="module")
def K():
    return Kernels(build_shared(REF_SOURCES, [KERNELS_DIR]), "ref")


@pytest.mark.parametrize("packed_s4", [False, True])
def test_linear(K, packed_s4):
    rng = np.random.default_rng(1 + packed_s4)
    saturated = ties = 0
    for _ in range(N):
        a, w, bias, mult, sh = linear_case(rng, packed_s4)
        want = O.linear(a, w, bias, mult, sh)
        got = K.linear(a, pack_s4(w) if packed_s4 else w, bias, mult, sh, packed_s4=packed_s4)
        np.testing.assert_array_equal(got, want)
        saturated += int(np.isin(want, [-128, 127]).sum())
        ties += int(O.tie_count(O.acc(a, w, bias), mult, sh))
    assert saturated > 100 and ties > 100  # the edges were really exercised


def test_head_int16(K):
    rng = np.random.default_rng(3)
    for _ in range(N):
        a, w, bias, mult, sh = linear_case(rng)
        sh = np.maximum(sh - 8, 1).astype(np.int32)  # int16 range: saturates sometimes
        np.testing.assert_array_equal(K.head(a, w, bias, mult, sh), O.linear(a, w, bias, mult, sh, out_bits=16))


def test_add_mul_lut(K):
    rng = np.random.default_rng(4)
    for _ in range(N):
        n = int(rng.integers(1, 50))
        ins = [int8(rng, n, rng.random() < 0.1) for _ in range(int(rng.integers(1, 4)))]
        m = rng.integers(0, 1 << 15, size=len(ins)).astype(np.int32)
        s = int(rng.integers(1, 20))
        np.testing.assert_array_equal(K.add_s8(ins, m, s), O.add(ins, m, s))
        np.testing.assert_array_equal(K.add_s32(ins, m), O.add(ins, m, None))
        a, b = int8(rng, n), int8(rng, n)
        (mult,), (shift,) = requant_params(rng, 1, 128 * 128)
        np.testing.assert_array_equal(K.mul(a, b, mult, shift), O.mul(a, b, mult, shift))
        table = int8(rng, 256)
        np.testing.assert_array_equal(K.lut(a, table), table[a.astype(np.int64) + 128])


def test_rmsnorm(K):
    rng = np.random.default_rng(5)
    for _ in range(N):
        r, eps, mult, sh = rmsnorm_case(rng)
        np.testing.assert_array_equal(K.rmsnorm(r, eps, mult, sh), O.rmsnorm(r, eps, mult, sh))


def test_layout_ops(K):
    rng = np.random.default_rng(6)
    for _ in range(N):
        rows, cols = int(rng.integers(1, 20)), int(rng.integers(1, 20))
        a = int8(rng, (rows, cols))
        np.testing.assert_array_equal(K.transpose(a), a.T)
        (mult,), (shift,) = requant_params(rng, 1, 128 * rows)
        np.testing.assert_array_equal(K.mean_pool(a, mult, shift), O.mean_pool(a, mult, shift))
        ch, patch, tokens = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        x = int8(rng, (ch, patch * tokens))
        want = x.reshape(ch, tokens, patch).transpose(1, 0, 2).reshape(tokens, ch * patch)
        np.testing.assert_array_equal(K.patch(x, patch), want)
        digits = rng.integers(0, 10, size=tokens).astype(np.uint8)
        table = int8(rng, (10, cols))
        np.testing.assert_array_equal(K.embed(digits, table), table[digits])
        logits = rng.integers(-3, 3, size=int(rng.integers(1, 12))).astype(np.int16)  # many ties
        assert K.argmax(logits) == int(np.argmax(logits))  # numpy: first maximum
