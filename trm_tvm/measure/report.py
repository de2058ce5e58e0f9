"""One summary of a plugin run for result JSONs: instructions (emulated), cycles, latency and energy (modeled)."""
from __future__ import annotations

from typing import Any, Mapping

from trm_tvm.measure import energy, timing


def summarize_row(row: Mapping[str, int], board: Any, runs: int = 1) -> dict[str, Any]:
    """Figures for one count row, divided by `runs` (e.g. the number of inferences the row covers)."""
    per = {k: v / runs for k, v in row.items()}
    cyc = timing.cycles(per, board)
    return {
        "instructions": timing.instructions({"insns": round(per["insns"])}),
        "cycles": cyc,
        "latency": timing.latency_s(cyc, board),
        "energy": energy.energy_modeled(cyc, board),
        "classes": {k: v for k, v in per.items() if v},
    }


def summarize(counts: Mapping[str, Mapping[str, int]], board: Any, groups: Mapping[str, list[str]] | None = None,
              runs: int = 1) -> dict[str, Any]:
    """Total plus one entry per group of functions (fnmatch patterns; default: per function)."""
    parts = timing.group_regions(counts, groups) if groups is not None else counts
    return {"total": summarize_row(timing.total(counts), board, runs),
            "groups": {name: summarize_row(row, board, runs) for name, row in parts.items()}}


def session_figures(run: timing.PluginRun, board: Any, calls_per_step: int) -> list[dict[str, Any]]:
    """Per inference of a session run under the plugin (marks timing.SESSION_MARKS): the whole RUN and each phase
    (per call), as figures. Call after QEMU has stopped (the session closed)."""
    out = []
    for inf in timing.per_inference(run.snapshots(), calls_per_step):
        fig = summarize_row(timing.total(inf["run"]), board)
        fig["steps"] = inf["steps"]
        fig["phases"] = {name: {"calls": inf["calls"][name],
                                **summarize_row(timing.total(rows), board, runs=inf["calls"][name])}
                         for name, rows in inf["phases"].items()}
        out.append(fig)
    return out
