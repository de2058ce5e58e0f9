"""`python -m trm_tvm.gap9 tune`: the tuned tilings are never worse than the default under the frozen cycle model,
the naive schedule is worse, the tuned project is verified 0 LSB on the functional build, and deploy uses it."""
from __future__ import annotations

import json

import pytest

from trm_tvm.errors import UserError
from trm_tvm.gap9 import tune
from trm_tvm.gap9.__main__ import main
from trm_tvm.quant.fixtures import random_artifact

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("gap9")]


def test_tune_then_deploy_with_the_schedule(tmp_path):
    art, _, _ = random_artifact(hidden=24, tokens=12, classes=4, layers=1, n=1, T=2, N_sup=2, seed=6)
    art.save(tmp_path / "a.npz")
    out = tmp_path / "sched.json"
    assert main(["tune", "--artifact", str(tmp_path / "a.npz"), "--out", str(out), "--inputs", "3"]) == 0
    s = json.loads(out.read_text())
    assert s["verified"]["bit_exact"] and s["verified"]["runs"] == 6 and "rejected" not in s
    for name, v in s["layers"].items():
        assert v["tuned"]["cycles"] <= v["default"]["cycles"] <= v["naive"]["cycles"], name
    assert s["totals_per_net_and_prologue_pass"]["tuned"] < s["totals_per_net_and_prologue_pass"]["naive"]
    assert main(["deploy", "--artifact", str(tmp_path / "a.npz"), "--out", str(tmp_path / "d"), "--inputs", "3",
                 "--schedule", str(out)]) == 0
    r = json.loads((tmp_path / "d" / "gap9_deploy.json").read_text())
    assert r["functional"]["golden"]["bit_exact"] and r["schedule"] == str(out)
    tuned = {n: (v["tuned"]["tile_tokens"], v["tuned"]["tile_out"], v["tuned"]["split_tokens"])
             for n, v in s["layers"].items()}
    plan = json.loads((tmp_path / "d" / "project" / "plan.json").read_text())["linear"]
    assert {n: (p["tile_tokens"], p["tile_out"], p["split_tokens"]) for n, p in plan.items()} == tuned


def test_schedule_for_another_artifact_is_refused(tmp_path):
    art, _, _ = random_artifact(hidden=16, tokens=8, layers=1, n=1, T=1, N_sup=1)
    other, _, _ = random_artifact(hidden=16, tokens=8, layers=2, n=1, T=1, N_sup=1)
    from trm_tvm.gap9.board import load_gap9

    sched = {"schema": tune.SCHEDULE_SCHEMA, "layers": tune.tune_layers(other, load_gap9())}
    (tmp_path / "s.json").write_text(json.dumps(sched))
    with pytest.raises(UserError, match="other layers"):
        tune.load_schedule(tmp_path / "s.json", art)
