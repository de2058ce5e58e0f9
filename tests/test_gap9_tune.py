"""`python -m trm_tvm.tune --board gap9`: meta_schedule over the GAP9 knobs. The design space samples only tiles
that fit L1 and the DMA limit and its trace decodes to the knobs; a candidate the functional build rejects never
reaches the database; the tuned schedule is never worse than the default under the frozen cycle model, naive is
worse, the tuned project is 0 LSB against the golden model, and deploy --schedule tuned uses the records."""
from __future__ import annotations

import json
import re

import pytest
from tvm import s_tir

from trm_tvm.gap9 import cycles, space
from trm_tvm.gap9 import tune as gap9_tune
from trm_tvm.gap9.board import load_gap9
from trm_tvm.gap9.space import Gap9Task
from trm_tvm.quant.fixtures import random_artifact
from trm_tvm.tune import database, search

TIGHT = Gap9Task(24, 300, 181, 8, 8, 24 * 1024)      # most tiles of this layer overflow a 24 kB L1 budget


def test_space_samples_only_legal_tiles_and_the_trace_is_the_knobs():
    seen = set()
    for seed in range(1, 61):
        sch = s_tir.Schedule(TIGHT.workload(), seed=seed)
        TIGHT.space_fn()(sch)
        knobs = space.knobs_of(sch.trace, TIGHT.workload()["main"])
        assert knobs == space.knobs_in(sch.mod)             # what the runner reads = what the trace decided
        t = TIGHT.tiling(knobs)
        assert t.l1_bytes <= TIGHT.l1_budget and t.dma_ok(), knobs
        seen.add(tuple(knobs.values()))
    assert len(seen) > 20, "the space is sampled, not fixed"
    widths = range(8, 182, 8)
    assert any(TIGHT.tiling({**TIGHT.default(), "tile_out": w}).l1_bytes > TIGHT.l1_budget for w in widths)
    # default and naive are points of the space (forced decisions), with the documented values
    d, n = TIGHT.default(), TIGHT.naive()
    assert d["double_buffer"] == 1 and d["split_tokens"] == 0 and d["packed"] == 0
    assert TIGHT.tiling({**d, "tile_out": d["tile_out"] + 8}).l1_bytes > TIGHT.l1_budget   # the largest that fits
    assert n["double_buffer"] == 0 and n["tile_out"] == 8
    for k in (d, n):
        assert space.knobs_in(TIGHT.schedule(k).mod) == k


def test_split_factors_of_the_tir_come_from_the_decisions():
    sch = TIGHT.schedule({**TIGHT.default(), "split_tokens": 1, "tile_tokens": 12, "tile_out": 16})
    text = str(sch.trace)
    assert "sch.parallel" in text and "factors=[8, None]" in text
    loops = [sch.get(x).extent for x in sch.get_loops(sch.get_sblock("acc"))]
    assert [int(e) for e in loops] == [2, 12, 8, 2, 16, 300]   # 24/12 token tiles, ceil(181/16) channel tiles, 8 cores


@pytest.mark.qemu
@pytest.mark.xdist_group("gap9")
def test_a_candidate_the_functional_build_rejects_is_never_recorded(tmp_path):
    """With an L1 budget larger than the real L1 the space offers tiles the kernel must refuse at run time."""
    task = Gap9Task(60, 1000, 64, 8, 8, 400_000)
    m = gap9_tune.KernelMeasurer(load_gap9(), tmp_path / "w")
    small, big = {**task.naive(), "tile_out": 8}, {**task.default(), "tile_out": 64}
    r_small, r_big = m.measure([task.schedule(small).mod, task.schedule(big).mod])
    assert r_small["bit_exact"] and r_small["cycles"]["value"] == cycles.linear_cycles(task.tiling(small),
                                                                                         load_gap9()).total
    assert r_small["cycles"]["provenance"] == "modeled"
    assert not r_big["bit_exact"] and "refused" in r_big["error"]
    db = search.open_database(tmp_path / "sched" / "gap9")
    n = search.run_tasks([task], db, m, {task.name: 12}, 12, tmp_path / "ms", lambda s: None)
    loaded = database.load("gap9", tmp_path / "sched", knobs_of=space.knobs_of)
    assert n == len(loaded.entries) > 0 and not loaded.problems
    for e in loaded.entries:
        t = task.tiling(e.knobs)
        assert t.l1_bytes <= 131072, "a tile the kernel refused was recorded"
        assert round(e.cycles_s * load_gap9().clock_hz) == cycles.linear_cycles(t, load_gap9()).total


@pytest.mark.qemu
@pytest.mark.xdist_group("gap9")
def test_tune_cli_then_deploy_tuned(tmp_path, capsys):
    from trm_tvm.gap9.__main__ import main as gap9_main
    from trm_tvm.tune.__main__ import main

    art, _, _ = random_artifact(hidden=24, tokens=12, classes=4, layers=1, n=1, T=2, N_sup=2, seed=6)
    art.save(tmp_path / "a.npz")
    args = ["--board", "gap9", "--artifact", str(tmp_path / "a.npz"), "--trials", "8", "--per-iter", "8",
            "--schedules", str(tmp_path / "sched"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "meta_schedule" in capsys.readouterr().out
    for k in s["kernels"]:
        assert k["tuned"]["provenance"] == "modeled"
        assert k["tuned"]["value"] <= k["default"]["value"] <= k["naive"]["value"], k["kernel"]
    [w] = s["whole"]
    assert w["tuned_bit_exact"] and w["verified_runs"] == 16
    assert w["tuned"]["value"] < w["default"]["value"] < w["naive"]["value"]
    best = gap9_tune.load_best(tmp_path / "sched")
    assert set(best) == {k["kernel"] for k in s["kernels"]}
    # resume: a rerun asks only for the trials still missing and never records a schedule twice
    n_tasks = len(s["kernels"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "nothing to add" in out or int(re.search(r"ReplayFunc, (\d+) trials", out).group(1)) < 8 * n_tasks
    lines = (tmp_path / "sched" / "gap9" / database.RECORDS).read_text().splitlines()
    assert len(search.seen_hashes(search.open_database(tmp_path / "sched" / "gap9"))) == len(lines)
    # deploy --schedule tuned builds exactly the database's best tilings, 0 LSB. The rerun may have found a faster
    # record, so compare with the tilings its summary chose, not the first run's.
    [w] = json.loads((tmp_path / "out" / "summary.json").read_text())["whole"]
    assert gap9_main(["deploy", "--artifact", str(tmp_path / "a.npz"), "--out", str(tmp_path / "d"), "--inputs", "2",
                      "--schedule", "tuned", "--schedules", str(tmp_path / "sched")]) == 0
    plan = json.loads((tmp_path / "d" / "project" / "plan.json").read_text())["linear"]
    assert set(plan) == set(w["tuned_layers"])
    for name, p in plan.items():
        want = w["tuned_layers"][name]
        assert all(p[k] == want[k] for k in ("tile_tokens", "tile_out", "split_tokens", "double_buffer", "packed"))
