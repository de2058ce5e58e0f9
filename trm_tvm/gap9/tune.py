"""`python -m trm_tvm.tune --board gap9`: meta_schedule over the GAP9 cluster schedule of every linear layer.

    summary = tune([Path("ecg_w8a8.npz")], trials=48, per_iter=24, out=Path("reports/tune/gap9"))

1. Tasks: one per linear-layer shape of the artifacts (trm_tvm.gap9.space: the Cortex-M strategy's kernel as the
   workload, the GAP9 knobs as `sample_categorical` decisions over legal values).
2. Seed: each task's default schedule is measured and recorded, so tuned is never worse than default.
3. Search: meta_schedule ReplayFunc through trm_tvm.tune.search (the Cortex-M path's PyBuilder / PyRunner /
   bit-exact measure callback) with `KernelMeasurer` below: the candidates of a batch run in ONE functional
   firmware on 9 QEMU harts (trm_tvm.gap9.selftest: compat checker on, 0 LSB against the integer spec, L1 peak
   = plan; each candidate also with the per-core kernels generated from the TIR strategy, as
   `deploy --kernels tir` runs them); a candidate that fails is rejected, a passing one is scored by the frozen
   cycle model (**modeled**).
4. Compare: naive / default / tuned per kernel (modeled cycles, each verified on the functional build) and per
   whole fixed-compute inference of each artifact; the tuned project (with the TIR-generated per-core kernels,
   as `deploy --kernels tir`) is run against the golden model (0 LSB).
The database is meta_schedule's JSON database in schedules/gap9/ (docs/tuning.md); `deploy --schedule tuned`
reads its best record per layer shape.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from trm_tvm.errors import atomic_write_text
from trm_tvm.gap9 import cycles, functional, project, selftest, space
from trm_tvm.gap9.board import Gap9Board, load_gap9
from trm_tvm.gap9.space import Gap9Task
from trm_tvm.gap9.tiling import LinearTiling
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.markdown import table
from trm_tvm.provenance import figure, fmt
from trm_tvm.quant.artifact import Artifact

BOARD = "gap9"
TRIALS = 128                 # meta_schedule trials per task (uniform random; the spaces hold 48-288 legal schedules)
PER_ITER = 32                # candidates per meta_schedule iteration = per functional firmware (~2 s)
BUDGET_MIN = 12.0


@dataclass
class KernelMeasurer:
    """trm_tvm.tune.search's measurer interface for GAP9: scheduled kernels -> functional check + modeled cycles,
    cached by the candidate's structural hash."""
    gap9: Gap9Board
    workdir: Path
    checks: int = 1
    deadline: float = float("inf")
    board: str = BOARD
    results: dict = field(default_factory=dict)
    batches: int = 0
    build_s: float = 0.0
    rejected: int = 0

    def measure(self, mods: list) -> list[dict]:
        from tvm_ffi import structural_hash

        hashes = [str(structural_hash(m)) for m in mods]
        todo = {h: m for h, m in zip(hashes, mods) if h not in self.results}
        if todo and time.monotonic() > self.deadline:
            return [dict(self.results.get(h) or {"bit_exact": False, "error": "tuning budget exhausted"}, hash=h)
                    for h in hashes]
        by_task: dict[str, list] = defaultdict(list)
        for h, m in todo.items():
            by_task[str(m["main"].attrs[space.KERNEL_ATTR])].append((h, m))
        for group in by_task.values():
            self._measure_task(group)
        return [dict(self.results[h], hash=h) for h in hashes]

    def _measure_task(self, group: list) -> None:
        task = space.task_of(group[0][1]["main"])
        tilings = [task.tiling(space.knobs_in(m)) for _, m in group]
        t0 = time.monotonic()
        checked = selftest.run_linear_cases(tilings, self.workdir / f"batch{self.batches % 2}", checks=self.checks,
                                            tir=True)
        self.batches += 1
        self.build_s += time.monotonic() - t0
        for (h, _), t, r in zip(group, tilings, checked):
            if r.ok:
                self.results[h] = {"bit_exact": True, "cycles": figure(cycles.linear_cycles(t, self.gap9).total,
                                                                       "cycles", "modeled", cycles.MODEL_SOURCE)}
            else:
                self.rejected += 1
                self.results[h] = {"bit_exact": False, "error": f"functional check: {r.error}"}


