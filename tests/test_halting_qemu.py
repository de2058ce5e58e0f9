"""Halting study on the emulated Cortex-M4: one logged full-compute run per input, every step bit-exact against
the golden model; the device's halting decision at every threshold equals the golden model's; the policy sweep
comes from that one set of runs (no device needed afterwards) and matches a direct device run at one threshold."""
import numpy as np
import pytest

from trm_tvm import halting, session
from trm_tvm.project import load_project
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.fixtures import golden_inputs, random_artifact
from trm_tvm.quant.golden import Golden
from trm_tvm.quant.spec import q_threshold
from trm_tvm.jsonio import read_json

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("qemu-compile")]
N = 10


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("halting")
    path = tmp / "w8a8.npz"
    random_artifact(bits=8, seed=7)[0].save(path)
    art = Artifact.load(path)
    _, x = golden_inputs(art, N, seed=3)
    np.savez(tmp / "inputs.npz", inputs=x)
    res = halting.run_study(path, "cortex-m4", tmp / "out", kernels="reference", data=str(tmp / "inputs.npz"),
                            timing_model=0, work=tmp / "work")
    return {"path": path, "art": art, "x": x, "res": res, "tmp": tmp,
            "rec": read_json(tmp / "out" / "records.json")}


def test_every_step_of_every_input_bit_exact_on_device(study):
    rec = study["rec"]
    assert len(rec["records"]) == N
    assert all(r["bit_exact"] for r in rec["records"]), [r["mismatch"] for r in rec["records"] if not r["bit_exact"]]
    assert study["res"]["bit_exact"] == {"inputs": N, "all_steps_bit_exact": N}
    g = Golden(study["art"]).infer(study["x"], 2**31 - 1, all_steps=True)
    assert np.array_equal(np.array([r["q"] for r in rec["records"]]), g.q)        # q of every step came back


def test_device_halting_decision_equals_golden_at_every_threshold(study):
    art, x, rec = study["art"], study["x"], study["rec"]
    q = np.array([r["q"] for r in rec["records"]])
    for tau in halting.TAUS:
        thr = q_threshold(tau, art.header["halting"]["q_scale"])
        assert np.array_equal(halting.replay(rec, thr)["steps"], Golden(art).infer(x, thr).steps), tau
    for thr in np.quantile(q, [0.25, 0.5, 0.75]).astype(int):
        assert np.array_equal(halting.replay(rec, int(thr))["steps"], Golden(art).infer(x, int(thr)).steps)


def test_tau_0_and_1_reproduce_one_step_and_full_compute(study):
    pts = study["res"]["variants"][study["art"].header["precision"]]["points"]
    by = {(p["policy"], p["value"]): p for p in pts}
    n_sup = study["art"].schedule["N_sup"]
    for tau, k in ((0.0, 1), (1.0, n_sup)):
        a, b = by[("learned", tau)], by[("fixed", k)]
        assert (a["accuracy"], a["steps_hist"], a["cost_mean"], a["cost_max"]) == \
               (b["accuracy"], b["steps_hist"], b["cost_mean"], b["cost_max"])


def test_sweep_reuses_the_runs_and_matches_a_direct_run(study, monkeypatch):
    art, rec = study["art"], study["rec"]
    q = np.array([r["q"] for r in rec["records"]])
    thr = int(np.median(q[:, 0]))                             # stops some inputs at step 1, others later
    want = halting.replay(rec, thr)
    assert len(set(want["steps"].tolist())) >= 2
    # the sweep needs no device: a session opened now would fail the test
    monkeypatch.setattr(session.Session, "__init__", lambda *a, **k: pytest.fail("the sweep reran the device"))
    again = halting.study(rec, art, load_project(study["tmp"] / "work" / "project").board)
    assert again["variants"].keys() == study["res"]["variants"].keys()
    monkeypatch.undo()
    direct = session.run_session(load_project(study["tmp"] / "work" / "project"), data=str(study["tmp"] / "inputs.npz"),
                                 q_threshold=thr, artifact=str(study["path"]))
    inf = direct["inferences"]
    assert direct["summary"]["all_bit_exact"]
    assert [i["steps"] for i in inf] == want["steps"].tolist()
    assert [i["q"] for i in inf] == want["q"].tolist()
    assert [i["logits"] for i in inf] == [list(lg) for lg in want["logits"]]
    cps = art.schedule["T"] * (art.schedule["n"] + 1)
    for i, ticks in zip(inf, want["ticks"]):
        windows = 1 + i["steps"] * (cps + 1)                   # SysTick: +-1 tick per phase window
        direct_ticks = sum(p["counter_ticks"]["value"] for p in i["phases"].values())
        assert abs(direct_ticks - int(ticks)) <= windows, (direct_ticks, ticks)


def test_modeled_cycles_from_a_plugin_subset_match_the_plugin_on_every_input(study):
    """Inputs outside the plugin subset are costed as emulated instructions x the subset's cycles per instruction;
    that must agree with the plugin run on every input (the kernels' instruction mix does not depend on data)."""
    from trm_tvm.boards import load_board
    tmp, board = study["tmp"], load_board("cortex-m4")
    costs = {}
    for k in (3, N):
        res = halting.run_study(study["path"], "cortex-m4", tmp / f"out{k}", kernels="reference",
                                data=str(tmp / "inputs.npz"), limit=6, timing_model=k, work=tmp / "work")
        rec = read_json(tmp / f"out{k}" / "records.json")
        assert sum("cycles" in r for r in rec["records"]) == min(k, 6)
        costs[k] = halting.cost_arrays(rec, board)
        assert res["cost"]["provenance"] == "modeled" and res["cost"]["unit"] == "cycles"
    partial, full = costs[3][0], costs[N][0]
    # plugin runs of one input differ by the SysTick interrupts that land in the windows (a few instructions)
    assert np.allclose(partial[:3], full[:3], rtol=1e-4)
    assert np.allclose(partial[3:], full[3:], rtol=1e-3), np.abs(partial / full - 1).max()
    assert "x the plugin's cycles per instruction" in costs[3][2]["source"]
