"""Training and evaluation: halting gradients, resume after a kill loses nothing, checkpoints reproduce, clear errors."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trm_tvm.train as train_mod
from trm_tvm import evaluate
from trm_tvm.config import ModelConfig, load_config
from trm_tvm.errors import UserError
from trm_tvm.model import TRM, Shape, load_checkpoint
from trm_tvm.train import supervision_loss

ROOT = Path(__file__).resolve().parent.parent
TINY = """task: {name: sudoku, n_train: 48, n_test: 24, min_clues: 45, max_clues: 50}
model: {hidden: 8, expansion: 0.5, n: 1, T: 2, N_sup: 2}
train: {epochs: 2, batch_size: 16, threads: 1, warmup_steps: 2, eval_every: 1, baseline_wall_time_min: 1}
"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("TRM_TVM_DATA_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    return cfg


def test_halting_head_gets_gradients_from_its_bce_target():
    torch.manual_seed(0)
    m = TRM(ModelConfig(hidden=16, n=1, T=2, N_sup=1), Shape(tokens=4, classes=3, channels=1, patch=4))
    x, target = torch.randn(8, 1, 16), torch.randint(0, 3, (8,))
    grads = {}
    for w in (0.0, 0.5):
        m.zero_grad(set_to_none=True)
        supervision_loss(m(x)[0], target, halt_weight=w)[0].backward()
        grads[w] = 0.0 if m.halt.weight.grad is None else float(m.halt.weight.grad.abs().sum() +
                                                               m.halt.bias.grad.abs().sum())
    assert grads[0.0] == 0.0 and grads[0.5] > 0     # the BCE on "prediction correct" is the halting head's teacher


def test_resume_after_a_kill_gives_the_uninterrupted_result(tiny, tmp_path, monkeypatch, capsys):
    assert train_mod.main(["--config", str(tiny), "--out", str(tmp_path / "a")]) == 0
    real = train_mod.train_batch
    calls = {"n": 0}

    def dies_after_five(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "SAVE_EVERY_S", 0.0)
    monkeypatch.setattr(train_mod, "train_batch", dies_after_five)
    assert train_mod.main(["--config", str(tiny), "--out", str(tmp_path / "b")]) == 130
    assert not (tmp_path / "b" / "model.pt").exists()
    assert train_mod.main(["--config", str(tiny), "--out", str(tmp_path / "b")]) == 2   # needs --resume
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(train_mod, "train_batch", real)
    assert train_mod.main(["--config", str(tiny), "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in "ab")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["meta"]["phases"]["trm"]["opt_step"] == b["meta"]["phases"]["trm"]["opt_step"] == 2 * 3 * 2

    res = evaluate.evaluate_checkpoint(tmp_path / "a" / "model.pt")
    assert res["n_test"] == 24 and len(res["per_step"]) == 2 and "baseline" in res
    assert 0.0 <= res["fixed"]["cell_accuracy_blanks"]["value"] <= 1.0
    assert res["sizes"]["macs_fixed_inference"]["value"] > res["baseline"]["sizes"]["macs_fixed_inference"]["value"]


def test_corrupted_and_foreign_checkpoints_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    for path, needle in ((bad, "cannot be read"), (foreign, "not a trm-tvm-checkpoint"), (tmp_path / "no.pt", "does not exist")):
        with pytest.raises(UserError, match=needle):
            load_checkpoint(path)
        assert evaluate.main(["--checkpoint", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ")


def test_bad_config_and_unknown_task_through_the_train_cli(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {hidden: 8, n: -1}\n")
    assert train_mod.main(["--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("task: {name: mnist}\ntrain: {threads: 1}\n")
    assert train_mod.main(["--config", str(unknown), "--out", str(tmp_path / "r2")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "n >= 0" in lines[0] and "unknown task 'mnist'" in lines[1]


COMMITTED = sorted(p.parent for p in (ROOT / "checkpoints").glob("*/eval.json"))


@pytest.mark.parametrize("ckpt", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_checkpoint_reproduces_its_stored_accuracy(ckpt):
    stored = json.loads((ckpt / "eval.json").read_text())
    sub = stored["subset"]
    res = evaluate.evaluate_checkpoint(ckpt / "model.pt", limit=sub["first_n"], anchor=False, baseline=False)
    (key,) = [k for k in sub if k.startswith("fixed_")]
    assert res["subset"][key] == sub[key]
    assert load_config(ckpt / "config.yaml").model == load_checkpoint(ckpt / "model.pt")[1].model
def test_the_ecg_checkpoint_is_committed_and_deployment_sized():
    stored = json.loads((ROOT / "checkpoints" / "ecg" / "eval.json").read_text())
    assert stored["sizes"]["params"]["value"] <= 100_000
    assert stored["sizes"]["macs_fixed_inference"]["value"] <= 20_000_000
