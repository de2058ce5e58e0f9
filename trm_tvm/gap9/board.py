"""The `gap9:` section of boards/gap9.yaml as typed values (the cortex_m loader leaves it to us: docs/boards.md).

Every value keeps the board file as its source; the cycle model and the planner read only this.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trm_tvm.boards import load_board
from trm_tvm.errors import UserError


@dataclass(frozen=True)
class Gap9Board:
    path: str
    workers: int
    l1_bytes: int
    l1_reserve_bytes: int         # cluster stacks and runtime data kept out of the tiling budget
    l2_bytes: int
    l2_usable_bytes: int
    clock_hz: int
    voltage_v: float
    int8_macs_per_cycle: int
    int4_macs_per_cycle: int
    dma_bytes_per_cycle: float
    dma_setup_cycles: int
    barrier_cycles: int
    fork_cycles: int
    pj_per_cycle: float
    energy_estimate: bool

    @property
    def l1_budget(self) -> int:
        return self.l1_bytes - self.l1_reserve_bytes

    @property
    def l2_budget(self) -> int:
        return self.l2_usable_bytes


def _get(d: Any, dotted: str, typ: type, path: str) -> Any:
    cur = d
    for key in dotted.split("."):
        if not isinstance(cur, dict) or key not in cur:
            raise UserError(f"board file {path}: field gap9.{dotted} is missing", "see docs/gap9.md for the gap9 section")
        cur = cur[key]
    if typ is float and isinstance(cur, int) and not isinstance(cur, bool):
        cur = float(cur)
    if not isinstance(cur, typ) or isinstance(cur, bool):
        raise UserError(f"board file {path}: field gap9.{dotted} must be {typ.__name__}, got {cur!r}",
                        "see docs/gap9.md for the gap9 section")
    return cur


def load_gap9(name: str | Path = "gap9") -> Gap9Board:
    board = load_board(name)
    g = board.raw.get("gap9")
    path = str(board.path)
    if not isinstance(g, dict):
        raise UserError(f"board file {path} has no gap9 section", "use boards/gap9.yaml")
    op_name = _get(g, "energy.operating_point", str, path)
    points = [p for p in _get(g, "operating_points", list, path) if isinstance(p, dict) and p.get("name") == op_name]
    if not points:
        raise UserError(f"board file {path}: gap9.energy.operating_point {op_name!r} is not in gap9.operating_points",
                        "name one of the listed points")
    point = points[0]
    return Gap9Board(
        path=path,
        workers=_get(g, "cluster.workers", int, path),
        l1_bytes=_get(g, "memory.l1_bytes", int, path),
        l1_reserve_bytes=_get(g, "memory.l1_reserve_bytes", int, path),
        l2_bytes=_get(g, "memory.l2_bytes", int, path),
        l2_usable_bytes=_get(g, "memory.l2_usable_bytes", int, path),
        clock_hz=_get(point, "clock_hz", int, path),
        voltage_v=_get(point, "voltage_v", float, path),
        int8_macs_per_cycle=_get(g, "simd.int8_macs_per_cycle", int, path),
        int4_macs_per_cycle=_get(g, "simd.int4_macs_per_cycle", int, path),
        dma_bytes_per_cycle=_get(g, "dma.bytes_per_cycle", float, path),
        dma_setup_cycles=_get(g, "dma.setup_cycles", int, path),
        barrier_cycles=_get(g, "sync.barrier_cycles", int, path),
        fork_cycles=_get(g, "sync.fork_cycles", int, path),
        pj_per_cycle=_get(g, "energy.pj_per_cycle", float, path),
        energy_estimate=bool(g["energy"].get("estimate", False)),
    )
