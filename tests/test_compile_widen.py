"""The dsp linear form's `widen` knob (activations widened once per call into arena scratch): the executor's static
memory plan gives the kernels their scratch, and whole models stay bit-exact against the golden model; the knob
changes neither the plain form (also GAP9's per-core kernel) nor the dsp form without it."""
import numpy as np
import pytest

from trm_tvm.compile import strategies
from trm_tvm.compile.driver import compile_artifact
from trm_tvm.compile.hostrun import HostModel
from trm_tvm.compile.lower_c import to_c
from trm_tvm.compile.strategies import linear
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.jsonio import read_json
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.fixtures import golden_inputs, random_artifact
from trm_tvm.quant.golden import Golden


@pytest.fixture
def widen_by_default(monkeypatch):
    knobs_for = strategies.knobs_for

    def with_widen(family, level, board=None):
        k = knobs_for(family, level, board)
        return {**k, "widen": True} if family == "linear" and level != "naive" else k
    monkeypatch.setattr(strategies, "knobs_for", with_widen)


@pytest.mark.parametrize("bits", [8, 4])
def test_widen_scratch_is_planned_and_bit_exact(widen_by_default, tmp_path, bits):
    art, _, _ = random_artifact(bits=bits, seed=5, hidden=12, tokens=6)   # 6 tokens: not a multiple of the 4-token tile
    art.save(tmp_path / "a.npz")
    compile_artifact(tmp_path / "a.npz", "cortex-m4", "tvm", tmp_path / "build")
    plan = read_json(tmp_path / "build" / "memory_plan.json")
    scratch = [t for t in plan["sections"]["net"]["tensors"] if t.endswith(".scratch")]
    assert scratch, "the widened activations must come from the arena"
    assert plan["lower_bound_bytes"] <= plan["arena_bytes"] <= 1.25 * plan["lower_bound_bytes"]
    assert "aw[" in (tmp_path / "build" / "model" / "trm_kernels_tvm.c").read_text()
    art = Artifact.load(tmp_path / "a.npz")
    _, inp = golden_inputs(art, 20, seed=3)
    g = Golden(art).infer(inp)
    h = HostModel(tmp_path / "build").run(inp, art.header["halting"]["q_thr"], art.schedule["N_sup"])
    np.testing.assert_array_equal(h.logits, g.logits.reshape(len(inp), -1))


@pytest.mark.parametrize("shape", [LinearShape(16, 48, 96), LinearShape(7, 24, 10, 4, bias=True),
                                   LinearShape(48, 32, 16, out_trans=True), LinearShape(5, 12, 6, 8, "int16", True)],
                         ids=lambda s: s.key)
def test_widen_leaves_the_other_forms_alone(shape):
    base = {**linear.NAIVE, "order": "to", "tile_o": 4, "tile_t": 2, "unroll_k": 2, "fuse": True}
    for dsp in (False, True):
        k = {**base, "dsp": dsp}
        assert to_c({"f": linear.schedule(shape, {**k, "widen": False})}) == to_c({"f": linear.schedule(shape, k)})
    plain = {**base, "dsp": False}
    assert to_c({"f": linear.schedule(shape, {**plain, "widen": True})}) == to_c({"f": linear.schedule(shape, plain)})
    assert linear.scratch_bytes(shape, {**plain, "widen": True}) == 0
    widened = {**base, "dsp": True, "widen": True}
    assert linear.scratch_bytes(shape, widened) == 2 * shape.tokens * shape.n_in
    assert len(linear.schedule(shape, widened).params) == 6 + shape.bias
