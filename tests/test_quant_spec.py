"""Each integer primitive of docs/integer-spec.md against exact or float references and at its edges."""
import math
from fractions import Fraction

import numpy as np
import pytest

from trm_tvm.quant import spec

rng = np.random.default_rng(0)


def exact_rq(v, M, sh):
    """Round half up of v*M/2^sh in exact rationals."""
    return math.floor(Fraction(int(v) * int(M), 2 ** int(sh)) + Fraction(1, 2))


def test_rq_matches_exact_rounding_including_ties():
    vs = rng.integers(-2 ** 31, 2 ** 31, 2000)
    Ms = rng.integers(-2 ** 31 + 1, 2 ** 31, 2000)
    shs = rng.integers(1, 63, 2000)
    got = spec.rq(vs, Ms, shs)
    assert all(int(g) == exact_rq(v, M, s) for g, v, M, s in zip(got, vs, Ms, shs))
    # ties go toward +inf: 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1
    assert spec.rq([1, -1, 3, -3], 1, 1).tolist() == [1, 0, 2, -1]


def test_saturation_edges():
    assert spec.sat8([-129, -128, 127, 128, 0]).tolist() == [-128, -128, 127, 127, 0]
    assert spec.sat8([5]).dtype == np.int8
    assert spec.sat16([-40000, 40000]).tolist() == [-32768, 32767]
    assert spec.sat([-9, -8, 7, 8], 4).tolist() == [-8, -8, 7, 7]


@pytest.mark.parametrize("m", [1e-9, 3.7e-5, 0.0123, 0.5, 0.999999, 1.0, 1.7, 1234.5, -0.3])
def test_encode_multiplier_is_accurate(m):
    M, sh = spec.encode_multiplier(m)
    assert 1 <= sh <= 62 and abs(int(M)) < 2 ** 31
    assert abs(spec.decode_multiplier(M, sh) - m) <= abs(m) * 2.0 ** -30


def test_encode_multiplier_edges():
    M, sh = spec.encode_multiplier(1 - 2.0 ** -40)        # rounds to 2^31 -> carried to 2^30, one shift less
    assert (int(M), int(sh)) == (2 ** 30, 30)
    assert tuple(map(int, spec.encode_multiplier(0.0))) == (0, 1)
    assert tuple(map(int, spec.encode_multiplier(2.0 ** -40))) == (0, 1)     # sh would be > 62
    with pytest.raises(ValueError):
        spec.encode_multiplier(2.0 ** 31)


