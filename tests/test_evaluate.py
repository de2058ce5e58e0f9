"""Evaluation statistics: Sudoku cell intervals resample puzzles, the seed comparison computes its verdicts."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trm_tvm import evaluate
from trm_tvm.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def test_cell_interval_resamples_whole_puzzles():
    """Half the puzzles all right, half all wrong: 40 puzzles are little evidence, however many cells they hold."""
    blank = np.ones((40, 81), bool)
    right = np.zeros((40, 81), bool)
    right[::2] = True
    got = evaluate.cell_proportion(right, blank, "test")
    assert got["value"] == 0.5 and got["n"] == 40 * 81 and got["puzzles"] == 40
    lo, hi = got["ci95"]
    w_lo, w_hi = evaluate.wilson(20 * 81, 40 * 81)                 # what counting cells as independent would claim
    assert hi - lo > 4 * (w_hi - w_lo)
    assert lo < 0.5 < hi
    uniform = evaluate.cell_proportion(np.tile(np.arange(81) % 2 == 0, (40, 1)), blank, "test")
    assert uniform["ci95"][1] - uniform["ci95"][0] < 1e-9          # every puzzle alike: no puzzle-level spread


def fake_checkpoint(tmp_path, name, seed, trm, base, trm_ci, base_ci, anchor=None):
    d = tmp_path / name
    d.mkdir()
    cfg = (ROOT / "configs" / "gunpoint.yaml").read_text()
    (d / "config.yaml").write_text(cfg.replace("  seed: 0\n  baseline", f"  seed: {seed}\n  baseline"))

    def h(v, ci):
        return {"accuracy": {"value": v, "ci95": list(ci), "provenance": "measured"}}
    res = {"n_test": 150, "fixed": h(trm, trm_ci), "halting": {**h(trm, trm_ci), "mean_steps": 2.0},
           "baseline": h(base, base_ci)}
    if anchor is not None:
        res["anchor"] = h(anchor, (anchor - 0.05, anchor + 0.03))
    (d / "eval.json").write_text(json.dumps(res))
    return str(d)


def test_seed_comparison_verdicts_follow_the_numbers(tmp_path, capsys):
    dirs = [fake_checkpoint(tmp_path, "s0", 0, 0.90, 0.70, (0.85, 0.94), (0.62, 0.77), anchor=0.91),
            fake_checkpoint(tmp_path, "s1", 1, 0.88, 0.80, (0.82, 0.92), (0.73, 0.86), anchor=0.91),   # overlap
            fake_checkpoint(tmp_path, "s2", 2, 0.86, 0.60, (0.80, 0.90), (0.52, 0.68), anchor=0.88)]
    res = evaluate.compare_seeds(dirs)
    assert [r["seed"] for r in res["rows"]] == [0, 1, 2]
    assert [r["beats_baseline_beyond_interval"] for r in res["rows"]] == [True, False, True]
    assert [r["within_anchor_margin"] for r in res["rows"]] == [True, False, True]    # 0.88 < 0.91 - 0.02
    v = res["verdicts"]
    assert v["beats_baseline_beyond_interval"]["seeds_passing"] == 2 and not v["beats_baseline_beyond_interval"]["pass"]
    assert evaluate.main(["--compare", dirs[0], dirs[2]]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 seeds -> PASS" in out and "| mean | | 88.00 |" in out


def test_seed_comparison_refuses_different_configs(tmp_path):
    a = fake_checkpoint(tmp_path, "a", 0, 0.9, 0.7, (0.85, 0.94), (0.62, 0.77))
    b = fake_checkpoint(tmp_path, "b", 1, 0.9, 0.7, (0.85, 0.94), (0.62, 0.77))
    cfg = Path(b) / "config.yaml"
    cfg.write_text(cfg.read_text().replace("hidden: 32", "hidden: 16"))
    with pytest.raises(UserError, match="another config"):
        evaluate.compare_seeds([a, b])
    shutil.rmtree(b)
    with pytest.raises(UserError):
        evaluate.compare_seeds([a, b])
