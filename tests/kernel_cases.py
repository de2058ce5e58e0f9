"""Random kernel test cases shared by the ref, tvm and hand-written kernel tests.

Every generator covers the edges of docs/integer-spec.md: saturation at both ends, exact rounding ties
(power-of-two multipliers with small shifts), negative multipliers, the extreme int8 values and odd sizes.
"""
from __future__ import annotations

import numpy as np

from trm_tvm.quant.spec import pack_s4  # noqa: F401  (re-exported for the kernel tests)

I8 = np.iinfo(np.int8)


def int8(rng, shape, extreme: bool = False) -> np.ndarray:
    if extreme:  # all -128 / 127: the largest accumulators
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def requant_params(rng, n: int, acc_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (M, sh) so that rq(acc) lands around +-200 (saturating some), plus tie-making channels."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=n, dtype=np.int64)
    # rq(acc) ~ acc * M / 2^sh ~ 200  ->  sh ~ log2(acc_scale * M / 200)
    sh = np.clip(np.round(np.log2(max(acc_scale, 1.0) * (1 << 30) / 200.0)) + rng.integers(-1, 3, size=n), 1, 62)
    kind = rng.integers(0, 8, size=n)
    ties = kind == 0  # M = 2^p, small sh: (acc * 2^p) has an exact .5 fraction for half of the accs
    p = rng.integers(0, 4, size=int(ties.sum()))
    mult[ties] = 1 << p
    sh[ties] = p + rng.integers(1, 4, size=int(ties.sum()))
    neg = kind == 1
    mult[neg] = -mult[neg]
    return mult.astype(np.int32), sh.astype(np.int32)


def linear_case(rng, packed_s4: bool = False, max_dim: int = 40):
    tokens = int(rng.integers(1, 6))
    n_in = int(rng.integers(1, max_dim))
    n_out = int(rng.integers(1, max_dim))
    extreme = rng.random() < 0.1
    a = int8(rng, (tokens, n_in), extreme)
    if packed_s4:
        w = rng.integers(-8, 8, size=(n_out, n_in)).astype(np.int8)
        if extreme:
            w[:] = rng.choice(np.array([-8, 7], np.int8), size=w.shape)
    else:
        w = int8(rng, (n_out, n_in), extreme)
    bias = rng.integers(-(1 << 20), 1 << 20, size=n_out).astype(np.int32) if rng.random() < 0.7 else None
    acc_scale = 50.0 * (8 if packed_s4 else 70) * np.sqrt(n_in)
    mult, sh = requant_params(rng, n_out, acc_scale)
    return a, w, bias, mult, sh


def rmsnorm_case(rng, max_dim: int = 70, dims: tuple | None = None):
    tokens, dim = dims or (int(rng.integers(1, 5)), int(rng.integers(1, max_dim)))
    mag = int(rng.choice([1 << 4, 1 << 12, 1 << 20, (1 << 24) - 1]))
    r = rng.integers(-mag, mag + 1, size=(tokens, dim)).astype(np.int32)
    if rng.random() < 0.05:
        r[0] = 0  # ss == eps (or 0 with eps == 0: all outputs 0)
    if rng.random() < 0.05:
        r[-1] = r[-1, 0]  # one value repeated: r/d exactly 1/sqrt(D)
    eps = int(rng.choice([0, 1, int(rng.integers(0, 1 << 16))]))
    mult, sh = requant_params(rng, dim, (1 << 15) / np.sqrt(dim) * 2)
    return r, eps, mult, sh
