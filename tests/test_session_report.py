"""Session result logic without a device: figures and their provenance, summaries, inputs, power traces."""
import sys
from pathlib import Path

import numpy as np
import pytest

from trm_tvm import project as proj
from trm_tvm.boards import load_board
from trm_tvm.errors import UserError
from trm_tvm.session import _compare, _finish, add_power_trace, counter_figures, load_inputs

sys.path.insert(0, str(Path(__file__).parent))
import stub_model  # noqa: E402


def test_emulated_counts_are_instructions_and_latency_is_labelled_modeled():
    f = counter_figures(load_board("cortex-m33"), 1000)
    assert f["instructions"] == {"value": 25000.0, "unit": "instructions", "provenance": "emulated",
                                 "source": f["counter_ticks"]["source"]}
    assert "cycles" not in f and f["latency"]["provenance"] == "modeled"
    assert f["latency"]["value"] == pytest.approx(25000 / 110e6)
    assert "1 cycle each" in f["latency"]["source"] and "STM32L552ZE" in f["latency"]["source"]


def test_dwt_counts_on_hardware_are_measured_cycles():
    f = counter_figures(load_board("nucleo-l4r5zi"), 4_000_000)
    assert f["cycles"]["provenance"] == "measured" and "instructions" not in f
    assert f["latency"] == {"value": 1.0, "unit": "s", "provenance": "measured",
                            "source": "DWT CYCCNT on STM32L4R5ZI at 4 MHz"}


def _gold(n=2):
    return {"logits": np.arange(10, dtype=np.int16).reshape(n, 5), "pred": np.array([4, 4]),
            "steps": np.array([2, 3]), "q": np.array([-5, 7])}


def test_compare_names_every_kind_of_difference():
    g = _gold()
    ok = {"logits": g["logits"][1].copy(), "pred": 4, "steps": 3, "q": 7}
    assert _compare(ok, g, 1, per_token=False) == {"bit_exact": True, "mismatch": []}
    bad = dict(ok, steps=2, q=6, pred=1)
    bad["logits"] = ok["logits"].copy()
    bad["logits"][3] += 1
    r = _compare(bad, g, 1, per_token=False)
    assert not r["bit_exact"] and len(r["mismatch"]) == 4 and "first 3: device 9, golden 8" in r["mismatch"][0]
    assert _compare(dict(ok, pred=0), g, 1, per_token=True)["bit_exact"]     # per-token: pred is unused


def _inference(i, exact, ticks):
    board = load_board("cortex-m4")
    return {"index": i, "pred": 1, "steps": 2, "q": 0, "bit_exact": exact, "label": 1 if i else 0,
            **counter_figures(board, ticks),
            "peak_stack": {"value": 300 + i, "unit": "bytes", "provenance": "emulated", "source": "paint"}}


def test_summary_counts_unchecked_inferences_as_not_all_bit_exact():
    board = load_board("cortex-m4")
    r = _finish({"inferences": [_inference(0, True, 100), _inference(1, True, 300)]}, board, None)
    s = r["summary"]
    assert s["all_bit_exact"] and s["bit_exact"] == 2 and s["accuracy"] == 0.5
    assert s["instructions"]["mean"]["value"] == 1000.0 and s["instructions"]["max"]["value"] == 1500.0
    assert s["latency"]["mean"]["provenance"] == "modeled"
    r = _finish({"inferences": [_inference(0, True, 100), _inference(1, None, 300)]}, board, None)
    assert not r["summary"]["all_bit_exact"] and r["summary"]["checked"] == 1


def _trace(path, windows, t0=100.0):
    t = np.arange(0, 1.0, 1e-4) + t0
    trig = np.zeros_like(t)
    for a, b in windows:
        trig[(t >= t0 + a) & (t < t0 + b)] = 1.0
    cur = 0.01 + 0.02 * trig
    np.savetxt(path, np.c_[t, cur, np.full_like(t, 3.3), trig], delimiter=",",
               header="time,current,voltage,trigger", comments="")


def test_power_trace_gives_measured_energy_per_inference(tmp_path):
    board = load_board("cortex-m4")
    result = _finish({"inferences": [_inference(0, True, 1), _inference(1, True, 1)]}, board, None)
    _trace(tmp_path / "t.csv", [(0.1, 0.2), (0.5, 0.6)])
    r = add_power_trace(result, str(tmp_path / "t.csv"))
    e = r["energy_measured"]["energy"]
    assert e["provenance"] == "measured" and e["value"] == pytest.approx(0.03 * 3.3 * 0.1, rel=0.01)
    _trace(tmp_path / "u.csv", [(0.1, 0.2), (0.4, 0.5), (0.7, 0.8)])
    with pytest.raises(UserError, match="has 3 trigger windows, the session ran 2 inferences"):
        add_power_trace(result, str(tmp_path / "u.csv"))


@pytest.fixture
def stub_project(tmp_path):
    return proj.generate_project(stub_model.make_build_dir(tmp_path / "b"), "cortex-m4", tmp_path / "p")


def test_inputs_from_a_data_file_are_checked_against_the_build(stub_project, tmp_path):
    x = np.zeros((3, 1, 1500), np.int8)
    np.savez(tmp_path / "d.npz", inputs=x, labels=np.array([0, 1, 2]))
    got, labels, desc = load_inputs(stub_project, str(tmp_path / "d.npz"), limit=2, seed=0)
    assert got.shape == (2, 1, 1500) and labels.tolist() == [0, 1] and desc.endswith("d.npz")
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((3, 1, 1400), np.int8))
    with pytest.raises(UserError, match=r"inputs are int8\[1, 1400\], the model takes int8\[1, 1500\]"):
        load_inputs(stub_project, str(tmp_path / "bad.npz"), None, 0)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="is not an .npz with an `inputs` array"):
        load_inputs(stub_project, str(tmp_path / "junk.npz"), None, 0)
    x, y, desc = load_inputs(stub_project, None, 4, seed=3)
    assert x.shape == (4, 1, 1500) and y is None and "seed 3" in desc
