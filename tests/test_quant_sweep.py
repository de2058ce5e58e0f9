"""The sweep's multi-seed protocol: per-seed change vs FP, across-seed summary and the verdicts, on synthetic rows
whose answers are known (so a wrong sign, a wrong boundary or a hard-coded PASS fails)."""
import pytest

from trm_tvm.quant import sweep


def row(ck, config, acc, fp_acc, p=0.5, n=2000):
    return {"checkpoint": ck, "config": config, "acc_halting": acc, "ci95_lo": acc - 0.02, "ci95_hi": acc + 0.02,
            "delta_pts_vs_fp": round(100 * (acc - fp_acc), 3), "weight_bytes": 100 if config != "fp32" else 400,
            "mcnemar_p_vs_fp": p, "n_test": n}


FP = {"s0": 0.800, "s1": 0.810, "s2": 0.820}


def table(w8, w4qat):
    t = []
    for ck, fp in FP.items():
        t.append(row(ck, "fp32", fp, fp, 1.0))
        t.append(row(ck, "w8a8-ptq-pc", w8[ck], fp))
        if ck in w4qat:
            t.append(row(ck, "w4a8-qat-pc", w4qat[ck], fp))
    return t


W8 = sweep.CRITERIA[0]
W4 = sweep.CRITERIA[1]


def test_summary_mean_min_max_per_config():
    t = table({"s0": 0.799, "s1": 0.812, "s2": 0.814}, {})
    s = {r["config"]: r for r in sweep.summary(t)}
    w8 = s["w8a8-ptq-pc"]
    assert w8["seeds"] == 3 and w8["checkpoints"] == ["s0", "s1", "s2"]
    assert w8["acc_mean"] == pytest.approx((79.9 + 81.2 + 81.4) / 3, abs=1e-3)
    assert (w8["acc_min"], w8["acc_max"]) == (pytest.approx(79.9), pytest.approx(81.4))
    assert (w8["delta_min"], w8["delta_max"]) == (pytest.approx(-0.6), pytest.approx(0.2))
    assert w8["delta_mean"] == pytest.approx((-0.1 + 0.2 - 0.6) / 3, abs=1e-3)
    assert s["fp32"]["delta_mean"] == 0


def test_one_bad_seed_fails_every_seed_but_not_the_mean():
    v = sweep.verdict(table({"s0": 0.799, "s1": 0.812, "s2": 0.814}, {}), W8)
    assert v["pass_per_seed"] == {"s0": True, "s1": True, "s2": False}
    assert v["every_seed"] is False and v["on_mean"] is True
    assert "every seed FAIL" in v["line"] and "mean PASS" in v["line"] and "-0.60" in v["line"]


def test_boundary_is_inclusive_and_gains_pass():
    v = sweep.verdict(table({"s0": 0.795, "s1": 0.830, "s2": 0.815}, {}), W8)   # -0.5, +2.0, -0.5 points
    assert v["every_seed"] is True and v["on_mean"] is True
    v = sweep.verdict(table({"s0": 0.7945, "s1": 0.8045, "s2": 0.8145}, {}), W8)  # -0.55 everywhere
    assert v["every_seed"] is False and v["on_mean"] is False and "on the mean FAIL" in v["line"]


def test_missing_seed_is_not_evaluated_never_a_pass():
    v = sweep.verdict(table({"s0": 0.8, "s1": 0.81, "s2": 0.82}, {"s0": 0.79, "s1": 0.80}), W4)
    assert v["every_seed"] is None and v["on_mean"] is None
    assert "not evaluated" in v["line"] and "only 2 of 3" in v["line"]
    v = sweep.verdict(table({"s0": 0.8, "s1": 0.81, "s2": 0.82}, {}), W4)
    assert v["every_seed"] is None and "none of the 3" in v["line"]


def test_w4a8_qat_threshold_is_two_points():
    v = sweep.verdict(table({"s0": 0.8, "s1": 0.81, "s2": 0.82}, {"s0": 0.785, "s1": 0.79, "s2": 0.80}), W4)
    assert v["pass_per_seed"] == {"s0": True, "s1": True, "s2": True}          # -1.5, -2.0, -2.0
    v = sweep.verdict(table({"s0": 0.8, "s1": 0.81, "s2": 0.82}, {"s0": 0.77, "s1": 0.81, "s2": 0.82}), W4)
    assert v["every_seed"] is False and v["on_mean"] is True                    # -3.0, 0, 0: mean -1.0


