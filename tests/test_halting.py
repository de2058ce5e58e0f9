"""Halting study, host side: the policy replay from full-compute records reproduces the golden model's own halting
at every threshold; tau = 0 / 1 are exactly the 1-step and full-compute points; Pareto and operating points;
one-line CLI errors. The device side is tests/test_halting_qemu.py."""
import numpy as np
import pytest

from trm_tvm import halting
from trm_tvm.boards import load_board
from trm_tvm.compile.driver import compile_when_changed
from trm_tvm.quant.fixtures import golden_inputs, random_artifact
from trm_tvm.quant.golden import Golden
from trm_tvm.quant.spec import q_threshold


@pytest.fixture(scope="module")
def art():
    return random_artifact(bits=8, seed=7, N_sup=4)[0]


def golden_records(art, x, labels=None):
    """Records shaped like the device's (records.json), filled from the golden model, with made-up step ticks
    that differ per input and step (so cost bookkeeping errors show)."""
    g = Golden(art).infer(x, 2**31 - 1, all_steps=True)
    rng = np.random.default_rng(0)
    recs = [{"index": i, "label": None if labels is None else int(labels[i]), "bit_exact": True, "mismatch": [],
             "q": g.q[i].tolist(), "logits": g.step_logits[i].reshape(g.q.shape[1], -1).tolist(),
             "ticks": {"prologue": int(rng.integers(50, 60)), "steps": rng.integers(900, 1100, g.q.shape[1]).tolist()}}
            for i in range(len(x))]
    return {"records": recs, "counter": {"instructions_per_tick": 5, "tick": {
        "instructions": {"value": 5, "unit": "instructions", "provenance": "emulated", "source": "test"}}}}


def test_replay_equals_golden_halting_at_every_threshold(art):
    _, x = golden_inputs(art, 40, seed=3)
    rec = golden_records(art, x)
    q = np.array([r["q"] for r in rec["records"]])
    thresholds = [int(v) for v in np.quantile(q, [0.1, 0.3, 0.5, 0.7, 0.9])] + [-2**31, 2**31 - 1]
    assert len(set(thresholds)) == len(thresholds)
    seen_steps = set()
    for thr in thresholds:
        want = Golden(art).infer(x, thr)
        got = halting.replay(rec, thr)
        assert np.array_equal(got["steps"], want.steps), thr
        assert np.array_equal(np.array(got["logits"]), want.logits.reshape(len(x), -1)), thr
        assert np.array_equal(got["q"], want.q[np.arange(len(x)), want.steps - 1]), thr
        seen_steps |= set(want.steps.tolist())
    assert len(seen_steps) >= 3          # the thresholds really move the stopping step
    for k in (1, 2, 3):                   # fixed compute with k steps = max_steps k, q_thr INT32_MAX
        want = Golden(art).infer(x, 2**31 - 1, k)
        got = halting.replay(rec, 2**31 - 1, k)
        assert np.array_equal(got["steps"], want.steps) and set(got["steps"]) == {k}


def test_tau_0_and_1_are_exactly_fixed_1_and_fixed_full(art):
    _, x = golden_inputs(art, 30, seed=4)
    labels = np.random.default_rng(1).integers(0, art.header["io"]["classes"], len(x))
    res = halting.study(golden_records(art, x, labels), art, load_board("cortex-m4"))
    pts = res["variants"][art.header["precision"]]["points"]
    by = {(p["policy"], p["value"]): p for p in pts}
    keys = ("accuracy", "ci95", "steps_mean", "steps_hist", "cost_mean", "cost_p99", "cost_max")
    n_sup = art.schedule["N_sup"]
    for tau, k in ((0.0, 1), (1.0, n_sup)):
        assert {f: by[("learned", tau)][f] for f in keys} == {f: by[("fixed", k)][f] for f in keys}
        assert np.array_equal(by[("learned", tau)]["stop"], by[("fixed", k)]["stop"])
    assert by[("learned", 0.0)]["q_thr"] == -2**31 and by[("learned", 1.0)]["q_thr"] == 2**31 - 1
    assert by[("fixed", 1)]["cost_mean"] < by[("fixed", n_sup)]["cost_mean"]
    # the cost of full compute is the prologue plus every step, in emulated instructions (5 per tick here)
    rs = golden_records(art, x)["records"]
    full = np.mean([5 * (r["ticks"]["prologue"] + sum(r["ticks"]["steps"])) for r in rs])
    assert by[("fixed", n_sup)]["cost_mean"] == pytest.approx(full)
    assert res["cost"]["provenance"] == "emulated"
    assert res["worst_case_bound"]["value"] == max(5 * (r["ticks"]["prologue"] + sum(r["ticks"]["steps"])) for r in rs)


