"""GAP9 deploy: generate the PMSIS project, syntax-check it, run its functional build on 9 QEMU harts against the
golden model, and report modeled cycles / latency / energy per phase and per inference, L1/L2 use, and the
published GAP9 figures beside them -- every figure with its provenance."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from trm_tvm.gap9 import cycles, functional, project
from trm_tvm.gap9.board import Gap9Board, load_gap9
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.provenance import figure
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.golden import Golden
from trm_tvm.tune import database

INT32_MAX = 2 ** 31 - 1


def _modeled(art: Artifact, plan: dict, board: Gap9Board, mean_halting_steps: float) -> dict:
    mc = cycles.model_cycles(art, project.plans_from_json(plan), board)
    cal = cycles.pulpnn_check(board)
    n_sup = art.schedule["N_sup"]
    fixed = mc.inference_cycles(n_sup)
    halting = mc.phases["prologue"] + mean_halting_steps * (mc.net_calls_per_step * mc.phases["net"]
                                                           + mc.phases["heads"])
    macs_fixed = mc.macs["prologue"] + n_sup * (mc.net_calls_per_step * mc.macs["net"] + mc.macs["heads"])
    return {
        "model": cycles.MODEL_SOURCE,
        "calibration": {"pulpnn_published_macs_per_cycle": cal.published_macs_per_cycle,
                        "modeled_macs_per_cycle": round(cal.modeled_macs_per_cycle, 3),
                        "relative_error": round(cal.relative_error, 4), "calibrated": cal.calibrated,
                        "layer": cycles.PULPNN_LAYER, "layer_note": "assumed shape (paper's layer not retrieved)"},
        "per_phase": {name: cycles.figures(c, board) for name, c in
                      (("prologue", mc.phases["prologue"]), ("net_call", mc.phases["net"]),
                       ("heads", mc.phases["heads"]))},
        "fixed_compute": {"steps": n_sup, **cycles.figures(fixed, board),
                          "macs": macs_fixed, "macs_per_cycle": round(macs_fixed / fixed, 3)},
        "halting": {"mean_steps": mean_halting_steps, **cycles.figures(round(halting), board)},
    }


def _published(board: Gap9Board) -> dict:
    from trm_tvm.boards import load_board

    pub = load_board("gap9").raw["gap9"]["published"]
    return {"label": "published", **pub}


def deploy(art_path: Path | None, out_dir: Path, n_inputs: int, seed: int = 0, q_threshold: int | None = None,
           art: Artifact | None = None, board: Gap9Board | None = None, timeout_s: float | None = None,
           checks: int = 1, schedule: str = "default", db_root: Path | None = None, tir_kernels: bool = False) -> dict:
    """`schedule`: the linear layers' tilings, naive | default | tuned (the best records of the GAP9 tuning
    database under `db_root`, default the repository's schedules/gap9/). `tir_kernels`: the linear layers'
    per-core compute is kernels generated from the TIR linear strategy (trm_tvm.gap9.tir_kernels)."""
    board = board or load_gap9()
    art = art or Artifact.load(art_path)
    out_dir = Path(out_dir)
    inputs = project.quantized_inputs(art, n_inputs, seed)
    q_thr = int(art.header["halting"]["q_thr"]) if q_threshold is None else int(q_threshold)
    from trm_tvm.gap9 import tune

    warn = lambda m: print(f"warning: {m}", file=sys.stderr)  # noqa: E731
    best = tune.load_best(db_root, warn=warn) if schedule == "tuned" else None
    overrides = tune.overrides(art, board, schedule, best, log=lambda m: print(m, file=sys.stderr))
    plan = project.generate_project(art, out_dir / "project", inputs, board=board, q_threshold=q_thr,
                                    linear_overrides=overrides, tir_kernels=tir_kernels)
    project.syntax_check(out_dir / "project")
    elf = project.build_functional(out_dir / "project", checks=checks)
    run = functional.run(elf, timeout_s=timeout_s or 120 + 10.0 * n_inputs)
    (out_dir / "functional.log").write_text(run.output)
    log = project.parse_log(run.output)
    cmp = project.compare_with_golden(art, inputs, log, q_thr)
    steps_h = Golden(art).infer(inputs, q_thr=q_thr).steps
    phase_names = ("prologue", "net", "heads")
    result = {
        "schema": "trm-tvm-gap9-deploy", "version": 1, "board": "gap9",
        "artifact": {"path": str(art_path) if art_path else None, "precision": art.header["precision"],
                     "source": art.header["provenance"].get("source")},
        "inputs": {"count": n_inputs, "kind": "random (trm_tvm.quant.fixtures.golden_inputs)", "seed": seed},
        "q_threshold": q_thr,
        "schedule": schedule if schedule != "tuned" else
        f"tuned ({database.board_dir('gap9', db_root)}: best bit-exact record per layer shape)",
        "linear_compute": plan["linear_compute"],
        "functional": {
            "what": "same C on qemu-system-riscv32 -M virt -smp 9 (FC + 8 cluster harts), our PMSIS compat layer",
            "compat_checks": checks,
            "exit_code": run.exit_code, "compat_error": run.compat_error, "end": log["end"],
            "golden": {**cmp, "bit_exact": run.exit_code == 0 and cmp["mismatches"] == 0 and cmp["runs"] == 2 * n_inputs},
            "phases": {phase_names[p]: {"cluster_tasks": v["tasks"],
                                        "counter": figure(v["cycles"], "mcycle", "emulated",
                                                          "QEMU virt hart 0 mcycle without -icount: host-clock ticks of the emulator, "
                                                          "neither instructions nor GAP9 cycles")}
                       for p, v in log["phases"].items()},
        },
        "memory": {
            "l1_peak": figure(plan["l1_peak"], "B", "measured", "plan.json: exact L1 allocation of the generated kernels"),
            "l1_budget": plan["l1_budget"],
            "l2": figure(plan["l2_total"], "B", "measured", "generated constants + activations + states + io"),
            "l2_budget": plan["l2_budget"], "l2_parts": plan["l2_bytes"],
        },
        "modeled": _modeled(art, plan, board, float(np.mean(steps_h))),
        "published": _published(board),
        "run": run_info(),
    }
    write_json(out_dir / "gap9_deploy.json", result)
    return result


def summary_lines(r: dict) -> list[str]:
    from trm_tvm.provenance import fmt

    f, m = r["functional"], r["modeled"]
    g = f["golden"]
    lines = [f"functional (9 QEMU harts): {g['runs']} runs on {g['inputs']} inputs, {g['mismatches']} mismatches vs "
             f"golden -> {'0 LSB' if g['bit_exact'] else 'NOT bit-exact'}",
             f"L1 peak {fmt(r['memory']['l1_peak'])} of {r['memory']['l1_budget']} B budget; "
             f"L2 {fmt(r['memory']['l2'])} of {r['memory']['l2_budget']} B"]
    cal = m["calibration"]
    lines.append(f"cycle model: PULP-NN check {cal['modeled_macs_per_cycle']} vs {cal['pulpnn_published_macs_per_cycle']}"
                 f" MAC/cycle ({cal['relative_error']:+.1%}){'' if cal['calibrated'] else ' UNCALIBRATED'}")
    for name, figs in m["per_phase"].items():
        lines.append(f"  {name:9s} {fmt(figs['cycles'])}  {fmt(figs['latency_ms'])}  {fmt(figs['energy_uj'])}")
    fc = m["fixed_compute"]
    lines.append(f"per inference, fixed {fc['steps']} steps: {fmt(fc['latency_ms'])}, {fmt(fc['energy_uj'])}, "
                 f"{fc['macs_per_cycle']} MAC/cycle (modeled)")
    h = m["halting"]
    lines.append(f"per inference, halting (mean {h['mean_steps']:.2f} steps): {fmt(h['latency_ms'])}, {fmt(h['energy_uj'])}")
    kws = r["published"]["mlperf_tiny_v1"]["keyword_spotting"]
    lines.append(f"published GAP9 MLPerf Tiny v1.0 keyword spotting: {kws['latency_ms']} ms, {kws['energy_uj']} uJ")
    return lines



def deploy_cli(a) -> int:
    """`python -m trm_tvm.deploy --board gap9 ...` (its parsed arguments): this module's deploy, the JSON to --json."""
    from trm_tvm.errors import UserError
    from trm_tvm.jsonio import REPO_ROOT

    if a.data:
        raise UserError("--data is not supported for gap9 yet", "drop it: gap9 deploys with random inputs (--seed)")
    stem = Path(a.artifact).stem
    work = Path(a.work or REPO_ROOT / "build" / "deploy" / f"gap9-{a.schedule}-{stem}")
    r = deploy(Path(a.artifact), work, a.limit or 20, a.seed, a.q_threshold, schedule=a.schedule,
               tir_kernels=a.kernels == "tvm")   # tvm: per-core compute from the TIR strategy; else hand-written
    write_json(a.json, r)
    for line in summary_lines(r):
        print(line)
    print(f"-> {a.json}")
    return 0 if r["functional"]["golden"]["bit_exact"] else 1
