"""One tuning run: tasks of the artifacts -> seeded and searched database -> naive/default/tuned comparison.

    summary = tune("cortex-m4", [Path("ecg-w8a8.npz")], trials=24, budget_min=13, out=Path("reports/tune/m4"))

1. Repair the board's database (corrupted lines reported and moved aside) and open it.
2. Seed: the default knobs of every task, measured in one firmware, are recorded (so tuned is never worse than
   default on the same measurement).
3. Search: meta_schedule over the tasks (trm_tvm.tune.search); a task already holding records gets only the
   trials it still lacks (resume).
4. Compare, in one fresh firmware: naive, default and tuned (database best) of every kernel; then the whole
   inference of each artifact compiled at naive / default / tuned (and with the hand-written back end) under the
   timing plugin, each checked bit-exact against the golden model.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import tvm

from trm_tvm.boards import load_board
from trm_tvm.compile import strategies
from trm_tvm.compile.strategies import linear
from trm_tvm.errors import UserError, atomic_write_text
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.markdown import table
from trm_tvm.provenance import fmt
from trm_tvm.quant.artifact import Artifact
from trm_tvm.tune import database, search
from trm_tvm.tune.firmware import board_clock_hz
from trm_tvm.tune.space import FIXED_ATTR, KERNEL_ATTR, Task, model_tasks

PER_ITER = 8                 # candidates per meta_schedule iteration = per firmware
TRIALS = 24                  # meta_schedule trials per task (random; the spaces hold <= 65 distinct schedules)
BUDGET_MIN = 13.0            # search wall budget; the comparison after it takes ~1-2 min per artifact


def default_knobs(board) -> dict:
    k = strategies.knobs_for("linear", "default")
    return {**k, "dsp": bool(k.get("dsp")) and "dsp" in board.core.features}


def naive_mod(task: Task) -> tvm.IRModule:
    func = linear.schedule(task.shape, linear.NAIVE).with_attr(KERNEL_ATTR, task.key).with_attr(FIXED_ATTR, "{}")
    return tvm.IRModule({"main": func})


def check_board(board_name: str):
    board = load_board(board_name)
    if board.template != "cortex_m":
        raise UserError(f"board {board_name}: not a cortex_m board (gap9 is tuned by trm_tvm.gap9.tune)",
                        "tune a Cortex-M board (cortex-m4, cortex-m7, cortex-m33, cortex-m55) or gap9; "
                        "see docs/tuning.md")
    if "mve" in board.core.features:
        raise UserError(f"board {board_name}: its linear layers run the Helium (mve) form, which the tuner's space does "
                        "not search yet (tuned records of the dsp form would replace it)",
                        "use --schedule default on this board, or tune cortex-m4/m7/m33; see docs/tuning.md")
    return board


def tune(board_name: str, artifacts: list[Path], *, trials: int = TRIALS, budget_min: float = BUDGET_MIN,
         per_iter: int = PER_ITER, out: Path, db_root: Path | None = None, whole: bool = True,
         remote=None, log: Callable[[str], None] = print) -> dict:
    board = check_board(board_name)
    t_start = time.monotonic()
    arts = {a: Artifact.load(a) for a in artifacts}
    tasks: dict[str, Task] = {}
    for a, art in arts.items():
        for t in model_tasks(art, board):
            tasks.setdefault(t.name, t)
    clock = board_clock_hz(board_name)
    bdir = database.board_dir(board_name, db_root)
    loaded = database.repair(board_name, db_root, warn=lambda m: log(f"warning: {m}"))
    db = search.open_database(bdir)
    measurer = search.Measurer(board_name, out / "work", out / "cache", deadline=t_start + 60 * budget_min,
                               remote=remote)
    log(f"{board_name}: {len(tasks)} tasks ({', '.join(tasks)}); database {bdir} holds {len(loaded.entries)} "
        f"records; budget {trials} trials/task, {budget_min:g} min")

    # seed: the default schedule of every task, one firmware
    dflt = default_knobs(board)
    seen = search.seen_hashes(db)
    seed_tasks = [t for t in tasks.values()]
    res = search.measure_knobs_many([(t, dflt) for t in seed_tasks], measurer)
    seeded = sum(search.record_knobs(db, t, dflt, r, clock, seen) for t, r in zip(seed_tasks, res))
    log(f"seeded {seeded} default schedules ({measurer.batches} firmware so far, {measurer.build_s:.0f} s)")

    # search
    search.search_missing_trials(db, list(tasks.values()), measurer, trials, per_iter, out / "ms", log)

    summary = compare(board, arts, tasks, measurer, db_root, whole, out, log)
    summary["search"] = {"strategy": "meta_schedule ReplayFunc (uniform random knobs), duplicates from cache",
                         "cost_model": "none used by ReplayFunc (random passed)", "trials_per_task": trials,
                         "firmware_builds": measurer.batches, "build_and_measure_s": round(measurer.build_s, 1),
                         "wall_s": round(time.monotonic() - t_start, 1)}
    write_json(out / "summary.json", {**summary, "provenance": run_info()})
    atomic_write_text(out / "summary.md", summary_md(summary))
    log(summary_md(summary))
    return summary


def compare(board, arts: dict, tasks: dict[str, Task], measurer, db_root, whole: bool, out: Path, log) -> dict:
    """naive / default / tuned per kernel (one firmware) and per whole inference (one firmware per level)."""
    best = database.load(board.name, db_root, warn=lambda m: log(f"warning: {m}")).best()
    dflt = default_knobs(board)
    measurer.deadline = float("inf")              # the comparison always runs
    kernels = sorted({t.key: t for t in tasks.values()}.values(), key=lambda t: -t.calls * t.macs)
    by_key = {t.key: [x for x in tasks.values() if x.key == t.key] for t in kernels}
    mods, rows = [], []
    for t in kernels:
        tuned = best.get(t.key)
        d_task = _task_with_dsp(by_key[t.key], dflt["dsp"], dflt.get("widen", False))
        tuned_task = _task_with_dsp(by_key[t.key], *((tuned.knobs["dsp"], tuned.knobs.get("widen", False)) if tuned
                                                     else (dflt["dsp"], dflt.get("widen", False))))
        mods += [naive_mod(t), d_task.schedule(dflt).mod,
                 tuned_task.schedule(tuned.knobs if tuned else dflt).mod]
        rows.append({"kernel": f"trm_{t.key}_tvm", "calls": t.calls, "macs": t.macs,
                     "tuned_knobs": tuned.knobs if tuned else None})
    res = measurer.measure(mods)
    for i, row in enumerate(rows):
        for j, level in enumerate(("naive", "default", "tuned")):
            r = res[3 * i + j]
            row[level] = r["cycles"] if r["bit_exact"] else {"error": r["error"]}
    summary = {"board": board.name, "kernels": rows, "whole": []}
    if whole:
        for a, art in arts.items():
            for kernels_, level in (("tvm", "naive"), ("tvm", "default"), ("tvm", "tuned"), ("handwritten", "-")):
                log(f"whole inference: {a.name} {kernels_} {level}")
                summary["whole"].append(whole_inference(a, board.name, kernels_, level, out, db_root))
    return summary


def _task_with_dsp(tasks: list[Task], dsp: bool, widen: bool) -> Task:
    """The task compile would build for these dsp / widen knobs (no DSP form of the shape: the plain one, as compile
    does)."""
    return next((x for x in tasks if x.dsp == dsp and x.widen == (dsp and widen)), next(x for x in tasks if not x.dsp))


def whole_inference(artifact: Path, board: str, kernels: str, level: str, out: Path, db_root) -> dict:
    """One fixed-compute inference under the timing plugin + a 2-inference session check vs the golden model."""
    import numpy as np

    from trm_tvm import project as proj
    from trm_tvm.bench import profile
    from trm_tvm.compile.driver import compile_artifact
    from trm_tvm.jsonio import read_json
    from trm_tvm.session import run_session

    tag = f"{artifact.stem}-{kernels}-{level}"
    work = out / "whole" / tag
    old = database.SCHEDULES
    database.SCHEDULES = database.board_dir(board, db_root).parent
    try:
        build = compile_artifact(artifact, board, kernels, work / "build", "default" if level == "-" else level)
    finally:
        database.SCHEDULES = old
    project = proj.generate_project(work / "build", board, work / "project")
    proj.build(project)
    n_sup = build["schedule_info"]["N_sup"]
    calls = read_json(work / "build" / "calls.json")
    s = run_session(project, limit=2, fixed_steps=n_sup, artifact=str(artifact), out=work / "session.json")
    x = np.zeros(tuple(build["io"]["input_shape"]), np.int8)
    p = profile(project, calls, n_sup, x, work / "plugin")
    linear_cyc = sum(k["cycles"]["value"] for fn, k in p["kernels"].items() if fn.startswith("trm_linear"))
    return {"artifact": artifact.name, "precision": build["artifact"]["precision"], "kernels": kernels,
            "schedule": level, "bit_exact": bool(s["summary"]["all_bit_exact"]), "cycles": p["total"]["cycles"],
            "instructions": p["total"]["instructions"], "steps": n_sup,
            "linear_cycles": linear_cyc, "other_cycles": p["total"]["cycles"]["value"] - linear_cyc,
            "by_function": {fn: k["cycles"]["value"] for fn, k in p["kernels"].items()}}


def level_cells(row: dict) -> list[str]:
    """A kernel row's naive, default and tuned cost (or the error that level hit) and tuned/default."""
    cells = [fmt(row[lv]) if "value" in row[lv] else f"error: {row[lv]['error']}" for lv in ("naive", "default", "tuned")]
    ratio = (f"{row['tuned']['value'] / row['default']['value']:.3f}"
             if "value" in row["tuned"] and "value" in row["default"] else "n/a")
    return [*cells, ratio]


def knobs_cell(knobs: dict | None) -> str:
    return json.dumps(knobs) if knobs else "(no record: default)"


def summary_md(s: dict) -> str:
    kernels = [[r["kernel"], r["calls"], *level_cells(r), knobs_cell(r["tuned_knobs"])] for r in s["kernels"]]
    lines = [f"## {s['board']}: per kernel (one self-test call each, timing plugin; cycles modeled)", "",
             table(["kernel", "calls/inference", "naive", "default", "tuned", "tuned/default", "tuned knobs"], kernels)]
    if s["whole"]:
        whole = [[f"{w['artifact']} ({w['precision']})", w["kernels"], w["schedule"], w["bit_exact"],
                  fmt(w["instructions"]), fmt(w["cycles"]), w["linear_cycles"], w["other_cycles"]] for w in s["whole"]]
        lines += ["", "Whole fixed-compute inference (timing plugin; bit-exact = 2-inference session vs golden):", "",
                  table(["artifact", "kernels", "schedule", "bit-exact", "instructions", "cycles", "linear layers",
                         "rest"], whole)]
    if "search" in s:
        lines += ["", f"Search: {json.dumps(s['search'])}"]
    return "\n".join(lines) + "\n"

