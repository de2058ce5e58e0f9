"""PTQ pieces: observers, weight quantisation, rebuilding an artifact from its own scales."""
import numpy as np

from trm_tvm.quant.fixtures import random_artifact
from trm_tvm.quant.ptq import Observer, QuantConfig, build, quantise_weight, scales_of


def test_observers_clip_heavy_tails():
    rng = np.random.default_rng(0)
    obs = Observer(rng)
    v = rng.standard_t(2, 200_000)            # heavy tails: a few huge values
    for chunk in np.split(v, 10):
        obs.add(chunk)
    absmax = obs.clip("minmax", 8, 99.99)
    assert absmax == np.abs(v).max()
    assert obs.clip("percentile", 8, 99.0) < absmax / 5
    assert 0 < obs.clip("mse", 4, 100) < absmax


def test_weight_quantisation_per_channel_and_per_tensor():
    w = np.array([[0.5, -1.0, 0.25], [0.01, 0.02, -0.03]])
    q, s = quantise_weight(w, 8, True, "minmax")
    assert q.dtype == np.int8 and q[0, 1] == -127 and q[1, 2] == -127
    assert np.allclose(q * s[:, None], w, atol=s.max() / 2 + 1e-12)
    q, s = quantise_weight(w, 4, False, "minmax")
    assert s[0] == s[1] and np.abs(q).max() == 7 and q[1].tolist() == [0, 0, 0]   # small row vanishes per tensor


def test_build_from_own_scales_reproduces_the_artifact():
    art, params, dims = random_artifact(hidden=12, tokens=4, classes=3, patch=4, state_scale_mode="per_step", seed=6)
    qc = QuantConfig(**art.header["provenance"]["recipe"])
    again = build(params, dims, scales_of(art), qc, art.header["halting"]["threshold"], art.header["provenance"])
    assert again.header == art.header
    assert all(np.array_equal(again[k], art[k]) for k in art.tensors)
