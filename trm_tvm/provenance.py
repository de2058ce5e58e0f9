"""Every figure carries where it came from: measured (real board), emulated (emulator counters) or modeled.

Results store figures as `{"value": v, "unit": u, "provenance": p, "source": s}`; `fmt` prints them with the label,
so no printed number loses its provenance. `source` names the instrument or model (e.g. "QEMU -icount",
"boards/cortex-m4.yaml timing_model", "ELF section sizes").
"""
from __future__ import annotations

from typing import Any

PROVENANCES = ("measured", "emulated", "modeled")


def figure(value: Any, unit: str, provenance: str, source: str) -> dict[str, Any]:
    if provenance not in PROVENANCES:
        raise ValueError(f"provenance must be one of {PROVENANCES}, got {provenance!r}")
    return {"value": value, "unit": unit, "provenance": provenance, "source": source}


def fmt(fig: dict[str, Any], digits: int = 3) -> str:
    """'12.3 ms (modeled)' -- the label is never dropped."""
    v = fig["value"]
    if isinstance(v, float):
        v = f"{v:.{digits}g}"
    unit = f" {fig['unit']}" if fig.get("unit") else ""
    return f"{v}{unit} ({fig['provenance']})"
