"""quantize run --per-tensor, --no-deep-supervision and --linear-multipliers reach the artifact (and its provenance)."""
import numpy as np

from trm_tvm import quantize
from trm_tvm.quant import spec
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.fixtures import golden_inputs
from trm_tvm.quant.golden import Golden


def test_per_tensor_gives_one_weight_scale_per_tensor(ckpt, tmp_path):
    out = tmp_path / "pt.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w8a8.yaml", "--out", str(out),
                          "--calib-samples", "16", "--per-tensor"]) == 0
    art = Artifact.load(out)
    scale = art["net.layers.0.ch.up.weight.scale"]
    assert scale.size > 1 and np.all(scale == scale[0])
    assert art.header["provenance"]["recipe"]["per_channel"] is False


def test_no_deep_supervision_is_recorded(ckpt, tmp_path):
    out = tmp_path / "q.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w4a8.yaml", "--method", "qat",
                          "--qat-minutes", "0.02", "--calib-samples", "16", "--no-deep-supervision",
                          "--out", str(out)]) == 0
    prov = Artifact.load(out).header["provenance"]
    assert prov["qat"]["deep_supervision"] is False and "--no-deep-supervision" in prov["command"]


def _linear_nodes(art, op="linear"):
    return [n for sec in art.graph.values() for n in sec if n["op"] == op]


def test_linear_multipliers_shift32(ckpt, tmp_path, capsys):
    """Same recipe twice: shift32 re-encodes only the `linear` nodes' (M, sh) (to sh = 32 where precise, the same
    real multipliers), says so in the header, and changes nothing else; a bad value is one line."""
    outs = {}
    for enc in ("normalised", "shift32"):
        outs[enc] = tmp_path / f"{enc}.npz"
        extra = ["--linear-multipliers", enc] if enc == "shift32" else []
        assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w8a8.yaml", "--out",
                              str(outs[enc]), "--calib-samples", "16", *extra]) == 0
    norm, s32 = Artifact.load(outs["normalised"]), Artifact.load(outs["shift32"])
    assert norm.numerics["linear_multipliers"] == "normalised" and s32.numerics["linear_multipliers"] == "shift32"
    assert s32.header["provenance"]["recipe"]["linear_multipliers"] == "shift32"
    assert "--linear-multipliers shift32" in s32.header["provenance"]["command"]
    assert s32.graph == norm.graph
    lin = {f"{n}.{k}" for node in _linear_nodes(s32) for n in [node["name"]] for k in ("mult", "shift")}
    assert len(lin) == 2 * (1 + 6 * 2)                      # embedding + 6 per layer, 2 layers
    for name in s32.header["tensors"]:
        if name not in lin:                                 # weights, biases, LUTs, norms, heads: identical
            assert np.array_equal(s32[name], norm[name]), name
    shifts = np.concatenate([s32[n] for n in lin if n.endswith(".shift")])
    assert (shifts == 32).mean() > 0.9
    for node in _linear_nodes(s32):
        m_norm = spec.decode_multiplier(norm[node["mult"]], norm[node["shift"]])
        m_s32 = spec.decode_multiplier(s32[node["mult"]], s32[node["shift"]])
        assert np.allclose(m_s32, m_norm, rtol=2.0 ** -15, atol=0)
    for node in _linear_nodes(s32, "head"):                 # heads keep the normalised encoding (int16 logits)
        assert np.array_equal(s32[node["shift"]], norm[node["shift"]])
    Golden(s32).infer(golden_inputs(s32, 4, seed=1)[1])      # runs, no SpecViolation
    capsys.readouterr()
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w8a8.yaml", "--out",
                          str(tmp_path / "x.npz"), "--linear-multipliers", "shift31"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --linear-multipliers 'shift31'") and "shift32" in err[0]


def test_qat_keeps_the_shift32_encoding(ckpt, tmp_path):
    out = tmp_path / "q.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w4a8.yaml", "--method", "qat",
                          "--qat-minutes", "0.02", "--calib-samples", "16", "--linear-multipliers", "shift32",
                          "--out", str(out)]) == 0
    art = Artifact.load(out)
    assert art.numerics["linear_multipliers"] == "shift32"
    assert (np.concatenate([art[n["shift"]] for n in _linear_nodes(art)]) == 32).mean() > 0.9


from test_quant_cli import ckpt  # noqa: E402,F401  (the tiny checkpoint fixture)
