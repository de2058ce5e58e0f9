"""meta_schedule glue: our kernels as tune tasks, a PyBuilder that runs our C pipeline and cross-compiles a batch
firmware, a PyRunner that measures it on the board, and a measure callback that commits bit-exact candidates only.

Search strategy: meta_schedule's ReplayFunc -- each trial re-runs the task's space function, which samples every
knob uniformly (random search, seeded by `search_seed`; the spaces are small: <= 65 distinct schedules per task).
No cost model is used by ReplayFunc, so none is needed (xgboost is not installed; "random" is passed to satisfy the
API). A candidate whose scheduled PrimFunc was already measured (same structural hash, this run or an earlier one)
is answered from the cache without a new build. Tasks are served round-robin.

A trial batch (`num_trials_per_iter` candidates of one task) is ONE firmware: one cross-compile (~5 s) and one
QEMU boot running every candidate's self-test under the timing plugin (~3 s); see docs/tuning.md for the budget.
"""
from __future__ import annotations

import json
import sys
import time
import types
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tvm
from tvm_ffi import structural_hash
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from trm_tvm.compile.backends.tvm import c_param_type
from trm_tvm.compile.lower_c import to_c
from trm_tvm.tune import firmware
from trm_tvm.tune.firmware import Batch, Candidate
from trm_tvm.tune.space import FIXED_ATTR, KERNEL_ATTR, Task

TARGET = tvm.target.Target({"kind": "c"})     # only names the tasks; our own pipeline does the lowering


def candidate_of(mod: tvm.IRModule, cid: str) -> tuple[Candidate, tvm.tirx.PrimFunc]:
    """The firmware candidate of a scheduled kernel (named by its workload attribute)."""
    func = mod["main"]
    key = str(func.attrs[KERNEL_ATTR])
    shape = parse_key(key)
    from trm_tvm.compile.strategies import linear

    # the arena scratch of the workload's form (naive: the accumulator; dsp widen: the widened activations)
    scratch = linear.scratch_bytes(shape, {**linear.NAIVE, **json.loads(str(func.attrs[FIXED_ATTR]))})
    cand = Candidate(cid, f"trm_{key}_{cid}", tuple(c_param_type(p) for p in func.params), shape.wbits, shape.bias,
                     shape.tokens, shape.n_in, shape.n_out, scratch, shape.a_trans, shape.out_trans)
    return cand, func


def parse_key(key: str):
    """LinearShape of a kernel key `linear_s8[_o16][_b]_TxKxN[_<layout>]` (LinearShape.key)."""
    from trm_tvm.compile.strategies.linear import LinearShape

    parts = key.split("_")
    lay = parts.pop() if not parts[-1][0].isdigit() else ""
    dims = [int(x) for x in parts[-1].split("x")]
    return LinearShape(*dims, wbits=int(parts[1][1:]), out_dtype="int16" if "o16" in parts else "int8",
                       bias="b" in parts, a_trans="t" in lay, out_trans="T" in lay)


@dataclass
class Measurer:
    """Builds and measures batches; caches results by the candidate's structural hash; enforces the budget.
    `remote` (farm mode) sends a batch to a board host instead of building and running it here."""
    board: str
    workdir: Path
    cache: Path
    deadline: float = float("inf")
    remote: Callable[[Batch], list[dict]] | None = None
    results: dict = field(default_factory=dict)          # structural hash -> result dict
    batches: int = 0
    build_s: float = 0.0

    def measure(self, mods: list[tvm.IRModule]) -> list[dict]:
        hashes = [str(structural_hash(m)) for m in mods]
        todo = {h: m for h, m in zip(hashes, mods) if h not in self.results}
        if todo and time.monotonic() > self.deadline:
            for h in todo:
                self.results[h] = {"bit_exact": False, "error": "tuning budget exhausted", "transient": True}
        elif todo:
            self._measure_new(todo)
        res = [self.results[h] for h in hashes]
        for h in hashes:                     # the budget error is not a property of the candidate
            if self.results[h].get("transient"):
                del self.results[h]
        return [dict(r, hash=h) for r, h in zip(res, hashes)]

    def _measure_new(self, todo: dict) -> None:
        funcs, cands = {}, {}
        for i, (h, m) in enumerate(todo.items()):
            cand, func = candidate_of(m, f"c{i}")
            try:                             # our C pipeline refuses e.g. register blocks that would spill
                to_c({cand.function: func})
            except ValueError as e:
                self.results[h] = {"bit_exact": False, "error": f"lowering: {e}"}
                continue
            funcs[cand.function], cands[h] = func, cand
        if not cands:
            return
        batch = Batch(self.board, list(cands.values()), to_c(funcs))
        t0 = time.monotonic()
        try:
            out = self.remote(batch) if self.remote else firmware.build_and_measure(
                batch, self.workdir / f"batch{self.batches % 2}", self.cache)
        except Exception as e:               # a failed build/boot fails the batch, not the tune  # noqa: BLE001
            out = [{"bit_exact": False, "error": f"{type(e).__name__}: {e}"}] * len(cands)
        self.batches += 1
        self.build_s += time.monotonic() - t0
        for h, r in zip(cands, out):
            self.results[h] = r