def test_markdown_has_every_seed_and_the_verdicts():
    t = table({"s0": 0.799, "s1": 0.812, "s2": 0.814}, {"s0": 0.79, "s1": 0.80, "s2": 0.81})
    verdicts = [sweep.verdict(t, c) for c in sweep.CRITERIA]
    md = sweep.report_md(t, sweep.summary(t), verdicts, 2000)
    assert "| w8a8-ptq-pc | 79.90 % (-0.10, p = 0.5) | 81.20 % (+0.20, p = 0.5) | 81.40 % (-0.60, p = 0.5) |" in md
    assert md.count("PASS") + md.count("FAIL") == 4 and "2000 test samples" in md


def test_rows_carry_the_change_and_discordant_counts():
    def entry(ck, config, fp_k, q_k, n=100):
        acc = lambda k: {"accuracy": k / n, "ci95": [0, 1], "n": n}       # noqa: E731
        return {"checkpoint": ck, "config": config, "weight_bytes": 10, "seconds": 3.0,
                "halting": {"fp": acc(fp_k), "quant": acc(q_k), "mcnemar": {"a_only": 7, "b_only": 2, "p_value": 0.18},
                            "agreement": 0.9, "mean_steps": {"fp": 1.0, "quant": 1.5}},
                "fixed": [{"fp": acc(fp_k), "quant": acc(q_k)}]}
    fp, q = sweep.rows([entry("a", "fp32", 80, 80), entry("a", "w4a8-ptq-pc", 80, 75)])
    assert fp["delta_pts_vs_fp"] == 0 and fp["mcnemar_fp_only"] == 0 and fp["mean_steps"] == 1.0
    assert q["delta_pts_vs_fp"] == pytest.approx(-5.0) and (q["mcnemar_fp_only"], q["mcnemar_quant_only"]) == (7, 2)
    assert q["mean_steps"] == 1.5 and q["seconds"] == 3.0


def test_qat_configs_come_after_every_ptq_one():
    names = [c.name for c in sweep.configs(("w4a8",))]
    assert names[-1] == "w4a8-qat-pc" and sum("qat" in n for n in names) == 1
    assert len(sweep.configs()) == 2 * len(sweep.RECIPES)


def test_two_seed_sweep_writes_protocol_and_resumes(ckpt, tmp_path, capsys, monkeypatch):
    """End to end on two tiny checkpoints: a row per (seed, config), a summary over both, the verdicts (QAT W4A8 was
    not asked for, so its verdict says not evaluated), and a rerun that computes nothing."""
    import json

    import torch

    from trm_tvm import quantize

    monkeypatch.setattr(sweep, "RECIPES", ("w8a8", "w4a8"))
    other = tmp_path / "seed1" / "model.pt"
    other.parent.mkdir()
    d = torch.load(ckpt, weights_only=True)
    d["model"]["halt.weight"] = d["model"]["halt.weight"] * 0.5
    torch.save(d, other)
    out = tmp_path / "sw"
    args = ["sweep", "--checkpoint", str(ckpt), str(other), "--out", str(out), "--limit", "16"]
    assert quantize.main(args) == 0
    assert capsys.readouterr().out.count(" ...\n") == 2 * 4
    res = json.loads((out / "sweep.json").read_text())
    assert len(res["rows"]) == 2 * 5 and {s["seeds"] for s in res["summary"]} == {2}
    assert [v["every_seed"] for v in res["verdicts"]][1] is None
    assert res["verdicts"][0]["every_seed"] in (True, False) and len(res["verdicts"][0]["delta_pts"]) == 2
    md = (out / "summary.md").read_text()
    assert "## Per seed" in md and "seed1:" in md and res["verdicts"][0]["line"] in md
    assert quantize.main(args) == 0
    assert " ...\n" not in capsys.readouterr().out
    assert quantize.main(args + ["--qat", "w9"]) == 2
    assert "unknown --qat recipe" in capsys.readouterr().err


def test_sweep_qat_of_one_recipe_keeps_its_artifact_and_budget(ckpt, tmp_path, monkeypatch):
    import json

    from trm_tvm import quantize
    from trm_tvm.quant.artifact import Artifact

    monkeypatch.setattr(sweep, "RECIPES", ("w8a8", "w4a8"))
    out = tmp_path / "sw"
    assert quantize.main(["sweep", "--checkpoint", str(ckpt), "--out", str(out), "--limit", "8",
                          "--qat", "w4a8", "--qat-minutes", "0.02"]) == 0
    res = json.loads((out / "sweep.json").read_text())
    assert [r["config"] for r in res["rows"]][-1] == "w4a8-qat-pc" and len(res["rows"]) == 1 + 4 + 1
    (entry,) = (out / "cache").glob("*/limit8/w4a8-qat-pc.json")
    assert json.loads(entry.read_text())["qat"]["wall_time_min"] == 0.02
    assert Artifact.load(entry.with_suffix(".npz")).header["precision"] == "w4a8"
    assert res["verdicts"][1]["every_seed"] in (True, False)


from test_quant_cli import ckpt  # noqa: E402,F401  (the tiny checkpoint fixture)
