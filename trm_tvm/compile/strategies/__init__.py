"""Operator strategies of the `tvm` back end: one TIR kernel generator per op family, with schedule knobs.

Each family module has a shape dataclass (`.key` names the specialised kernel), `NAIVE` knobs (the plain loop
nest), `schedule(shape, knobs) -> PrimFunc` and `scratch_bytes(shape, knobs)` (arena bytes the kernel needs as
its last argument). Knob levels: naive (NAIVE), default (schedules/defaults/<family>.json), tuned
(schedules/<board>/<family>.json, written by the tuning issue; missing entries fall back to default).
A family with a Helium form has an `mve` knob (off in NAIVE and the defaults): the back end turns it on for boards
whose core lists `mve` (`with_mve`), with that form's own defaults (`MVE_DEFAULTS` of the family module).
"""
from __future__ import annotations

import json
from pathlib import Path

from trm_tvm.compile.strategies import eltwise, linear, rmsnorm
from trm_tvm.errors import UserError

REPO = Path(__file__).resolve().parents[3]
SCHEDULES = REPO / "schedules"
FAMILIES = {"linear": linear, "rmsnorm": rmsnorm, "eltwise": eltwise}
LEVELS = ("naive", "default", "tuned")


def family_of(shape) -> str:
    return {linear.LinearShape: "linear", rmsnorm.RMSNormShape: "rmsnorm", eltwise.EltShape: "eltwise"}[type(shape)]


def knobs_for(family: str, level: str, board: str | None = None) -> dict:
    """Knob values of one family at one schedule level."""
    if level not in LEVELS:
        raise UserError(f"unknown schedule level {level!r}", f"use one of {', '.join(LEVELS)}")
    knobs = dict(FAMILIES[family].NAIVE)
    if level == "naive":
        return knobs
    knobs.update(json.loads((SCHEDULES / "defaults" / f"{family}.json").read_text()))
    if level == "tuned":
        tuned = SCHEDULES / str(board) / f"{family}.json"
        if not tuned.is_file():
            raise UserError(f"no tuned schedules for board {board} ({tuned})", "run the tuner or use --schedule default")
        knobs.update(json.loads(tuned.read_text()))
    return knobs


def with_mve(family: str, knobs: dict, mve: bool) -> dict:
    """The knobs on a board with Helium: a family with an `mve` form gets it, with that form's own default knobs
    (`MVE_DEFAULTS` of the family module); without Helium (or without such a form) the knobs are unchanged."""
    mod = FAMILIES[family]
    if not mve or "mve" not in mod.NAIVE:
        return knobs
    return {**knobs, **getattr(mod, "MVE_DEFAULTS", {}), "mve": True}


def kernel_name(shape, knobs: dict) -> str:
    return f"trm_{shape.key}_tvm"


def build(shape, knobs: dict):
    """(C function name, scheduled PrimFunc, arena scratch bytes) of one specialised kernel."""
    mod = FAMILIES[family_of(shape)]
    return kernel_name(shape, knobs), mod.schedule(shape, knobs), mod.scratch_bytes(shape, knobs)