@pytest.mark.parametrize("n_in", [1, 2, 3, 7, 8, 33])
def test_int4_pack_round_trip_odd_sizes(n_in):
    w = rng.integers(-8, 8, (5, n_in)).astype(np.int8)
    p = spec.pack_s4(w)
    assert p.shape == (5, (n_in + 1) // 2) and p.dtype == np.uint8
    assert np.array_equal(spec.unpack_s4(p, n_in), w)


def test_int4_byte_layout():
    # element 0 low nibble, element 1 high nibble, odd tail padded with 0
    assert spec.pack_s4(np.array([[1, -1, 7]])).tolist() == [[0xF1, 0x07]]
    assert spec.pack_s4(np.array([[-8, 7]])).tolist() == [[0x78]]
    with pytest.raises(ValueError):
        spec.pack_s4(np.array([[8]]))


def test_linear_matches_float_within_one_lsb():
    T, K, O = 6, 40, 9
    s_a, s_w, s_out = 0.05, rng.uniform(0.001, 0.01, O), 0.08
    a = rng.integers(-128, 128, (3, T, K))
    w = rng.integers(-127, 128, (O, K))
    bias_f = rng.normal(0, 0.5, O)
    bias = np.round(bias_f / (s_a * s_w)).astype(np.int32)
    M, sh = spec.encode_multiplier(s_a * s_w / s_out)
    got = spec.linear_s8(a, w, bias, M, sh)
    ref = ((a * s_a) @ (w * s_w[:, None]).T + bias * s_a * s_w) / s_out
    assert got.dtype == np.int8 and got.shape == (3, T, O)
    assert np.abs(got - np.clip(np.round(ref), -128, 127)).max() <= 1
    w4 = rng.integers(-8, 8, (O, K - 1))
    got4 = spec.linear_s4(a[..., :K - 1], spec.pack_s4(w4), K - 1, bias, M, sh)
    assert np.array_equal(got4, spec.linear_s8(a[..., :K - 1], w4, bias, M, sh))
    heads = spec.head_s8(a, w, bias, M, sh)
    assert heads.dtype == np.int16


def test_linear_accumulator_overflow_is_a_spec_violation():
    with pytest.raises(spec.SpecViolation):
        spec.linear_s8(np.full((1, 4), 127), np.full((1, 4), 127), [2 ** 31 - 10], [2 ** 30], [31])


def test_add_matches_float():
    scales = [0.02, 0.035, 0.011]
    s_out = 0.05
    m, s = spec.add_multipliers(scales, s_out)
    assert s >= 1 and m.max() < 2 ** 15
    qs = [rng.integers(-128, 128, (4, 10)) for _ in scales]
    got = spec.add_s8(qs, m, s)
    ref = sum(q * sc for q, sc in zip(qs, scales)) / s_out
    assert np.abs(got - np.clip(np.round(ref), -128, 127)).max() <= 1
    m32, s_r = spec.residual_multipliers([0.02, 0.04])
    assert m32.tolist() == [2 ** 13, 2 ** 14]
    r = spec.add_s32(qs[:2], m32)
    assert np.allclose(r * s_r, qs[0] * 0.02 + qs[1] * 0.04)


def test_mul_matches_float():
    a, b = rng.integers(-128, 128, 500), rng.integers(-128, 128, 500)
    M, sh = spec.encode_multiplier(0.03 * 0.02 / 0.004)
    ref = (a * 0.03) * (b * 0.02) / 0.004
    assert np.abs(spec.mul_s8(a, b, M, sh) - np.clip(np.round(ref), -128, 127)).max() <= 1


def test_silu_lut_is_exact():
    s_in, s_out = 0.06, 0.031
    table = spec.silu_lut(s_in, s_out)
    for q in range(-128, 128):
        x = q * s_in
        want = max(-128, min(127, math.floor(x / (1 + math.exp(-x)) / s_out + 0.5)))
        assert table[q + 128] == want
    qs = np.arange(-128, 128)
    assert np.array_equal(spec.lut_s8(qs, table), table)


def test_isqrt_exact():
    vals = np.concatenate([rng.integers(0, 2 ** 62, 3000), np.arange(0, 300),
                           np.array([k * k + d for k in (1, 2 ** 20, 2 ** 31 - 1) for d in (-1, 0, 1)])])
    vals = vals[vals >= 0]
    assert [int(x) for x in spec.isqrt(vals)] == [math.isqrt(int(v)) for v in vals]
    assert spec.bit_length(np.array([0, 1, 2, 255, 256, 2 ** 62])).tolist() == [0, 1, 2, 8, 9, 63]


def _float_rmsnorm(r, gamma, eps):
    return r / np.sqrt((r * r).mean(-1, keepdims=True) + eps) * gamma


def test_rmsnorm_matches_float():
    D, s_r, s_out, eps = 48, 2e-6, 0.03, 1e-5
    gamma = rng.uniform(0.5, 1.5, D) * rng.choice([-1, 1], D)
    r = rng.integers(-2 ** 22, 2 ** 22, (5, 7, D))
    M, sh = spec.rmsnorm_multipliers(gamma, D, s_out)
    got = spec.rmsnorm_s32(r, spec.eps_int(eps, D, s_r), M, sh)
    ref = _float_rmsnorm(r * s_r, gamma, eps) / s_out
    assert np.abs(got - np.clip(np.round(ref), -128, 127)).max() <= 1


def test_rmsnorm_edges():
    D = 16
    M, sh = spec.rmsnorm_multipliers(np.ones(D), D, 0.05)
    zero = np.zeros((2, D), np.int64)
    assert not spec.rmsnorm_s32(zero, 0, M, sh).any()          # ss == 0
    assert not spec.rmsnorm_s32(zero, 1000, M, sh).any()       # eps only
    big = np.full((1, D), 2 ** 24 - 1)
    big[0, ::2] *= -1
    out = spec.rmsnorm_s32(big, 7, M, sh)                       # |r/rms| = 1 -> 1/0.05 = 20
    assert np.array_equal(np.abs(out), np.full((1, D), 20))
    one_hot = np.zeros((1, D), np.int64)
    one_hot[0, 3] = 12345
    out = spec.rmsnorm_s32(one_hot, 0, M, sh)                   # r/rms = sqrt(D) = 4 -> 80
    assert out[0, 3] == 80 and np.count_nonzero(out) == 1
    with pytest.raises(spec.SpecViolation):
        spec.rmsnorm_s32(np.full((1, D), 2 ** 24), 0, M, sh)


def test_mean_pool_transpose_patch_embed_argmax():
    y = rng.integers(-128, 128, (3, 8, 5))
    M, sh = spec.encode_multiplier(0.04 / (8 * 0.02))
    ref = y.sum(-2) * 0.04 / 8 / 0.02
    assert np.abs(spec.mean_pool_s8(y, M, sh) - np.clip(np.round(ref), -128, 127)).max() <= 1
    assert spec.transpose_s8(y).shape == (3, 5, 8)
    C, S, P = 2, 12, 4
    x = np.arange(C * S).reshape(C, S)
    p = spec.patch_s8(x, P)
    assert p.shape == (S // P, C * P)
    for t in range(S // P):
        for c in range(C):
            for i in range(P):
                assert p[t, c * P + i] == x[c, t * P + i]
    table = rng.integers(-128, 128, (10, 4)).astype(np.int8)
    assert np.array_equal(spec.embed_s8(np.array([3, 0, 9]), table), table[[3, 0, 9]])
    assert spec.argmax_s16(np.array([[1, 5, 5, 2], [-3, -3, -4, -9]])).tolist() == [1, 0]


def test_q_threshold_and_host_input():
    assert spec.q_threshold(0.0, 0.01) == spec.INT32_MIN
    assert spec.q_threshold(1.0, 0.01) == spec.INT32_MAX
    s_q = 0.013
    for tau in (0.1, 0.5, 0.73, 0.99):
        thr = spec.q_threshold(tau, s_q)
        for q in range(-500, 500):
            assert (q >= thr) == (1 / (1 + math.exp(-q * s_q)) >= tau)
    assert spec.quantize_input([0.5, -0.5, 1.5, 1000], 1.0).tolist() == [1, 0, 2, 127]
    assert spec.halt_decision(np.array([-5, 3]), 3).tolist() == [False, True]


def test_int_matmul_is_exact_integer_arithmetic():
    for lo, hi, K in ((-128, 128, 48), (-128, 128, 4096), (-2 ** 15, 2 ** 15, 700)):
        a = rng.integers(lo, hi, (3, 5, K))
        w = rng.integers(-128, 128, (7, K))
        a[0, 0] = lo                                   # extremes: every product at its largest magnitude
        w[0] = -128
        assert np.array_equal(spec.int_matmul(a, w), a.astype(np.int64) @ w.astype(np.int64).T)
    big = np.full((1, 3), 2 ** 40)                      # beyond the float64 bound: the int64 path
    assert spec.int_matmul(big, np.full((1, 3), 2 ** 12))[0, 0] == 3 * 2 ** 52


# -- the shift-32 encoding of linear multipliers -----------------------------------------------------------------
def test_shift32_encoding_is_accurate_where_it_applies():
    m = np.concatenate([10.0 ** rng.uniform(-5, -0.31, 2000), -(10.0 ** rng.uniform(-5, -0.31, 200))])
    M, sh = spec.encode_multiplier_shift32(m)
    at32 = sh == 32
    assert at32.all()                                     # 1e-5 * 2^32 > 2^15 and |m| < 0.49 < 2^31 / 2^32
    assert np.all(np.abs(M.astype(np.int64)) >= spec.SHIFT32_MIN_MULT) and np.all(np.sign(M) == np.sign(m))
    # round half up of |m| * 2^32: within half an LSB, so a relative error <= 2^-16 at the smallest M
    err = np.abs(spec.decode_multiplier(M, sh) - m)
    assert np.all(err <= 2.0 ** -33) and np.all(err <= np.abs(m) * 2.0 ** -16)


def test_shift32_rq_equals_the_rounded_high_word():
    """sh = 32: (v*M + 2^31) >> 32, what SMMULR / VRMULH compute, exact for every int32 v and M."""
    vs = rng.integers(-2 ** 31, 2 ** 31, 3000)
    Ms = rng.integers(-2 ** 31 + 1, 2 ** 31, 3000)
    got = spec.rq(vs, Ms, 32)
    assert all(int(g) == exact_rq(v, M, 32) for g, v, M in zip(got[:500], vs, Ms))
    assert np.all(np.abs(got) <= 2 ** 30) and np.array_equal(got, (vs * Ms + 2 ** 31) >> 32)


def test_shift32_falls_back_to_the_normalised_encoding():
    small = 2.0 ** -17 * 0.999                            # fewer than 16 bits at shift 32
    big = 0.5                                             # 2^31 does not fit int32
    just_below = (2 ** 31 - 1) / 2.0 ** 32                # the largest M that fits
    edge_low = 2.0 ** -17                                 # exactly 2^15
    rounds_up_to_2_31 = (2 ** 31 - 0.5) / 2.0 ** 32       # round half up gives 2^31: falls back
    m = np.array([0.0, small, big, just_below, edge_low, rounds_up_to_2_31, -big, -just_below, 3.0, 1e-20])
    M, sh = spec.encode_multiplier_shift32(m)
    Mn, shn = spec.encode_multiplier(m)
    at32 = [False, False, False, True, True, False, False, True, False, False]
    assert (sh == 32).tolist() == at32
    assert np.array_equal(M[~np.array(at32)], Mn[~np.array(at32)]) and np.array_equal(sh[~np.array(at32)],
                                                                                       shn[~np.array(at32)])
    assert M[3] == 2 ** 31 - 1 and M[4] == 2 ** 15 and M[7] == -(2 ** 31 - 1)
    assert (int(M[0]), int(sh[0])) == (0, 1) and (int(M[-1]), int(sh[-1])) == (0, 1)
    with pytest.raises(ValueError):
        spec.encode_multiplier_shift32([2.0 ** 31])
    with pytest.raises(ValueError):
        spec.encode_multiplier_shift32([float("nan")])


def test_shift32_linear_outputs_track_the_normalised_ones():
    """Same real multiplier, two encodings: int8 outputs of a linear layer differ only at rounding ties that
    the 16+-bit multiplier moves, i.e. by at most 1 LSB and rarely."""
    a = rng.integers(-128, 128, (64, 48)).astype(np.int8)
    w = rng.integers(-127, 128, (32, 48)).astype(np.int8)
    m = 10.0 ** rng.uniform(-4, -3, 32)
    n = spec.linear_s8(a, w, np.zeros(32, np.int32), *spec.encode_multiplier(m))
    s = spec.linear_s8(a, w, np.zeros(32, np.int32), *spec.encode_multiplier_shift32(m))
    diff = np.abs(n.astype(np.int64) - s)
    assert diff.max() <= 1 and diff.mean() < 0.01