def load_best(db_root: Path | None = None, warn=lambda m: None) -> dict:
    """{task key: database Entry} of the fastest bit-exact record per GAP9 kernel."""
    from trm_tvm.tune import database

    return database.load(BOARD, db_root, warn=warn, knobs_of=space.knobs_of).best()


def overrides(art: Artifact, board: Gap9Board, level: str, best: dict | None = None,
              log: Callable[[str], None] = lambda m: None) -> dict[str, LinearTiling]:
    """The tilings of every cluster linear layer of `art` at schedule level naive | default | tuned (tuned: the
    database's best record of the layer's shape; a shape without a record keeps the default, said once)."""
    tasks, layers = space.model_tasks([art], board)
    out, said = {}, set()
    for name, key in layers[0].items():
        task = tasks[key]
        knobs = task.naive() if level == "naive" else task.default()
        if level == "tuned":
            if key in (best or {}):
                knobs = best[key].knobs
            elif key not in said:
                said.add(key)
                log(f"schedule tuned: no record for {key} in schedules/{BOARD}/ -> default schedule")
        out[name] = task.tiling(knobs)
    return out


def inference_cycles(art: Artifact, board: Gap9Board, tilings: dict[str, LinearTiling]) -> int:
    """Modeled cycles of one fixed-compute inference with these linear tilings."""
    em = project._NetEmitter(art, board, tilings)
    for section in ("prologue", "net", "heads"):
        em.section(section)
    return cycles.model_cycles(art, em.plans, board).inference_cycles(art.schedule["N_sup"])


def tune(artifacts: list[Path], *, trials: int = TRIALS, per_iter: int = PER_ITER, budget_min: float = BUDGET_MIN,
         out: Path, db_root: Path | None = None, inputs: int = 8, log: Callable[[str], None] = print) -> dict:
    from trm_tvm.tune import database, search
    from trm_tvm.tune.firmware import board_clock_hz

    t_start = time.monotonic()
    board = load_gap9()
    arts = {a: Artifact.load(a) for a in artifacts}
    tasks, _ = space.model_tasks(list(arts.values()), board)
    clock = board_clock_hz(BOARD)
    loaded = database.repair(BOARD, db_root, warn=lambda m: log(f"warning: {m}"), knobs_of=space.knobs_of)
    db = search.open_database(database.board_dir(BOARD, db_root))
    measurer = KernelMeasurer(board, out / "work", deadline=t_start + 60 * budget_min)
    log(f"gap9: {len(tasks)} tasks ({', '.join(tasks)}); database {database.board_dir(BOARD, db_root)} holds "
        f"{len(loaded.entries)} records; {trials} trials/task, {per_iter} candidates per functional firmware")

    seen = search.seen_hashes(db)
    res = search.measure_knobs_many([(t, t.default()) for t in tasks.values()], measurer)
    seeded = sum(search.record_knobs(db, t, t.default(), r, clock, seen) for t, r in zip(tasks.values(), res))
    bad = [t.key for t, r in zip(tasks.values(), res) if not r["bit_exact"]]
    log(f"seeded {seeded} default schedules" + (f"; default NOT bit-exact: {bad}" if bad else ""))

    search.search_missing_trials(db, list(tasks.values()), measurer, trials, per_iter, out / "ms", log)

    summary = compare(arts, tasks, board, measurer, db_root, out, inputs, log)
    summary["search"] = {"strategy": "meta_schedule ReplayFunc (uniform random legal knobs), duplicates from cache",
                         "trials_per_task": trials, "functional_firmware": measurer.batches,
                         "rejected_candidates": measurer.rejected, "build_and_run_s": round(measurer.build_s, 1),
                         "wall_s": round(time.monotonic() - t_start, 1)}
    write_json(out / "summary.json", {**summary, "provenance": run_info()})
    atomic_write_text(out / "summary.md", summary_md(summary))
    log(summary_md(summary))
    return summary


