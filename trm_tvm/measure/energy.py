"""Energy per inference: modeled from cycles and the board's datasheet operating point, or measured from a trace.

    energy_modeled(cycles_fig, board)             # E = cycles x V x I / f   (modeled)
    energy_from_trace("trace.csv")                # integral of V x I over each trigger window (measured)

A power-analyser trace is a CSV with a header and the columns `time, current, voltage, trigger` (SI units; a unit
may follow a name, e.g. `current_mA` or `time (us)`). The trigger is the board's GPIO raised around RUN
(boards/*.yaml `trigger`); its high windows are found at the mid level between its low and high, with crossings
interpolated between samples, so the timestamps may start anywhere (a time offset is harmless). Two further
offsets are handled: `trigger_delay_s` (the analyser's skew between its trigger input and its current channel) and
the idle baseline (the mean power outside the windows, reported and optionally subtracted).
"""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from trm_tvm.errors import UserError
from trm_tvm.measure.board_data import board_name, energy_data
from trm_tvm.provenance import figure


def energy_per_cycle_j(board: Any) -> float:
    en = energy_data(board)
    return float(en["voltage_v"]) * float(en["current_a"]) / float(en["clock_hz"])


def energy_modeled(cycles: dict | float, board: Any) -> dict:
    """Modeled energy of `cycles` (a figure or a number) at the board's datasheet operating point, in joules."""
    en = energy_data(board)
    n = cycles["value"] if isinstance(cycles, dict) else cycles
    epc = energy_per_cycle_j(board)
    return figure(n * epc, "J", "modeled",
                  f"cycles x {epc * 1e12:.0f} pJ/cycle = {en['voltage_v']} V x {en['current_a'] * 1e3:g} mA / "
                  f"{en['clock_hz'] / 1e6:g} MHz (boards/{board_name(board)}.yaml energy: {en['source']})")


# ---- measured: a power-analyser trace ----

_UNITS = {"time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
          "current": {"a": 1.0, "ma": 1e-3, "ua": 1e-6, "na": 1e-9},
          "voltage": {"v": 1.0, "mv": 1e-3},
          "trigger": {"": 1.0}}


def _column_scale(name: str) -> tuple[str, float]:
    """'current_mA' / 'current (mA)' / 'current' -> ('current', 1e-3 / 1.0)."""
    m = re.fullmatch(r"\s*([a-z]+)\s*(?:[_\s(\[]\s*([a-z]*)\s*[)\]]?)?\s*", name.lower())
    if not m or m.group(1) not in _UNITS:
        raise UserError(f"power trace column {name!r} is not one of time, current, voltage, trigger",
                        "write a header 'time,current,voltage,trigger' (optionally with units, e.g. current_mA)")
    kind, unit = m.group(1), m.group(2) or ""
    scales = _UNITS[kind]
    if unit not in scales and not (kind != "trigger" and unit == ""):
        raise UserError(f"power trace column {name!r} has an unknown unit {unit!r}",
                        f"use one of {', '.join(u for u in scales if u)} for {kind}")
    return kind, scales.get(unit, 1.0)


