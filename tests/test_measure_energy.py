"""Energy: the modeled arithmetic, and trace integration on a synthetic trace with a time offset and noise."""
from __future__ import annotations

import numpy as np
import pytest

from trm_tvm.boards import load_board
from trm_tvm.errors import UserError
from trm_tvm.measure import energy

V, I_IDLE, I_RUN, RUN_S = 3.3, 0.002, 0.015, 0.010


def synthetic_trace(path, t0=12.345, rate=200e3, starts=(0.004, 0.030, 0.061), delay=0.0, noise=True, unit_ma=False):
    """Three RUN windows of 10 ms; current steps to I_RUN `delay` after the trigger rises; Gaussian noise."""
    rng = np.random.default_rng(7)
    t = np.arange(0, 0.080, 1 / rate)
    trig = np.zeros_like(t)
    cur = np.full_like(t, I_IDLE)
    for s in starts:
        trig[(t >= s) & (t < s + RUN_S)] = 3.3
        cur[(t >= s + delay) & (t < s + delay + RUN_S)] = I_RUN
    volt = np.full_like(t, V)
    if noise:
        cur = cur + rng.normal(0, 0.0005, t.size)
        volt = volt + rng.normal(0, 0.01, t.size)
        trig = trig + rng.normal(0, 0.05, t.size)
    scale, name = (1e3, "current_mA") if unit_ma else (1.0, "current")
    np.savetxt(path, np.column_stack([t + t0, cur * scale, volt, trig]), delimiter=",",
               header=f"time,{name},voltage,trigger", comments="", fmt="%.9g")
    return path


def test_trace_with_time_offset_and_noise(tmp_path):
    res = energy.energy_from_trace(synthetic_trace(tmp_path / "t.csv"))
    assert len(res["windows"]) == 3
    expect = V * I_RUN * RUN_S                                   # 0.495 mJ per window
    assert res["energy"]["value"] == pytest.approx(expect, rel=0.01)
    assert res["energy"]["provenance"] == "measured"
    assert res["duration"]["value"] == pytest.approx(RUN_S, abs=2 / 200e3)
    assert [w["start_s"] for w in res["windows"]] == pytest.approx([12.349, 12.375, 12.406], abs=1e-5)
    assert res["baseline_power"]["value"] == pytest.approx(V * I_IDLE, rel=0.02)
    inc = energy.energy_from_trace(tmp_path / "t.csv", subtract_baseline=True)
    assert inc["energy"]["value"] == pytest.approx(V * (I_RUN - I_IDLE) * RUN_S, rel=0.02)


def test_trigger_delay_is_compensated(tmp_path):
    path = synthetic_trace(tmp_path / "d.csv", delay=0.0005, noise=False)
    skewed = energy.energy_from_trace(path)["energy"]["value"]
    fixed = energy.energy_from_trace(path, trigger_delay_s=0.0005)["energy"]["value"]
    assert fixed == pytest.approx(V * I_RUN * RUN_S, rel=1e-3)
    assert skewed < 0.96 * fixed                                  # 5 % of the window would be idle current


def test_units_in_the_header(tmp_path):
    res = energy.energy_from_trace(synthetic_trace(tmp_path / "u.csv", noise=False, unit_ma=True))
    assert res["energy"]["value"] == pytest.approx(V * I_RUN * RUN_S, rel=1e-3)


def test_partial_interval_interpolation_is_exact_for_a_ramp():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([0.0, 1.0, 2.0, 3.0])
    assert energy.integrate(t, p, 0.5, 2.5) == pytest.approx((2.5 ** 2 - 0.5 ** 2) / 2)


@pytest.mark.parametrize("text,needle", [
    ("time,current,voltage\n0,1,1\n1,1,1\n", "needs the columns"),
    ("time,current,voltage,trigger\n0,1,1,0\n1,x,1,0\n", "not a numeric CSV"),
    ("time,current,voltage,trigger\n0,1,1,0\n1,1,1,0\n", "never changes"),
    ("time,current,voltage,trigger\n0,1,1,0\n1,1,1,1\n2,1,1,1\n", "no complete trigger window"),
    ("time,amps,voltage,trigger\n0,1,1,0\n", "is not one of"),
    ("time,current_kA,voltage,trigger\n0,1,1,0\n", "unknown unit"),
])
def test_bad_traces_are_one_user_error(tmp_path, text, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(UserError, match=needle):
        energy.energy_from_trace(p)


def test_modeled_energy_is_cycles_times_v_i_over_f():
    b = load_board("cortex-m4")
    fig = energy.energy_modeled({"value": 1_200_000, "unit": "cycles", "provenance": "modeled", "source": "x"}, b)
    e = b.energy
    assert fig["value"] == pytest.approx(1_200_000 * e["voltage_v"] * e["current_a"] / e["clock_hz"])
    assert fig["provenance"] == "modeled" and e["source"] in fig["source"]


def test_every_board_has_energy_data():
    for name in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "nucleo-l4r5zi"):
        assert 1e-12 < energy.energy_per_cycle_j(load_board(name)) < 5e-9