@derived_object
class BatchBuilder(ms.builder.PyBuilder):
    """Lowers each candidate with our C pipeline; the batch is cross-compiled and measured in one go by the runner's
    Measurer (one firmware per batch), so the artifact is the candidate's IRModule kept in memory by index."""

    def __init__(self, store: list):
        super().__init__()
        self.store = store

    def build(self, build_inputs):
        out = []
        for inp in build_inputs:
            self.store.append(inp.mod)
            out.append(ms.builder.BuilderResult(str(len(self.store) - 1), None))
        return out


@derived_object
class _Done(ms.runner.PyRunnerFuture):
    def __init__(self, result: ms.runner.RunnerResult):
        super().__init__()
        self.res = result

    def done(self):
        return True

    def result(self):
        return self.res


@derived_object
class BoardRunner(ms.runner.PyRunner):
    """Measures a batch of candidates in one firmware on the board; run_secs = cycles / the part's clock."""

    def __init__(self, store: list, measurer: Measurer):
        super().__init__()
        self.store, self.measurer = store, measurer
        self.clock_hz = firmware.board_clock_hz(measurer.board)

    def run(self, runner_inputs):
        mods = [self.store[int(r.artifact_path)] for r in runner_inputs]
        futures = []
        for r in self.measurer.measure(mods):
            if r["bit_exact"]:
                futures.append(_Done(ms.runner.RunnerResult([r["cycles"]["value"] / self.clock_hz], None)))
            else:
                futures.append(_Done(ms.runner.RunnerResult(None, r["error"])))
        return futures


@derived_object
class RecordBitExact(ms.measure_callback.PyMeasureCallback):
    """Commits a candidate to the database only when it ran bit-exact, and only once per distinct schedule."""

    def __init__(self, db, tasks: list[Task], seen: set, clock_hz: int, log: Callable[[str], None]):
        super().__init__()
        self.db, self.tasks, self.seen, self.clock_hz, self.log = db, tasks, seen, clock_hz, log
        self.committed = 0

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        task = self.tasks[task_id]
        wl = self.db.commit_workload(task.workload())
        best = None
        for cand, res in zip(measure_candidates, runner_results):
            if res.error_msg is not None:
                if "budget" not in res.error_msg:
                    self.log(f"  {task.name}: rejected: {res.error_msg}")
                continue
            h = str(structural_hash(cand.sch.mod))
            secs = float(res.run_secs[0])
            best = secs if best is None else min(best, secs)
            if h in self.seen:
                continue
            self.seen.add(h)
            self.db.commit_tuning_record(ms.database.TuningRecord(cand.sch.trace, wl, [secs], TARGET,
                                                                  cand.args_info))
            self.committed += 1
        if best is not None:
            self.log(f"  {task.name}: {len(measure_candidates)} candidates, best {best * self.clock_hz:.0f} cycles "
                     f"(modeled), {self.committed} records committed so far")


def open_database(board_dir: Path):
    board_dir.mkdir(parents=True, exist_ok=True)
    from trm_tvm.tune.database import RECORDS, WORKLOADS

    return ms.database.JSONDatabase(str(board_dir / WORKLOADS), str(board_dir / RECORDS))


def seen_hashes(db) -> set:
    """Structural hashes of the schedules already in the database (so a resumed run never records twice)."""
    out = set()
    for rec in db.get_all_tuning_records():
        sch = tvm.s_tir.Schedule(rec.workload.mod)
        rec.trace.apply_to_schedule(sch, remove_postproc=False)
        out.add(str(structural_hash(sch.mod)))
    return out