def read_trace(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The trace's columns in SI units, sorted by time."""
    try:
        with open(path) as f:
            header = f.readline().strip().split(",")
        cols = dict(_column_scale(h) for h in header)
        if sorted(cols) != ["current", "time", "trigger", "voltage"]:
            raise UserError(f"power trace {path} needs the columns time, current, voltage, trigger; has {header}",
                            "write a header 'time,current,voltage,trigger'")
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except OSError as e:
        raise UserError(f"cannot read power trace {path} ({e.strerror})", "check the path") from None
    except ValueError as e:
        raise UserError(f"power trace {path} is not a numeric CSV ({e})", "export it as plain CSV numbers") from None
    if data.shape[1] != len(header) or len(data) < 2:
        raise UserError(f"power trace {path} has {data.shape[1]} columns x {len(data)} rows",
                        "it needs 4 columns and at least 2 samples")
    out = {kind: data[:, i] * scale for i, (kind, scale) in enumerate(_column_scale(h) for h in header)}
    order = np.argsort(out["time"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def trigger_windows(t: np.ndarray, trig: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) times of every complete high window, crossings interpolated at the mid level."""
    lo, hi = np.percentile(trig, 1), np.percentile(trig, 99)   # robust to noise spikes
    if hi - lo <= 0:
        raise UserError("the trigger channel of the power trace never changes",
                        "check the trigger wiring (board file `trigger`) and that the run happened inside the trace")
    level = (lo + hi) / 2
    high = trig > level
    edges = np.flatnonzero(np.diff(high.astype(np.int8)))

    def crossing(i: int) -> float:
        return float(t[i] + (level - trig[i]) * (t[i + 1] - t[i]) / (trig[i + 1] - trig[i]))

    windows, start = [], None
    for i in edges:
        if not high[i]:          # rising edge between i and i+1
            start = crossing(i)
        elif start is not None:  # falling edge closes a window that opened inside the trace
            windows.append((start, crossing(i)))
            start = None
    return windows


def integrate(t: np.ndarray, p: np.ndarray, a: float, b: float) -> float:
    """Trapezoid integral of the sampled p(t) over [a, b], with the partial intervals at both ends interpolated."""
    inside = (t > a) & (t < b)
    ts = np.concatenate([[a], t[inside], [b]])
    ps = np.concatenate([[np.interp(a, t, p)], p[inside], [np.interp(b, t, p)]])
    return float(np.sum((ps[1:] + ps[:-1]) * np.diff(ts)) / 2)


def energy_from_trace(path: str | os.PathLike, trigger_delay_s: float = 0.0, subtract_baseline: bool = False,
                      min_duration_s: float = 0.0) -> dict[str, Any]:
    """Measured energy per trigger window of a power-analyser trace (mean over windows, plus each window).

    `trigger_delay_s`: the current channel lags the trigger by this much (windows are shifted later by it).
    `subtract_baseline`: subtract the idle power (mean outside all windows) x duration -- the inference's
    incremental energy instead of the board's total.
    """
    tr = read_trace(path)
    t, power = tr["time"], tr["current"] * tr["voltage"]
    windows = [(a + trigger_delay_s, b + trigger_delay_s) for a, b in trigger_windows(t, tr["trigger"])
               if b - a >= min_duration_s]
    windows = [(a, b) for a, b in windows if a >= t[0] and b <= t[-1]]
    if not windows:
        raise UserError(f"power trace {path} has no complete trigger window",
                        "start the capture before RUN and stop it after the trigger falls")
    outside = np.ones_like(t, dtype=bool)
    for a, b in windows:
        outside &= ~((t >= a) & (t <= b))
    baseline_w = float(power[outside].mean()) if outside.any() else 0.0
    rows = []
    for a, b in windows:
        e = integrate(t, power, a, b) - (baseline_w * (b - a) if subtract_baseline else 0.0)
        rows.append({"start_s": a, "duration_s": b - a, "energy_j": e, "mean_power_w": e / (b - a)})
    source = (f"power trace {os.fspath(path)}: integral of V x I over {len(rows)} trigger window(s)"
              + (f", idle baseline {baseline_w * 1e3:.3g} mW subtracted" if subtract_baseline else "")
              + (f", trigger delay {trigger_delay_s * 1e6:g} us" if trigger_delay_s else ""))
    energies = np.array([r["energy_j"] for r in rows])
    return {
        "energy": figure(float(energies.mean()), "J", "measured", source),
        "energy_std": figure(float(energies.std()), "J", "measured", source + " (std over windows)"),
        "duration": figure(float(np.mean([r["duration_s"] for r in rows])), "s", "measured", source),
        "baseline_power": figure(baseline_w, "W", "measured", f"power trace {os.fspath(path)}: mean outside windows"),
        "windows": rows,
    }