def compare(arts: dict, tasks: dict[str, Gap9Task], board: Gap9Board, measurer: KernelMeasurer, db_root,
            out: Path, inputs: int, log) -> dict:
    """naive / default / tuned per kernel (each re-checked on the functional build) and per whole inference."""
    best = load_best(db_root, warn=lambda m: log(f"warning: {m}"))
    measurer.deadline = float("inf")
    rows, mods = [], []
    for t in sorted(tasks.values(), key=lambda t: -t.calls * t.macs):
        knobs = {"naive": t.naive(), "default": t.default(), "tuned": best[t.key].knobs if t.key in best else None}
        space_cycles = [cycles.linear_cycles(t.tiling(k), board).total for k in t.all_knobs()]
        rows.append({"kernel": t.key, "calls": t.calls, "macs": t.macs, "knobs": knobs,
                     "space": {"schedules": len(space_cycles), "best_modeled": min(space_cycles)}})
        mods += [t.schedule(knobs[lv] or t.default()).mod for lv in ("naive", "default", "tuned")]
    res = measurer.measure(mods)
    for i, row in enumerate(rows):
        for j, level in enumerate(("naive", "default", "tuned")):
            r = res[3 * i + j]
            row[level] = r["cycles"] if r["bit_exact"] else {"error": r["error"]}
    whole = []
    for path, art in arts.items():
        levels = {lv: overrides(art, board, lv, best, log) for lv in ("naive", "default", "tuned")}
        cyc = {lv: figure(inference_cycles(art, board, t), "cycles", "modeled", cycles.MODEL_SOURCE)
               for lv, t in levels.items()}
        work = out / "verify" / path.stem
        xs = project.quantized_inputs(art, inputs, 0)
        thr = int(art.header["halting"]["q_thr"])
        project.generate_project(art, work, xs, board=board, linear_overrides=levels["tuned"], tir_kernels=True)
        run = functional.run(project.build_functional(work), timeout_s=120 + 10.0 * inputs)
        cmp = project.compare_with_golden(art, xs, project.parse_log(run.output), thr)
        exact = run.exit_code == 0 and cmp["mismatches"] == 0 and cmp["runs"] == 2 * inputs
        verdict = "0 LSB" if exact else f"NOT bit-exact: {cmp['first_mismatch'] or run.compat_error}"
        log(f"{path.name}: tuned project (TIR per-core kernels) on 9 QEMU harts: {cmp['runs']} runs, "
            f"{cmp['mismatches']} mismatches vs golden -> {verdict}")
        whole.append({"artifact": path.name, "precision": art.header["precision"], "steps": art.schedule["N_sup"],
                      **cyc, "tuned_bit_exact": exact, "verified_runs": cmp["runs"],
                      "tuned_layers": {n: asdict(t) for n, t in levels["tuned"].items()}})
    return {"board": BOARD, "cost": f"modeled, {cycles.MODEL_SOURCE}", "kernels": rows, "whole": whole}


def summary_md(s: dict) -> str:
    from trm_tvm.tune.run import knobs_cell, level_cells

    kernels = [[r["kernel"], r["calls"], *level_cells(r),
                f"{r['space']['schedules']}, {r['space']['best_modeled']}", knobs_cell(r["knobs"]["tuned"])]
               for r in s["kernels"]]
    whole = [[f"{w['artifact']} ({w['precision']})", w["steps"], fmt(w["naive"]), fmt(w["default"]), fmt(w["tuned"]),
              f"{w['tuned']['value'] / w['default']['value']:.3f}", f"{w['tuned_bit_exact']} ({w['verified_runs']})"]
             for w in s["whole"]]
    lines = [f"## gap9: per kernel (one call each; cycles modeled by {cycles.MODEL_SOURCE}, every schedule "
             "verified 0 LSB on the functional build)", "",
             "The space's best = the lowest modeled cycles over all its legal schedules (enumerated, not run).", "",
             table(["kernel", "calls/inference", "naive", "default", "tuned", "tuned/default",
                    "space: schedules, best", "tuned knobs"], kernels),
             "", "Whole fixed-compute inference (all layers; tuned project verified against the golden model):", "",
             table(["artifact", "steps", "naive", "default", "tuned", "tuned/default", "tuned 0 LSB (runs)"], whole)]
    if "search" in s:
        lines += ["", f"Search: {json.dumps(s['search'])}"]
    return "\n".join(lines) + "\n"
