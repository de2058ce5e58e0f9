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
