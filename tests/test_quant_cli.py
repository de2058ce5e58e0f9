"""python -m trm_tvm.quantize: PTQ of a (tiny, untrained) checkpoint end to end, evaluation, one-line errors."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trm_tvm import quantize  # noqa: E402
from trm_tvm.config import Config, ModelConfig, TaskConfig, to_dict  # noqa: E402
from trm_tvm.model import TRM, Shape, checkpoint_dict  # noqa: E402
from trm_tvm.quant.artifact import Artifact  # noqa: E402
from trm_tvm.tasks import Dataset  # noqa: E402


@pytest.fixture()
def ckpt(tmp_path, monkeypatch):
    cfg = Config(task=TaskConfig(name="ecg", seq_len=64, patch=16),
                 model=ModelConfig(hidden=12, layers=2, n=1, T=2, N_sup=3))
    shape = Shape(tokens=4, classes=3, channels=1, patch=16)
    torch.manual_seed(0)
    model = TRM(cfg.model, shape)
    with torch.no_grad():
        model.halt.weight.normal_()
    path = tmp_path / "model.pt"
    torch.save(checkpoint_dict(model, to_dict(cfg), {}), path)
    rng = np.random.default_rng(0)
    data = Dataset(shape, rng.normal(size=(64, 1, 64)).astype(np.float32), rng.integers(0, 3, 64),
                   rng.normal(size=(40, 1, 64)).astype(np.float32), rng.integers(0, 3, 40), ["a", "b", "c"])
    monkeypatch.setattr(quantize, "_dataset", lambda cfg: data)
    return path


def test_run_eval_and_reload(ckpt, tmp_path, capsys):
    out, js = tmp_path / "a.npz", tmp_path / "e.json"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w8a8.yaml", "--out", str(out),
                          "--calib-samples", "32", "--eval", "--json", str(js)]) == 0
    art = Artifact.load(out)
    prov = art.header["provenance"]
    assert prov["source"]["sha256"] and prov["calibration"]["samples"] == 32 and "--recipe" in prov["command"]
    assert art.header["halting"]["threshold"] == 0.5 and art.schedule["N_sup"] == 3
    res = json.loads(js.read_text())
    assert res["halting"]["quant"]["n"] == 40 and len(res["fixed"]) == 3
    assert res["fixed"][0]["agreement"] > 0.8            # W8A8 tracks the float model
    assert "measured" in capsys.readouterr().out
    assert quantize.main(["eval", "--checkpoint", str(ckpt), "--artifact", str(out), "--limit", "10"]) == 0


def test_w4a8_packs_weights(ckpt, tmp_path):
    out = tmp_path / "w4.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w4a8.yaml", "--out", str(out),
                          "--calib-samples", "16"]) == 0
    art = Artifact.load(out)
    assert art["net.layers.0.ch.up.weight"].dtype == np.uint8 and art["embed.weight"].dtype == np.int8


def test_errors_are_one_line(ckpt, tmp_path, capsys):
    typo = tmp_path / "q.yaml"
    typo.write_text("observer: mse\n")
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", str(typo), "--out", "x.npz"]) == 2
    bad = tmp_path / "b.yaml"
    bad.write_text("weight_bits: 3\n")
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", str(bad), "--out", "x.npz"]) == 2
    other = tmp_path / "r.npz"
    assert quantize.main(["random", "--out", str(other), "--hidden", "8"]) == 0
    assert quantize.main(["eval", "--checkpoint", str(ckpt), "--artifact", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "unknown key" in err[0] and "weight_bits" in err[1] and "not made from" in err[2]


def test_qat_recipe_runs_and_records_history(ckpt, tmp_path):
    torch.set_num_threads(1)
    recipe = tmp_path / "w4a8_qat.yaml"
    recipe.write_text("name: w4a8\nmethod: qat\nweight_bits: 4\nact_observer: minmax\n"
                      "qat: {epochs: 1, monitor: 16, batch_size: 16, lr: 0.001}\n")
    out = tmp_path / "q.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", str(recipe), "--out", str(out),
                          "--calib-samples", "16"]) == 0
    art = Artifact.load(out)
    hist = art.header["provenance"]["qat"]["history"]
    assert [h["at"] for h in hist] == ["start", "epoch 1"] and "loss" in hist[1]


def test_dynamics_report(ckpt, tmp_path, capsys):
    from trm_tvm import dynamics

    art = tmp_path / "a.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w8a8.yaml", "--out", str(art),
                          "--calib-samples", "16"]) == 0
    out = tmp_path / "dyn"
    assert dynamics.main(["--checkpoint", str(ckpt), "--artifact", str(art), "--recipe", "qat/w8a8.yaml",
                          "--variants", "--out", str(out), "--limit", "20"]) == 0
    res = json.loads((out / "dynamics.json").read_text())["results"]
    assert len(res) == 5 and all((out / f).is_file() for f in ("drift.png", "steps.png", "halting.png"))
    r = res[0]
    assert len(r["cos_z"]) == 3 * 2 * 2 and r["cos_z"][0] > 0.95          # N_sup * T * (n+1) calls
    assert sum(r["halting"]["steps_hist_quant"]) == 20
    assert {x["state_scale_mode"] for x in res[1:]} == {"shared", "per_step"}
    assert dynamics.main(["--checkpoint", str(ckpt), "--out", str(out)]) == 2


def test_mixed_meets_the_budget(ckpt, tmp_path, capsys):
    from trm_tvm.quant.mixed import candidate_layers

    out, js = tmp_path / "m.npz", tmp_path / "m.json"
    w8 = tmp_path / "w8.npz"
    assert quantize.main(["run", "--checkpoint", str(ckpt), "--recipe", "qat/w8a8.yaml", "--out", str(w8),
                          "--calib-samples", "16"]) == 0
    full = Artifact.load(w8).weight_bytes()["weights"]
    budget_kb = 0.75 * full / 1024
    assert quantize.main(["mixed", "--checkpoint", str(ckpt), "--budget-kb", str(budget_kb), "--out", str(out),
                          "--json", str(js), "--monitor", "24"]) == 0
    art = Artifact.load(out)
    assert art.weight_bytes()["weights"] <= budget_kb * 1024 < full
    res = json.loads(js.read_text())
    layers = candidate_layers(art.dims)
    assert set(res["order"]) == set(layers) and len(res["front"]) == len(layers) + 1
    assert res["front"][0]["weight_bytes"] == full                   # the accounting matches the artifact's
    four = res["chosen"]["four_bit"]
    assert four and all(art.header["tensors"][n]["dtype"] == "uint8" for n in four)
    assert quantize.main(["mixed", "--checkpoint", str(ckpt), "--budget-kb", "0.1", "--out", str(out)]) == 2
    assert "raise --budget-kb" in capsys.readouterr().err


def test_sweep_is_resumable(ckpt, tmp_path, capsys, monkeypatch):
    from trm_tvm.quant import sweep

    monkeypatch.setattr(sweep, "RECIPES", ("w8a8", "w4a8"))
    out = tmp_path / "sw"
    args = ["sweep", "--checkpoint", str(ckpt), "--out", str(out), "--limit", "16"]
    assert quantize.main(args) == 0
    table = (out / "sweep.csv").read_text().splitlines()
    assert len(table) == 1 + 1 + 4 and table[1].split(",")[1] == "fp32"
    first = capsys.readouterr().out
    assert first.count(" ...\n") == 4                # four configurations computed
    assert quantize.main(args) == 0
    assert " ...\n" not in capsys.readouterr().out            # the rerun reads the cache
    assert (out / "sweep.png").is_file()
