"""The tuning database of a board: meta_schedule's JSON database in schedules/<board>/.

    schedules/<board>/database_workload.json       one line per kernel: [structural hash, workload IRModule]
    schedules/<board>/database_tuning_record.json  one line per bit-exact candidate: [workload index, record]

A record's trace holds the knob decisions (trm_tvm.tune.space.knobs_of); its run_secs are the modeled (emulated
boards) or measured (hardware) cycles / the part's clock. Only bit-exact candidates are ever committed.
`load()` checks every line and reports and skips a corrupted one (bad JSON, a workload index out of range, a trace
that does not decode, non-finite times, a workload that is not one of ours); `repair()` moves such lines to
`<file>.rejected` before tuning appends to the files, so interrupted tuning resumes from what is valid.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from trm_tvm.errors import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
SCHEDULES = REPO / "schedules"
WORKLOADS, RECORDS = "database_workload.json", "database_tuning_record.json"


def board_dir(board: str, root: Path | None = None) -> Path:
    return (root or SCHEDULES) / board


@dataclass
class Entry:
    kernel: str                  # shape key, e.g. linear_s8_16x48x96
    knobs: dict
    cycles_s: float              # mean run_secs
    record: object               # ms.database.TuningRecord


@dataclass
class Loaded:
    entries: list[Entry] = field(default_factory=list)
    bad_workload_lines: list[int] = field(default_factory=list)
    bad_record_lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    good_records: list[tuple[int, object]] = field(default_factory=list)   # (workload index, record JSON)

    def best(self) -> dict[str, Entry]:
        """The fastest bit-exact record per kernel (over its dsp on/off tasks)."""
        out: dict[str, Entry] = {}
        for e in self.entries:
            if e.kernel not in out or e.cycles_s < out[e.kernel].cycles_s:
                out[e.kernel] = e
        return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def load(board: str, root: Path | None = None, warn=lambda m: print(f"warning: {m}", file=sys.stderr),
         knobs_of=None) -> Loaded:
    """`knobs_of(trace, func)` decodes a record's knobs (default: the Cortex-M space's; gap9 passes its own)."""
    from tvm.s_tir import meta_schedule as ms

    from trm_tvm.tune.space import KERNEL_ATTR
    from trm_tvm.tune.space import knobs_of as cortex_m_knobs

    knobs_of = knobs_of or cortex_m_knobs

    d = board_dir(board, root)
    res = Loaded()
    workloads: list = []            # index -> Workload or None (corrupted)
    for i, line in enumerate(_lines(d / WORKLOADS), 1):
        if not line.strip():
            workloads.append(None)
            continue
        try:
            w = ms.database.Workload.from_json(json.loads(line))
            if KERNEL_ATTR not in w.mod["main"].attrs:
                raise ValueError("not a trm-tvm kernel workload")
            workloads.append(w)
        except Exception as e:     # any decoding failure means the line is unusable  # noqa: BLE001
            workloads.append(None)
            res.bad_workload_lines.append(i)
            res.problems.append(f"{d / WORKLOADS} line {i}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    for i, line in enumerate(_lines(d / RECORDS), 1):
        if not line.strip():
            continue
        try:
            idx, rec_json = json.loads(line)
            if not (isinstance(idx, int) and 0 <= idx < len(workloads)) or workloads[idx] is None:
                raise ValueError(f"workload index {idx!r} does not name a valid workload")
            rec = ms.database.TuningRecord.from_json(rec_json, workloads[idx])
            secs = [float(s) for s in (rec.run_secs or [])]
            if not secs or not all(math.isfinite(s) and s > 0 for s in secs):
                raise ValueError(f"run_secs {secs} are not positive finite times")
            func = workloads[idx].mod["main"]
            res.entries.append(Entry(str(func.attrs[KERNEL_ATTR]), knobs_of(rec.trace, func), sum(secs) / len(secs),
                                     rec))
            res.good_records.append((idx, rec_json))
        except Exception as e:     # noqa: BLE001
            res.bad_record_lines.append(i)
            res.problems.append(f"{d / RECORDS} line {i}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    for p in res.problems:
        warn(f"corrupted tuning database entry skipped: {p}")
    return res


def repair(board: str, root: Path | None = None, warn=lambda m: print(f"warning: {m}", file=sys.stderr),
           knobs_of=None) -> Loaded:
    """Move corrupted lines to <file>.rejected and rewrite the valid ones (workloads re-indexed), so meta_schedule
    can open the database and append to it."""
    d = board_dir(board, root)
    res = load(board, root, warn, knobs_of)
    if not (res.bad_workload_lines or res.bad_record_lines):
        return res
    for name, bad in ((WORKLOADS, res.bad_workload_lines), (RECORDS, res.bad_record_lines)):
        lines = _lines(d / name)
        with open(d / f"{name}.rejected", "a") as f:
            f.writelines(lines[i - 1] + "\n" for i in bad)
    wl = _lines(d / WORKLOADS)
    used = sorted({idx for idx, _ in res.good_records})
    new_index = {old: new for new, old in enumerate(used)}
    atomic_write_text(d / WORKLOADS, "".join(wl[i] + "\n" for i in used))
    atomic_write_text(d / RECORDS, "".join(json.dumps([new_index[i], r]) + "\n" for i, r in res.good_records))
    return res


_CACHE: dict = {}


def tuned_knobs(board: str, shape, default: dict, log=lambda m: print(m, file=sys.stderr)) -> dict:
    """Knobs of `shape` at schedule level `tuned`: the database's best bit-exact record, else `default` (said once
    per kernel)."""
    d = board_dir(board)
    stamp = tuple((p.stat().st_mtime_ns if p.is_file() else 0) for p in (d / WORKLOADS, d / RECORDS))
    if _CACHE.get(board, (None,))[0] != stamp:
        _CACHE[board] = (stamp, load(board).best(), set())
    _, best, said = _CACHE[board]
    e = best.get(shape.key)
    if e is None and getattr(shape, "sh32", False):   # an sh = 32 kernel: the same MAC loop as the general one
        e = best.get(replace(shape, sh32=False).key)
    if e is not None:     # a knob the record does not decide was at its neutral (naive) value when it was measured
        from trm_tvm.compile.strategies import linear
        return {**linear.NAIVE, **e.knobs}
    if shape.key not in said:
        said.add(shape.key)
        log(f"schedule tuned: no record for trm_{shape.key}_tvm in {d}/ -> default schedule")
    return dict(default)