def remaining_trials(db, tasks: list[Task], trials: int) -> dict[str, int]:
    """Trials each task still needs: `trials` minus the records it already holds (resume after interruption)."""
    have: dict[str, int] = {}
    by_workload = {(t.key, json.dumps(t.fixed, sort_keys=True)): t.name for t in tasks}
    for rec in db.get_all_tuning_records():
        f = rec.workload.mod["main"]
        name = by_workload.get((str(f.attrs[KERNEL_ATTR]), str(f.attrs[FIXED_ATTR])))
        if name:
            have[name] = have.get(name, 0) + 1
    return {t.name: max(0, trials - have.get(t.name, 0)) for t in tasks}


def search_seed(task: Task, missing_trials: int) -> int:
    """The sampler's seed: fixed by the task and by how many trials it still lacks, so that a run is reproducible
    from the same database, and a resumed run draws candidates the interrupted one did not."""
    return zlib.crc32(f"{task.name}/{missing_trials}".encode()) & 0x7FFFFFFF


def skip_tensor_intrin_registry() -> None:
    """TuneContext imports tvm.s_tir.tensor_intrin only to register every CUDA/x86/Arm tensor intrinsic, parsing
    each with TVMScript: 1-4 minutes on this 2-core machine, more than a whole tune. Our spaces use none, so an
    empty module stands in (only when nothing imported the real one)."""
    sys.modules.setdefault("tvm.s_tir.tensor_intrin", types.ModuleType("tvm.s_tir.tensor_intrin"))


def run_tasks(tasks: list[Task], db, measurer: Measurer, trials_per_task: dict[str, int], per_iter: int,
              work_dir: Path, log: Callable[[str], None]) -> int:
    """meta_schedule.tune_tasks over our tasks; returns the number of records committed."""
    active = [t for t in tasks if trials_per_task[t.name] > 0]
    if not active:
        return 0
    skip_tensor_intrin_registry()
    store: list = []
    seen = seen_hashes(db)
    record = RecordBitExact(db, active, seen, firmware.board_clock_hz(measurer.board), log)
    contexts = [ms.TuneContext(t.workload(), target=TARGET, task_name=t.name, num_threads=1,
                               rand_state=search_seed(t, trials_per_task[t.name]),
                               space_generator=ms.space_generator.ScheduleFn(t.space_fn(), sch_rules=[], postprocs=[],
                                                                             mutator_probs={}),
                               search_strategy=ms.search_strategy.ReplayFunc()) for t in active]
    ms.tune_tasks(tasks=contexts, task_weights=[float(t.calls * t.macs) for t in active], work_dir=str(work_dir),
                  max_trials_global=sum(trials_per_task[t.name] for t in active),
                  max_trials_per_task=max(trials_per_task[t.name] for t in active), num_trials_per_iter=per_iter,
                  builder=BatchBuilder(store), runner=BoardRunner(store, measurer), database=db, cost_model="random",
                  measure_callbacks=[record], task_scheduler="round-robin")
    return record.committed


def search_missing_trials(db, tasks: list[Task], measurer: Measurer, trials: int, per_iter: int, work_dir: Path,
                          log: Callable[[str], None]) -> int:
    """Search the trials each task still lacks in the database (a resumed run adds only those); records committed."""
    todo = remaining_trials(db, tasks, trials)
    if not any(todo.values()):
        log("search: every task already has its trials in the database (resumed run: nothing to add)")
        return 0
    log(f"search: meta_schedule ReplayFunc, {sum(todo.values())} trials over {sum(1 for v in todo.values() if v)} "
        f"tasks, {per_iter} candidates per firmware")
    n = run_tasks(tasks, db, measurer, todo, per_iter, work_dir, log)
    log(f"search committed {n} new bit-exact records ({measurer.batches} firmware, {measurer.build_s:.0f} s "
        "building + running)")
    return n


def measure_knobs_many(pairs: list[tuple[Task, dict]], measurer: Measurer) -> list[dict]:
    """Measure given knob values of tasks through the same firmware path (seeding, baselines)."""
    return measurer.measure([task.schedule(k).mod for task, k in pairs])


def record_knobs(db, task: Task, knobs: dict, result: dict, clock_hz: int, seen: set) -> bool:
    """Commit one measured knob set (e.g. the default schedule) as a database record, if bit-exact and new."""
    if not result["bit_exact"] or result["hash"] in seen:
        return False
    sch = task.schedule(knobs)
    wl = db.commit_workload(task.workload())
    db.commit_tuning_record(ms.database.TuningRecord(sch.trace, wl, [result["cycles"]["value"] / clock_hz], TARGET,
                                                     ms.arg_info.ArgInfo.from_prim_func(sch.mod["main"])))
    seen.add(result["hash"])
    return True

