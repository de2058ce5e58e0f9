"""python -m trm_tvm.bench: the benchmark matrix -- boards x artifacts x kernel back ends x schedules x modes.

    python -m trm_tvm.bench --boards cortex-m4,cortex-m55 --artifacts a.npz,random:w4a8 --kernels reference,tvm
                            --schedules naive,default --modes fixed,halting --limit 200,cortex-m7=50
                            [--profile] --out reports/bench/<name>

For every combination: compile, build, run a session of `limit` inferences on the board (QEMU for emulated
boards) and check every output bit-exact against the golden model. Per build it reports the arena and its lower
bound, constants and ELF sizes (exact static data); per mode the emulated instructions per inference (mean and
worst case), modeled latency and emulated instructions per MAC. With --profile one more fixed-compute inference
runs under the QEMU timing plugin (trm_tvm.measure): instructions and modeled cycles per kernel function,
instructions per MAC per kernel, and the share of cycles spent in the linear layers.

`random:w8a8`, `random:w4a8`, `random:mixed` (tiny) and `random:ecg-w8a8` (the ECG model's shapes) name
random-weight artifacts made by trm_tvm.quant.fixtures (for checking the compiler before trained artifacts exist;
their accuracy is meaningless). Results: `results.json`
(every figure with its provenance) and `summary.md` in --out; reruns skip finished combinations.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from trm_tvm import project as proj
from trm_tvm.boards import load_board
from trm_tvm.compile.backends import KERNELS
from trm_tvm.compile.driver import compile_artifact
from trm_tvm.compile.strategies import LEVELS
from trm_tvm.errors import UserError, atomic_write_text, cli_main
from trm_tvm.jsonio import read_json, run_info, write_json
from trm_tvm.markdown import table
from trm_tvm.provenance import figure, fmt
from trm_tvm.session import INT32_MAX, Session, run_session

MODES = ("fixed", "halting")
RANDOM = {"w8a8": dict(bits=8, seed=21), "w4a8": dict(bits=4, seed=22, state_scale_mode="per_step"),
          "mixed": dict(bits={"*.ch.*": 4, "default": 8}, seed=23),
          # the ECG model's shapes (configs/ecg.yaml: hidden 48, 512 samples in 32 tokens of 16) for kernel figures
          "ecg-w8a8": dict(bits=8, seed=24, hidden=48, tokens=32, patch=16, calib=16)}


def resolve_artifact(spec: str, out: Path) -> Path:
    if spec.startswith("random:"):
        kind = spec.split(":", 1)[1]
        if kind not in RANDOM:
            raise UserError(f"unknown random artifact {spec!r}", f"use random:{' | random:'.join(RANDOM)}")
        path = out / "artifacts" / f"random-{kind}.npz"
        if not path.is_file():
            from trm_tvm.quant.fixtures import random_artifact
            random_artifact(**RANDOM[kind])[0].save(path)
        return path
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"artifact {path} does not exist", "pass .npz artifacts or random:w8a8|w4a8|mixed")
    return path


def parse_limits(spec: str, boards: list[str]) -> dict[str, int]:
    """'200' or '200,cortex-m7=50': a default plus per-board overrides."""
    default, per = None, {}
    for part in spec.split(","):
        name, sep, n = part.partition("=")
        try:
            if sep:
                per[name] = int(n)
            else:
                default = int(name)
        except ValueError:
            raise UserError(f"--limit {spec!r} is not N[,board=N...]", "e.g. --limit 200,cortex-m7=50") from None
    return {b: per.get(b, default or 8) for b in boards}


def inference_macs(calls: dict, steps: float) -> float:
    by = {s: sum(c["macs"] for c in calls["calls"] if c["section"] == s) for s in ("prologue", "net", "heads")}
    return by["prologue"] + steps * (calls["calls_per_step"] * by["net"] + by["heads"])


def profile(project, calls: dict, n_sup: int, x: np.ndarray, workdir: Path) -> dict:
    """One fixed-compute inference under the timing plugin: per kernel function instructions, cycles, per MAC."""
    from trm_tvm.measure import report, timing

    run = timing.prepare_plugin(project.elf, project.board, workdir, marks=timing.SESSION_MARKS)
    with Session(project, qemu_args=tuple(run.qemu_args)) as s:
        s.client.load_input(np.ascontiguousarray(x).tobytes())
        s.client.run(INT32_MAX, n_sup)
    (inf,) = timing.per_inference(run.snapshots(), calls["calls_per_step"])
    summary = report.summarize(inf["run"], project.board)
    times = {"prologue": 1, "net": n_sup * calls["calls_per_step"], "heads": n_sup}
    fn_macs: dict[str, int] = {}
    for c in calls["calls"]:
        fn_macs[c["function"]] = fn_macs.get(c["function"], 0) + c["macs"] * times[c["section"]]
    kernels = {}
    for fn, figs in summary["groups"].items():
        k = {"instructions": figs["instructions"], "cycles": figs["cycles"]}
        if fn_macs.get(fn):
            k["instructions_per_mac"] = figure(round(figs["instructions"]["value"] / fn_macs[fn], 3), "insn/MAC",
                                               "emulated", "QEMU timing plugin / MACs of the calls")
        kernels[fn] = k
    total_cyc = summary["total"]["cycles"]["value"]
    linear_cyc = sum(figs["cycles"]["value"] for fn, figs in summary["groups"].items() if fn_macs.get(fn))
    macs = inference_macs(calls, n_sup)
    return {"steps": n_sup, "total": summary["total"], "kernels": kernels,
            "instructions_per_mac": figure(round(summary["total"]["instructions"]["value"] / macs, 3), "insn/MAC",
                                           "emulated", "QEMU timing plugin, whole inference / its MACs"),
            "linear_cycle_share": figure(round(linear_cyc / total_cyc, 4), "", "modeled",
                                         f"{project.board.name} timing model over the plugin's instruction classes")}


def run_one(board: str, artifact: Path, kernels: str, schedule: str, modes: list[str], limit: int, out: Path,
            do_profile: bool, log) -> dict:
    tag = f"{board}-{kernels}-{schedule}-{artifact.stem}"
    work = out / "work" / tag
    build = compile_artifact(artifact, board, kernels, work / "build", schedule)
    project = proj.generate_project(work / "build", board, work / "project")
    proj.build(project)
    from trm_tvm.measure import memory

    mem = memory.memory_report(project.elf, project.board, check=False)
    plan = read_json(work / "build" / "memory_plan.json")
    calls = read_json(work / "build" / "calls.json")
    n_sup = build["schedule_info"]["N_sup"]
    row = {"board": board, "artifact": str(artifact), "precision": build["artifact"]["precision"],
           "kernels": kernels, "schedule": schedule,
           "arena": figure(plan["arena_bytes"], "B", "measured", "memory plan (exact static data)"),
           "arena_lower_bound": figure(plan["lower_bound_bytes"], "B", "measured", "tensor lifetimes of the graph"),
           "constants": figure(sum(build["weight_bytes"].values()), "B", "measured", "trm_weights.c arrays"),
           "weight_bytes": build["weight_bytes"], "flash": mem["flash"], "ram": mem["ram"], "modes": {}}
    for mode in modes:
        log(f"{tag} {mode}: {limit} inferences")
        r = run_session(project, limit=limit, fixed_steps=n_sup if mode == "fixed" else None,
                        artifact=str(artifact), out=work / f"session-{mode}.json")
        s = r["summary"]
        steps = float(np.mean([i["steps"] for i in r["inferences"]]))
        entry = {"inferences": s["inferences"], "checked": s["checked"], "bit_exact": s["bit_exact"],
                 "all_bit_exact": s["all_bit_exact"], "steps_mean": steps}
        if "peak_stack" in s:
            entry["peak_stack"] = s["peak_stack"]["max"]
        if "instructions" in s:
            entry.update(instructions=s["instructions"], latency=s["latency"],
                         instructions_per_mac=figure(round(s["instructions"]["mean"]["value"] /
                                                           inference_macs(calls, steps), 3), "insn/MAC", "emulated",
                                                     "session instruction counter / MACs at the mean steps"))
        row["modes"][mode] = entry
    if do_profile:
        x = np.zeros(tuple(build["io"]["input_shape"]), np.int8 if build["io"]["input_dtype"] == "int8" else np.uint8)
        row["profile"] = profile(project, calls, n_sup, x, work / "plugin")
    return row


def summary_md(rows: list[dict]) -> str:
    sessions = []
    for r in rows:
        for mode, m in r["modes"].items():
            ins = fmt(m["instructions"]["mean"]) if "instructions" in m else "n/a"
            lat = fmt(m["latency"]["mean"]) if "latency" in m else "n/a"
            ipm = fmt(m["instructions_per_mac"]) if "instructions_per_mac" in m else "n/a"
            sessions.append([r["board"], f"{Path(r['artifact']).stem} ({r['precision']})", r["kernels"], r["schedule"],
                             mode, f"{m['bit_exact']}/{m['checked']}", ins, lat, ipm,
                             f"{r['arena']['value']} / {r['arena_lower_bound']['value']} B", fmt(r["flash"])])
    lines = [table(["board", "artifact", "kernels", "schedule", "mode", "bit-exact", "insn/inference (mean)",
                    "latency (mean)", "insn/MAC", "arena / bound", "flash"], sessions)]
    prof = [r for r in rows if "profile" in r]
    if prof:
        lines += ["", "Per kernel (one fixed-compute inference under the QEMU timing plugin):", "",
                  "| board | kernels | schedule | function | instructions | cycles | insn/MAC |", "|" + "---|" * 7]
        for r in prof:
            p = r["profile"]
            lines.append(f"| {r['board']} | {r['kernels']} | {r['schedule']} | whole inference | "
                         f"{fmt(p['total']['instructions'])} | {fmt(p['total']['cycles'])} | "
                         f"{fmt(p['instructions_per_mac'])} (linear share {fmt(p['linear_cycle_share'])}) |")
            for fn, k in sorted(p["kernels"].items(), key=lambda kv: -kv[1]["cycles"]["value"]):
                ipm = fmt(k["instructions_per_mac"]) if "instructions_per_mac" in k else ""
                lines.append(f"| | | | {fn} | {fmt(k['instructions'])} | {fmt(k['cycles'])} | {ipm} |")
    return "\n".join(lines + published_anchors(sorted({r["board"] for r in rows}))) + "\n"


def published_anchors(boards: list[str]) -> list[str]:
    """The boards' published figures (board file `published:`), to read ours against; never our measurements."""
    lines = []
    for name in boards:
        for a in load_board(name).published.values():
            value = a["value"]
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            lines.append(f"- {name}: {a['what']}: {value} (published; {a['source']})")
    return ["", "Published anchors (other models or peak figures, for scale; label: published):", ""] + lines if lines else []


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", required=True)
    ap.add_argument("--artifacts", required=True, help="comma list of .npz files or random:w8a8|w4a8|mixed")
    ap.add_argument("--kernels", default="reference,tvm")
    ap.add_argument("--schedules", default="default", help="tvm kernels: naive,default,tuned")
    ap.add_argument("--modes", default="fixed,halting")
    ap.add_argument("--limit", default="8", help="inferences per session: N[,board=N...]")
    ap.add_argument("--profile", action="store_true", help="per-kernel figures under the QEMU timing plugin")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    out = Path(a.out)
    boards = a.boards.split(",")
    for b in boards:
        load_board(b)
    kernels, schedules, modes = a.kernels.split(","), a.schedules.split(","), a.modes.split(",")
    for what, vals, ok in (("kernels", kernels, KERNELS), ("schedule", schedules, LEVELS), ("mode", modes, MODES)):
        bad = [v for v in vals if v not in ok]
        if bad:
            raise UserError(f"unknown {what} {bad[0]!r}", f"use {', '.join(ok)}")
    arts = [resolve_artifact(s, out) for s in a.artifacts.split(",")]
    limits = parse_limits(a.limit, boards)
    results_path = out / "results.json"
    done = read_json(results_path)["rows"] if results_path.is_file() else []
    key = lambda r: (r["board"], r["artifact"], r["kernels"], r["schedule"])  # noqa: E731
    finished = {key(r) for r in done}
    rows = list(done)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    for board in boards:
        for art in arts:
            for k in kernels:
                for sched in (schedules if k == "tvm" else ["n/a"]):
                    if (board, str(art), k, sched) in finished:
                        continue
                    rows.append(run_one(board, art, k, "default" if sched == "n/a" else sched, modes,
                                        limits[board], out, a.profile, log))
                    rows[-1]["schedule"] = sched
                    write_json(results_path, {"rows": rows, "provenance": run_info()})
    atomic_write_text(out / "summary.md", summary_md(rows))
    exact = all(m["all_bit_exact"] for r in rows for m in r["modes"].values())
    n = sum(m["checked"] for r in rows for m in r["modes"].values())
    print(f"{len(rows)} builds, {n} inferences checked, {'all bit-exact' if exact else 'MISMATCHES'} vs golden "
          f"-> {out / 'summary.md'}")
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
