"""GAP9 schedule search for the cluster linear layers (a first `tune --board gap9`).

Knobs per linear layer: output tile width, token tile height, split axis (channels or tokens), double buffering,
packed weight tiles (weights + bias/mult/shift contiguous in L2: one DMA per tile instead of four).
Every candidate that fits L1 and the 16-bit DMA limit is scored with the frozen cycle model (cycles.py); the
default schedule (tiling.plan_linear) is always a candidate, so the tuned choice is never worse than the default
under the model. The whole tuned project is then run on the functional build: a schedule that is not 0 LSB against
the golden model is rejected. This is an exhaustive search of a small space, not TVM meta_schedule.
"""
from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

from trm_tvm.gap9 import cycles, functional, project
from trm_tvm.gap9.board import Gap9Board, load_gap9
from trm_tvm.gap9.tiling import LinearTiling
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.quant.artifact import Artifact, file_sha256

SCHEDULE_SCHEMA = "trm-tvm-gap9-schedule"


def candidates(default: LinearTiling, board: Gap9Board) -> list[LinearTiling]:
    """Token tiles: all rows, halves, quarters; output tiles: every multiple of 8 up to n_out, and n_out."""
    t = default
    heights = sorted({max(1, math.ceil(t.tokens / d)) for d in (1, 2, 4)}, reverse=True)
    widths = sorted({t.n_out, *range(board.workers, t.n_out + 1, board.workers)}, reverse=True)
    out = []
    for h in heights:
        for w in widths:
            for split in (False, True):
                for db in (True, False):
                    for packed in (False, True):
                        c = replace(t, tile_tokens=h, tile_out=w, split_tokens=split, double_buffer=db, packed=packed)
                        if c.l1_bytes <= board.l1_budget and c.dma_ok():
                            out.append(c)
    return out


def naive(default: LinearTiling, board: Gap9Board) -> LinearTiling:
    """The schedule without the GAP9 ideas: one tile of 8 channels at a time, no double buffering."""
    return replace(default, tile_out=min(board.workers, default.n_out), split_tokens=False, double_buffer=False)


def tune_layers(art: Artifact, board: Gap9Board) -> dict:
    """Per linear node: default, naive and tuned tilings with their modeled cycles."""
    em = project._NetEmitter(art, board)
    for section in ("prologue", "net", "heads"):
        em.section(section)
    layers = {}
    for name, default in em.plans.items():
        if not isinstance(default, LinearTiling):
            continue
        scored = [(cycles.linear_cycles(c, board).total, i, c) for i, c in enumerate(candidates(default, board))]
        best_cycles, _, best = min(scored)
        base = cycles.linear_cycles(default, board).total
        if base <= best_cycles:
            best, best_cycles = default, base
        nv = naive(default, board)
        layers[name] = {"default": {**asdict(default), "cycles": base},
                        "naive": {**asdict(nv), "cycles": cycles.linear_cycles(nv, board).total},
                        "tuned": {**asdict(best), "cycles": best_cycles}, "candidates": len(scored)}
    return layers


def load_schedule(path: Path, art: Artifact) -> dict[str, LinearTiling]:
    """The tuned tilings of a schedule file written by tune(), for this artifact's layers."""
    from trm_tvm.errors import UserError
    from trm_tvm.jsonio import read_json

    s = read_json(path, "GAP9 schedule")
    if s.get("schema") != SCHEDULE_SCHEMA or "layers" not in s:
        raise UserError(f"{path} is not a GAP9 schedule", "write one with python -m trm_tvm.gap9 tune")
    names = {n["name"] for sec in ("prologue", "net", "heads") for n in art.graph[sec] if n["op"] == "linear"}
    if set(s["layers"]) != names:
        raise UserError(f"schedule {path} is for other layers than this artifact's", "tune this artifact")
    return schedule_overrides(s)


def schedule_overrides(schedule: dict) -> dict[str, LinearTiling]:
    fields = LinearTiling.__dataclass_fields__
    return {n: LinearTiling(**{k: v for k, v in s["tuned"].items() if k in fields}) for n, s in schedule["layers"].items()}


def tune(art_path: Path, out: Path, work_dir: Path, n_inputs: int = 8, seed: int = 0) -> dict:
    board = load_gap9()
    art = Artifact.load(art_path)
    layers = tune_layers(art, board)
    schedule = {"schema": SCHEDULE_SCHEMA, "version": 1, "board": "gap9", "precision": art.header["precision"],
                "artifact_sha256": file_sha256(art_path),
                "cost": f"modeled, {cycles.MODEL_SOURCE}", "layers": layers}
    inputs = project.quantized_inputs(art, n_inputs, seed)
    thr = int(art.header["halting"]["q_thr"])
    project.generate_project(art, work_dir / "tuned", inputs, board=board, linear_overrides=schedule_overrides(schedule))
    run = functional.run(project.build_functional(work_dir / "tuned"), timeout_s=120 + 10.0 * n_inputs)
    cmp = project.compare_with_golden(art, inputs, project.parse_log(run.output), thr)
    schedule["verified"] = {"inputs": n_inputs, "runs": cmp["runs"], "mismatches": cmp["mismatches"],
                            "bit_exact": run.exit_code == 0 and cmp["mismatches"] == 0,
                            "how": "functional build on 9 QEMU harts vs trm_tvm.quant.golden"}
    totals = {k: sum(v[k]["cycles"] for v in layers.values()) for k in ("naive", "default", "tuned")}
    schedule["totals_per_net_and_prologue_pass"] = totals
    schedule["run"] = run_info()
    if not schedule["verified"]["bit_exact"]:
        for v in layers.values():          # rejected: fall back to the default schedule everywhere
            v["tuned"] = {**v["default"]}
        schedule["rejected"] = cmp["first_mismatch"] or run.compat_error or f"exit {run.exit_code}"
    write_json(out, schedule)
    return schedule
