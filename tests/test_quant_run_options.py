"""quantize run --per-tensor and --no-deep-supervision reach the artifact (and its provenance)."""
import numpy as np

from trm_tvm import quantize
from trm_tvm.quant.artifact import Artifact


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


from test_quant_cli import ckpt  # noqa: E402,F401  (the tiny checkpoint fixture)