def test_learned_point_matches_golden_accuracy_and_steps(art):
    _, x = golden_inputs(art, 30, seed=5)
    labels = np.random.default_rng(2).integers(0, art.header["io"]["classes"], len(x))
    res = halting.study(golden_records(art, x, labels), art, load_board("cortex-m4"), taus=(0.3, 0.5, 0.7))
    for p in res["variants"][art.header["precision"]]["points"]:
        if p["policy"] != "learned":
            continue
        g = Golden(art).infer(x, q_threshold(p["value"], art.header["halting"]["q_scale"]))
        assert p["accuracy"] == pytest.approx(np.mean(g.pred == labels))
        assert p["steps_mean"] == pytest.approx(g.steps.mean())


def test_confidence_margin_policy():
    logits = np.array([[[5, 1, 0], [9, 0, 1]], [[2, 2, 0], [0, 7, 1]]])        # (N=2, S=2, K=3)
    m = halting.margins(logits, 3)
    assert m.tolist() == [[4, 8], [0, 6]]
    assert halting.first_true(m >= 4).tolist() == [0, 1]
    assert halting.first_true(m >= 100).tolist() == [1, 1]     # never confident: the N_sup bound
    assert halting.margins(np.array([[[5, 1, 2, 9]]]), 2).tolist() == [[4]]     # tokens (5,1), (2,9): smallest 4


def test_pareto_and_operating_point():
    mk = lambda pol, acc, cost: {"policy": pol, "accuracy": acc, "cost_mean": cost}
    pts = [mk("fixed", 0.90, 100), mk("learned", 0.895, 40), mk("learned", 0.85, 20), mk("learned", 0.88, 60),
           mk("confidence", 0.80, 50)]
    assert [(p["accuracy"], p["cost_mean"]) for p in halting.pareto(pts[1:4])] == [(0.85, 20), (0.895, 40)]
    op = halting.operating_point(pts, pts[0], "learned")
    assert op is pts[1]                                    # within 1 point of 0.90 and the cheapest
    assert halting.operating_point(pts, pts[0], "confidence") is None


def test_cli_one_line_errors(tmp_path, capsys):
    assert halting.main(["--board", "cortex-m4", "--artifact", str(tmp_path / "none.npz"), "--out",
                         str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_users_view_names_the_run_threshold_and_saving(art, tmp_path):
    _, x = golden_inputs(art, 30, seed=6)
    res = halting.study(golden_records(art, x), art, load_board("cortex-m4"))
    res["meta"] = {"precision": art.header["precision"]}
    for v in res["variants"].values():
        for p in v["points"]:
            p.pop("stop")
    from trm_tvm.jsonio import write_json
    write_json(tmp_path / "halting.json", res)
    v = res["variants"][art.header["precision"]]
    o = v["operating_points"]["learned"]
    text = halting.operating_point_text(tmp_path / "halting.json")
    if o is None:
        assert "fixed compute" in text and halting.operating_threshold(tmp_path / "halting.json") == 2**31 - 1
    else:
        thr = v["points"][o["point"]]["q_thr"]
        assert f"q_threshold = {thr}" in text and f"saves {100 * o['saving_vs_full']:.1f} %" in text
        assert halting.operating_threshold(tmp_path / "halting.json") == thr
    assert "(emulated)" in text            # the cost keeps its provenance


def test_gap9_modeled_study_uses_the_gap9_cycle_model(art, tmp_path):
    from trm_tvm.gap9 import cycles as g9, project as g9proj
    from trm_tvm.gap9.board import load_gap9

    path = tmp_path / "a.npz"
    art.save(path)
    res = halting.run_study(path, "gap9", tmp_path / "out", limit=8, work=tmp_path / "work")
    plan = g9proj.generate_project(art, tmp_path / "p", golden_inputs(art, 1)[1], board=load_gap9())
    mc = g9.model_cycles(art, g9proj.plans_from_json(plan), load_gap9())
    pts = res["variants"][art.header["precision"]]["points"]
    for p in pts:
        if p["policy"] == "fixed":
            assert p["cost_max"] == pytest.approx(mc.inference_cycles(p["value"]))
    assert res["cost"]["provenance"] == "modeled" and "gap9" in res["cost"]["source"]
    assert "golden model" in res["bit_exact"]["note"]
    assert (tmp_path / "out" / "pareto.png").is_file() and (tmp_path / "out" / "points.csv").is_file()


def test_a_cached_build_is_recompiled_when_its_sources_went_stale(art, tmp_path):
    """The study's build cache must not outlive a kernel change: an edited (stale) kernel file under the same
    artifact is rebuilt, while an unchanged compile keeps the build (its build id, so recorded runs resume)."""
    path = tmp_path / "a.npz"
    art.save(path)
    build = tmp_path / "work" / "build"
    assert compile_when_changed(path, "cortex-m4", "reference", build, "default")
    kernels = build / "model" / "trm_kernels_ref.c"
    fresh = kernels.read_bytes()
    assert not compile_when_changed(path, "cortex-m4", "reference", build, "default")
    kernels.write_bytes(fresh + b"\n/* kernels of an older checkout */\n")
    assert compile_when_changed(path, "cortex-m4", "reference", build, "default")
    assert kernels.read_bytes() == fresh
