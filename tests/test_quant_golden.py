"""Golden model: agrees with the float reference on random artifacts, halts as the spec says, float_ref == torch."""
import numpy as np
import pytest

from trm_tvm.quant import float_ref as fr
from trm_tvm.quant import spec
from trm_tvm.quant.fixtures import golden_inputs, random_artifact
from trm_tvm.quant.golden import Golden


def cosine(a, b):
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


@pytest.mark.parametrize("kw", [
    dict(hidden=16, tokens=8, classes=5),
    dict(hidden=16, tokens=9, classes=9, input_kind="tokens", state_scale_mode="per_step"),
    dict(hidden=13, tokens=5, classes=4, channels=3, patch=3, n=1, T=3, N_sup=2),
])
def test_golden_tracks_float_reference(kw):
    art, params, dims = random_artifact(seed=1, **kw)
    f, d = golden_inputs(art, 48, seed=7)
    res = Golden(art).infer(d, all_steps=True)
    ref = fr.forward(params, dims, f)
    s = art.header["io"]["logit_scale"]
    first = res.step_logits[:, 0] * s
    assert cosine(first, ref.logits[:, 0]) > 0.98
    assert (first.argmax(-1) == ref.logits[:, 0].argmax(-1)).mean() > 0.85
    q_scale = art.header["halting"]["q_scale"]
    assert cosine(res.q[:, 0] * q_scale, ref.q[:, 0]) > 0.98


def test_w4_artifact_uses_packed_weights_and_still_tracks():
    art, params, dims = random_artifact(hidden=16, tokens=8, classes=5, bits=4, seed=2)
    packed = [n for n in art.graph["net"] if n["op"] == "linear" and n["bits"] == 4]
    assert packed and all(art[n["weight"]].dtype == np.uint8 for n in packed)
    f, d = golden_inputs(art, 32, seed=3)
    res = Golden(art).infer(d, max_steps=1, q_thr=spec.INT32_MAX)
    assert cosine(res.logits * art.header["io"]["logit_scale"], fr.forward(params, dims, f, n_sup=1).logits[:, 0]) > 0.9


@pytest.fixture(scope="module")
def small():
    art, params, dims = random_artifact(hidden=12, tokens=4, classes=3, patch=4, N_sup=4, seed=5)
    return art, golden_inputs(art, 40, seed=9)[1]


def test_halting_threshold_zero_and_one(small):
    art, d = small
    g = Golden(art)
    thr0 = spec.q_threshold(0.0, art.header["halting"]["q_scale"])
    thr1 = spec.q_threshold(1.0, art.header["halting"]["q_scale"])
    assert (g.infer(d, q_thr=thr0).steps == 1).all()
    assert (g.infer(d, q_thr=thr1).steps == art.schedule["N_sup"]).all()


def test_halting_picks_the_first_step_over_threshold(small):
    art, d = small
    g = Golden(art)
    full = g.infer(d, q_thr=spec.INT32_MAX, all_steps=True)
    thr = int(np.median(full.q))                  # some samples stop early, some do not
    res = g.infer(d, q_thr=thr)
    over = full.q >= thr
    over[:, -1] = True
    want = over.argmax(1) + 1
    assert np.array_equal(res.steps, want) and 1 < want.max() and want.min() < art.schedule["N_sup"]
    assert np.array_equal(res.logits, full.step_logits[np.arange(len(d)), want - 1])
    assert np.array_equal(res.pred, spec.argmax_s16(res.logits))
    same = g.infer(d, q_thr=thr, all_steps=True)   # running stopped samples on changes nothing
    assert np.array_equal(same.logits, res.logits) and np.array_equal(same.steps, res.steps)


def test_fixed_compute_k_steps_and_states(small):
    art, d = small
    g = Golden(art)
    res = g.infer(d[:5], q_thr=spec.INT32_MAX, max_steps=2, keep_states=True)
    assert (res.steps == 2).all()
    calls = len(art.calls)
    assert res.states.shape == (5, 2, calls, 2, 4, 12)
    # the last y-call's state after step 1 feeds step 2: replay step 2 from it
    x = g.prologue(d[:5])
    y, z = res.states[:, 0, -1, 0].astype(np.int64), res.states[:, 0, -1, 1].astype(np.int64)
    y2, z2, lg, q = g.supervision_step(x, y, z)
    assert np.array_equal(lg, res.logits)


def test_float_ref_matches_torch_model():
    torch = pytest.importorskip("torch")
    from trm_tvm.config import ModelConfig
    from trm_tvm.model import TRM, Shape

    cfg = ModelConfig(hidden=12, layers=2, n=2, T=2, N_sup=2)
    shape = Shape(tokens=4, classes=3, channels=2, patch=4)
    torch.manual_seed(0)
    model = TRM(cfg, shape).eval()
    with torch.no_grad():
        model.halt.weight.normal_()
    params = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    dims = fr.Dims.from_model(cfg, shape)
    inp = np.random.default_rng(0).normal(size=(3, 2, 16))
    with torch.no_grad():
        steps = model.double()(torch.from_numpy(inp))
    ref = fr.forward(params, dims, inp)
    for k, st in enumerate(steps):
        assert np.allclose(ref.logits[:, k], st.logits.numpy(), atol=1e-9)
        assert np.allclose(ref.q[:, k], st.q.numpy(), atol=1e-9)


@pytest.mark.parametrize("kw,min_cos", [(dict(state_bits=16), 0.98), (dict(bits=4, act_bits=4, state_bits=4), 0.3)])
def test_study_variants_run_in_the_golden_model_only(kw, min_cos):
    art, params, dims = random_artifact(hidden=16, tokens=8, classes=5, seed=4, **kw)
    assert not art.on_device
    if kw.get("state_bits") == 16:
        assert art["y_init"].dtype == np.int16 and art.header["activations"]["out"]["dtype"] == "int16"
    f, d = golden_inputs(art, 32, seed=3)
    res = Golden(art).infer(d, max_steps=1, q_thr=spec.INT32_MAX)
    ref = fr.forward(params, dims, f, n_sup=1).logits[:, 0]
    assert cosine(res.logits * art.header["io"]["logit_scale"], ref) > min_cos
