"""python -m trm_tvm.halting: learned halting on the device versus fixed compute (docs/halting.md).

    python -m trm_tvm.halting --board cortex-m4 --artifact a.npz [--checkpoint ckpt | --data d.npz]
                              [--limit N | --sample N] [--kernels tvm|reference|handwritten] --out reports/halting/<name>
    python -m trm_tvm.halting --compare reports/halting/a reports/halting/b --out reports/halting/compare

The device runs every test input once with ALL N_sup supervision steps (fixed full compute, RUN flag LOG_STEPS):
after each step the firmware keeps that step's logits, q and cumulative per-phase counter ticks (READ_STEPS), and
the QEMU timing plugin (trm_tvm.measure) gives modeled cycles for every phase execution. Each step is checked
bit-exact against the golden model. Every policy is then replayed from these records on the host -- no rerun per
threshold -- because a policy only chooses the step at which to stop, and what the device computed up to that step
does not depend on the threshold:
  fixed k       stop after k steps (k = 1..N_sup);
  learned tau   stop at the first step with q >= q_thr(tau) (the device's rule, docs/integer-spec.md), else N_sup;
  confidence m  stop at the first step whose int16 logits' top-1 margin >= m (no trained head needed), else N_sup.
With --checkpoint the float reference (trm_tvm.quant.float_ref) runs the same policies on the same test inputs
(FP: steps from float q / logits; its cycles are this build's per-step cycles, labelled so).
Outputs in --out: records.json (the device runs; resumable), halting.json + points.csv (every policy point),
summary.md (Pareto table), plots (accuracy vs mean cycles, halting-step histogram, latency CDF).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trm_tvm import markdown
from trm_tvm.errors import UserError, atomic_write_text, cli_main
from trm_tvm.evaluate import wilson
from trm_tvm.jsonio import REPO_ROOT, read_json, run_info, write_json
from trm_tvm.provenance import figure, fmt
from trm_tvm.plots import save_figure

INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
TAUS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
MARGIN_QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
SCHEMA = "trm-tvm-halting"


# ------------------------------------------------------------------------------------------------ device runs
def run_full_compute(session, x: np.ndarray, n_sup: int, output_len: int) -> dict:
    """One input, all N_sup steps, every step logged by the firmware."""
    c = session.client
    c.load_input(np.ascontiguousarray(x).tobytes())
    r = c.run(INT32_MAX, n_sup, log_steps=True)
    final = c.read_output(output_len)
    steps = c.read_steps(output_len)
    return {"run": r, "final": final, "steps": steps}


def check_steps(dev: dict, gold_logits: np.ndarray, gold_q: np.ndarray) -> list[str]:
    """Mismatches of every step's logits and q (and the final result) against the golden model's."""
    bad = []
    if len(dev["steps"]) != len(gold_q):
        return [f"device logged {len(dev['steps'])} steps, golden ran {len(gold_q)}"]
    for k, (st, gl, gq) in enumerate(zip(dev["steps"], gold_logits, gold_q), 1):
        if not np.array_equal(st["logits"], gl.ravel()):
            bad.append(f"step {k}: logits differ at {int(np.sum(st['logits'] != gl.ravel()))} positions")
        if st["q"] != int(gq):
            bad.append(f"step {k}: q {st['q']} vs golden {int(gq)}")
    if not np.array_equal(dev["final"], gold_logits[-1].ravel()):
        bad.append("final logits differ from the last step's")
    return bad


def phase_cycles(snapshots, board, calls_per_step: int, halt_fns: dict[str, float]) -> list[dict]:
    """Per inference, modeled cycles and emulated instructions of the prologue and of each step (net calls, heads,
    and the halting head's share of the heads) from the timing plugin's phase intervals."""
    from trm_tvm.measure import timing

    out = []
    per = calls_per_step + 1
    for _, spans in timing.inference_spans(snapshots, calls_per_step):
        cyc = lambda counts: float(timing.cycles(timing.total(counts), board)["value"])
        ins = lambda counts: int(timing.total(counts)["insns"])
        steps = []
        for s in range((len(spans) - 1) // per):
            nets, heads = spans[1 + s * per: (s + 1) * per], spans[(s + 1) * per]
            halt = sum(share * float(timing.cycles(heads[fn], board)["value"])
                       for fn, share in halt_fns.items() if fn in heads)
            steps.append({"net": sum(cyc(n) for n in nets), "heads": cyc(heads), "halt": halt,
                          "instructions": sum(ins(n) for n in nets) + ins(heads)})
        out.append({"prologue": cyc(spans[0]), "prologue_instructions": ins(spans[0]), "steps": steps})
    return out


def halt_functions(calls: dict) -> dict[str, float]:
    """{C function: share of its heads-section cycles that belong to the halting head} from calls.json (a function
    shared with the output head is apportioned by MACs)."""
    heads = [c for c in calls["calls"] if c["section"] == "heads"]
    out = {}
    for c in heads:
        if c["op"] == "halt":
            same = [h for h in heads if h["function"] == c["function"]]
            macs = sum(h["macs"] for h in same)
            out[c["function"]] = c["macs"] / macs if macs else 1.0 / len(same)
    return out


def record_device_runs(project, artifact_path: Path, inputs: np.ndarray, labels: np.ndarray | None,
                       indices: np.ndarray, records_path: Path, timing_model: int, chunk: int = 100,
                       log: Callable[[str], None] = lambda m: None) -> dict:
    """Run (or resume) the full-compute logged runs; records.json is rewritten after every chunk of inputs.
    The first `timing_model` inputs run under the QEMU timing plugin (modeled cycles per phase window)."""
    from trm_tvm.quant.artifact import Artifact
    from trm_tvm.quant.golden import Golden
    from trm_tvm.session import Session, counter_figures

    m, board = project.manifest, project.board
    n_sup, cps = int(m["schedule_info"]["N_sup"]), int(m["schedule_info"]["calls_per_step"])
    out_len = int(m["io"]["output_len"])
    header = {"schema": SCHEMA + "-records", "version": 1, "board": board.name, "build_id": project.build_id,
              "artifact": m.get("artifact"), "kernels": m.get("kernels"), "n_sup": n_sup,
              "calls_per_step": cps, "indices": [int(i) for i in indices], "timing_model": timing_model}
    rec = read_json(records_path, "halting records") if records_path.is_file() else None
    if not rec or {k: rec.get(k) for k in header} != header:
        rec = {**header, "records": [], "provenance": run_info()}
    golden = Golden(Artifact.load(artifact_path))
    calls = read_json(project.dir / "build_dir" / "calls.json", "calls.json")
    ipt = board.emulator.instructions_per_tick if board.counter == "systick-icount" else None
    while len(rec["records"]) < len(inputs):
        lo = len(rec["records"])
        modeled = lo < timing_model
        idx = range(lo, min(lo + (min(chunk, timing_model - lo) if modeled else chunk), len(inputs)))
        g = golden.infer(inputs[idx.start:idx.stop], INT32_MAX, n_sup, all_steps=True)
        plugin = _plugin(project) if modeled else None
        new = []
        with Session(project, qemu_args=tuple(plugin.qemu_args) if plugin else ()) as s:
            for j, i in enumerate(idx):
                dev = run_full_compute(s, inputs[i], n_sup, out_len)
                bad = check_steps(dev, g.step_logits[j], g.q[j])
                cum = np.array([st["phase_ticks"] for st in dev["steps"]], np.int64)   # (steps, phases)
                ticks = np.diff(np.vstack([np.zeros(cum.shape[1], np.int64), cum]), axis=0)
                phases = m["phases"]
                new.append({
                    "index": int(indices[i]), "label": None if labels is None else int(np.asarray(labels[i]).ravel()[0]),
                    "bit_exact": not bad, "mismatch": bad,
                    "q": [st["q"] for st in dev["steps"]],
                    "logits": [st["logits"].tolist() for st in dev["steps"]],
                    "ticks": {"prologue": int(ticks[0][phases.index("prologue")]),
                              "steps": [int(t[phases.index("net")] + t[phases.index("heads")]) for t in ticks]},
                    "run_ticks": int(dev["run"]["ticks"])})
                log(f"{i}: {len(dev['steps'])} steps logged, q {new[-1]['q']}, "
                    f"{'bit-exact' if not bad else 'MISMATCH ' + bad[0]}")
        if plugin:
            cycles = phase_cycles(plugin.snapshots(), board, cps, halt_functions(calls))
            if len(cycles) != len(new):
                raise UserError(f"the timing plugin saw {len(cycles)} runs, the session made {len(new)}", "rerun")
            for r, c in zip(new, cycles):
                r["cycles"] = c
        rec["records"] += new
        rec["counter"] = {"kind": board.counter, "instructions_per_tick": ipt,
                          "tick": counter_figures(board, 1)}
        write_json(records_path, rec)
    return rec


def gap9_records(art, inputs: np.ndarray, labels: np.ndarray | None, indices: np.ndarray, work: Path) -> dict:
    """GAP9 (modeled): every step's outputs from the golden model (the GAP9 functional build matches it with
    0 LSB, docs/gap9.md) and per-phase cycles from trm_tvm.gap9.cycles for the generated project's tiling (the
    model's cycles do not depend on the data)."""
    from trm_tvm.gap9 import cycles as g9, project as g9proj
    from trm_tvm.gap9.board import load_gap9
    from trm_tvm.quant.golden import Golden

    board = load_gap9()
    plan = g9proj.generate_project(art, work / "gap9-project", inputs[:1], board=board)
    plans = g9proj.plans_from_json(plan)
    mc = g9.model_cycles(art, plans, board)
    shapes = {k: tuple(v["shape"]) for k, v in art.header["activations"].items()}
    halt = sum(g9.node_cycles(n, shapes, plans, board).total for n in art.graph["heads"] if n["name"] == "halt")
    step = {"net": mc.net_calls_per_step * mc.phases["net"], "heads": mc.phases["heads"], "halt": halt}
    g = Golden(art).infer(inputs, INT32_MAX, all_steps=True)
    S = g.q.shape[1]
    recs = [{"index": int(indices[i]), "label": None if labels is None else int(np.asarray(labels[i]).ravel()[0]),
             "bit_exact": None, "mismatch": [], "q": g.q[i].tolist(),
             "logits": g.step_logits[i].reshape(S, -1).tolist(),
             "cycles": {"prologue": mc.phases["prologue"], "steps": [dict(step) for _ in range(S)]}}
            for i in range(len(inputs))]
    fig = g9.figures(1, board)
    return {"board": "gap9", "n_sup": S, "records": recs, "counter": {"instructions_per_tick": None},
            "cost_model": {"source": fig["cycles"]["source"] + "; per phase, data-independent",
                           "clock_hz": board.clock_hz, "energy_per_cycle_j": board.pj_per_cycle * 1e-12,
                           "energy_source": fig["energy_uj"]["source"],
                           "outputs": "per-step outputs from the golden model (no GAP9 device here; the functional "
                                      "build is bit-exact with it, docs/gap9.md)"},
            "provenance": run_info()}


def _plugin(project):
    from trm_tvm import project as proj
    from trm_tvm.measure import timing

    proj.build(project)
    return timing.prepare_plugin(project.elf, project.board, project.dir / "build" / "timing",
                                 marks=timing.SESSION_MARKS)


# ------------------------------------------------------------------------------------------------ policies
def margins(logits: np.ndarray, classes: int) -> np.ndarray:
    """Top-1 minus top-2 of int16 logits per step, (N, S); per-token outputs take the smallest token margin."""
    lg = logits.reshape(*logits.shape[:2], -1, classes).astype(np.int64)
    top = np.sort(lg, axis=-1)
    return (top[..., -1] - top[..., -2]).min(axis=-1)


def first_true(stop: np.ndarray) -> np.ndarray:
    """0-based index of the first True per row, the last step when none (the N_sup bound)."""
    stop = stop.copy()
    stop[:, -1] = True
    return np.argmax(stop, axis=1)


def learned_stop(q: np.ndarray, q_thr: int) -> np.ndarray:
    return first_true(q >= q_thr)


def policy_stops(q: np.ndarray, margin: np.ndarray, q_scale: float | None, taus=TAUS,
                 float_q: bool = False) -> list[tuple[str, str, float, np.ndarray]]:
    """[(policy, parameter label, parameter, stop index per input)] for fixed, learned and confidence policies.
    Integer q (device) uses q_thr(tau) of the spec; float q (FP reference) uses sigmoid(q) >= tau."""
    from trm_tvm.quant.spec import q_threshold

    n, S = q.shape
    out = [("fixed", "k", k, np.full(n, k - 1)) for k in range(1, S + 1)]
    for tau in taus:
        if float_q:
            stop = np.zeros(n, np.int64) if tau == 0 else first_true(1 / (1 + np.exp(-q)) >= tau) if tau < 1 \
                else np.full(n, S - 1)
        else:
            stop = learned_stop(q, q_threshold(tau, q_scale))
        out.append(("learned", "tau", tau, stop))
    levels = np.quantile(margin, MARGIN_QUANTILES)
    levels = np.ceil(levels) if np.issubdtype(margin.dtype, np.integer) else np.array([float(f"{v:.3g}") for v in levels])
    for m in [0.0, *sorted(set(levels.tolist()) - {0.0}), float(margin.max()) + 1]:    # the last never stops early
        out.append(("confidence", "margin", m, first_true(margin >= m)))
    return out


def replay(rec: dict, q_thr: int, max_steps: int | None = None) -> dict:
    """What RUN(q_thr, max_steps) returns for every recorded input, from the full-compute records alone:
    steps, q and logits of the stopping step, and the device counter ticks of the phase windows up to it."""
    rs = rec["records"]
    q = np.array([r["q"] for r in rs], np.int64)[:, :max_steps or None]
    stop = learned_stop(q, q_thr)
    rows = np.arange(len(rs))
    ticks = np.array([[r["ticks"]["prologue"], *r["ticks"]["steps"]] for r in rs], np.int64).cumsum(axis=1)
    return {"steps": stop + 1, "q": q[rows, stop], "logits": [rs[i]["logits"][k] for i, k in zip(rows, stop)],
            "ticks": ticks[rows, stop + 1]}


def _pct(v: np.ndarray, p: float) -> float:
    return float(np.percentile(v, p)) if len(v) else float("nan")


def evaluate_points(pred: np.ndarray, labels: np.ndarray | None, cost: np.ndarray, halt_cost: np.ndarray,
                    stops) -> list[dict]:
    """Accuracy (Wilson 95 %) or agreement with full compute, and the cost of each policy point.
    pred (N, S) per step; cost (N, S) cumulative cost to stop after step k; halt_cost (N, S) cumulative halting-head
    cost."""
    n, S = pred.shape
    rows = np.arange(n)
    ref = labels if labels is not None else pred[:, -1]
    pts = []
    for policy, pname, param, stop in stops:
        ok = pred[rows, stop] == ref
        lo, hi = wilson(int(ok.sum()), n)
        c = cost[rows, stop]
        pts.append({"policy": policy, "parameter": pname, "value": param, "n": n,
                    "metric": "accuracy" if labels is not None else "agreement_with_full",
                    "accuracy": float(ok.mean()), "ci95": [lo, hi],
                    "steps_mean": float(stop.mean() + 1), "steps_hist": np.bincount(stop, minlength=S).tolist(),
                    "cost_mean": float(c.mean()), "cost_p99": _pct(c, 99), "cost_max": float(c.max()),
                    "halt_share": float(halt_cost[rows, stop].sum() / c.sum()) if c.sum() else 0.0,
                    "stop": stop})
    return pts


def pareto(points: list[dict]) -> list[dict]:
    """Points not dominated in (lower mean cost, higher accuracy)."""
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (p["cost_mean"], -p["accuracy"])):
        if p["accuracy"] > best:
            front.append(p)
            best = p["accuracy"]
    return front


def operating_point(points: list[dict], full: dict, policy: str, tolerance: float = 0.01) -> dict | None:
    """The cheapest point of `policy` whose accuracy is within `tolerance` of fixed full compute."""
    ok = [p for p in points if p["policy"] == policy and p["accuracy"] >= full["accuracy"] - tolerance]
    return min(ok, key=lambda p: (p["cost_mean"], -p["accuracy"])) if ok else None


# ------------------------------------------------------------------------------------------------ the study
def cost_arrays(rec: dict, board) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cumulative cost to stop after step k (N, S), the halting head's part, and the cost's figure metadata.

    Modeled cycles from the timing plugin for the inputs that ran under it; the others' emulated instructions (device
    SysTick) times the plugin's cycles per instruction of the same phase kind over those inputs (the CPI of a phase
    varies by ~1e-4 between inputs: the kernels' instruction mix does not depend on the data). Without any plugin
    run: emulated instructions."""
    rs = rec["records"]
    cyc_step = lambda r: [s["net"] + s["heads"] for s in r["cycles"]["steps"]]
    if "cost_model" in rec:                     # a cycle model without a device (gap9)
        step = np.array([cyc_step(r) for r in rs], float)
        halt = np.array([[s["halt"] for s in r["cycles"]["steps"]] for r in rs], float)
        pro = np.array([r["cycles"]["prologue"] for r in rs], float)
        unit = {"unit": "cycles", "provenance": "modeled", "source": rec["cost_model"]["source"]}
        return pro[:, None] + np.cumsum(step, axis=1), np.cumsum(halt, axis=1), unit
    ipt = rec["counter"]["instructions_per_tick"] or 1
    ins_pro = np.array([r["ticks"]["prologue"] for r in rs], float) * ipt
    ins_step = np.array([r["ticks"]["steps"] for r in rs], float) * ipt
    have = [r for r in rs if "cycles" in r]
    if not have:
        tick = rec["counter"]["tick"]
        key = "instructions" if "instructions" in tick else "cycles"
        unit = {"unit": key, "provenance": tick[key]["provenance"],
                "source": f"{tick[key]['source']}; sum of the phase windows"}
        return ins_pro[:, None] + np.cumsum(ins_step, axis=1), np.zeros_like(ins_step), unit
    from trm_tvm.measure import timing
    cpi_pro = sum(r["cycles"]["prologue"] for r in have) / sum(r["cycles"]["prologue_instructions"] for r in have)
    cpi_step = sum(sum(cyc_step(r)) for r in have) / sum(s["instructions"] for r in have for s in r["cycles"]["steps"])
    halt_frac = sum(s["halt"] for r in have for s in r["cycles"]["steps"]) / sum(sum(cyc_step(r)) for r in have)
    pro = np.array([r["cycles"]["prologue"] if "cycles" in r else ins_pro[i] * cpi_pro for i, r in enumerate(rs)])
    step = np.array([cyc_step(r) if "cycles" in r else ins_step[i] * cpi_step for i, r in enumerate(rs)])
    halt = np.array([[s["halt"] for s in r["cycles"]["steps"]] if "cycles" in r else ins_step[i] * cpi_step * halt_frac
                     for i, r in enumerate(rs)])
    src = timing.cycles(dict.fromkeys(timing.CLASSES, 0), board)["source"]
    how = ("timing plugin on every input" if len(have) == len(rs) else
           f"timing plugin on {len(have)} of {len(rs)} inputs; the others: emulated instructions (SysTick) x the "
           f"plugin's cycles per instruction (prologue {cpi_pro:.4f}, steps {cpi_step:.4f})")
    unit = {"unit": "cycles", "provenance": "modeled", "source": f"{src}; {how}; sum of the phase windows",
            "plugin_inputs": len(have)}
    return pro[:, None] + np.cumsum(step, axis=1), np.cumsum(halt, axis=1), unit


def study(rec: dict, art, board, fp: dict | None = None, taus=TAUS) -> dict:
    """Every policy point (device quantised, and FP when given) with figures and their provenance."""
    from trm_tvm.measure import energy
    from trm_tvm.quant.spec import q_threshold

    rs = rec["records"]
    classes = int(art.header["io"]["classes"])
    q = np.array([r["q"] for r in rs], np.int64)
    logits = np.array([r["logits"] for r in rs], np.int64)
    pred = logits.reshape(len(rs), q.shape[1], -1, classes).argmax(-1)[..., 0] if not art.dims.per_token else None
    if pred is None:
        raise UserError("per-token (Sudoku) halting studies are not supported yet", "use a classification artifact")
    labels = np.array([r["label"] for r in rs]) if rs and rs[0]["label"] is not None else None
    cost, halt, unit = cost_arrays(rec, board)
    q_scale = float(art.header["halting"]["q_scale"])
    taus = sorted({*taus, float(art.header["halting"]["threshold"])})
    variants = {art.header["precision"]: policy_stops(q, margins(logits, classes), q_scale, taus)}
    preds = {art.header["precision"]: pred}
    if fp is not None:
        variants["fp"] = policy_stops(fp["q"], fp["margin"], None, taus, float_q=True)
        preds["fp"] = fp["pred"]
    if "cost_model" in rec:
        cm = rec["cost_model"]
        clock, epc = cm["clock_hz"], figure(cm["energy_per_cycle_j"], "J", "modeled", cm["energy_source"])
    else:
        clock = board.part.clock_hz
        epc = energy.energy_modeled(1.0, board) if unit["unit"] == "cycles" else None
    out: dict[str, Any] = {"cost": unit, "variants": {}}
    for name, stops in variants.items():
        pts = evaluate_points(preds[name], labels, cost, halt, stops)
        full = next(p for p in pts if p["policy"] == "fixed" and p["value"] == q.shape[1])
        ops = {pol: operating_point(pts, full, pol) for pol in ("fixed", "learned", "confidence")}
        # the head's own contribution: tau = 0 is "stop after step 1" (fixed k=1), so also without the end points
        ops["learned_0<tau<1"] = operating_point([p for p in pts if 0 < p["value"] < 1], full, "learned")
        for p in pts:
            if p["policy"] == "learned" and name != "fp":
                p["q_thr"] = q_threshold(p["value"], q_scale)
            if unit["unit"] == "cycles":
                p["latency_mean_s"], p["latency_p99_s"], p["latency_max_s"] = (
                    p["cost_mean"] / clock, p["cost_p99"] / clock, p["cost_max"] / clock)
                p["energy_mean_j"] = p["cost_mean"] * epc["value"]
        out["variants"][name] = {
            "points": pts, "pareto": {pol: [pts.index(p) for p in pareto([p for p in pts if p["policy"] == pol])]
                                      for pol in ("fixed", "learned", "confidence")},
            "full_compute": pts.index(full),
            "operating_points": {pol: {"point": pts.index(op), "saving_vs_full": 1 - op["cost_mean"] / full["cost_mean"]}
                                 if op else None for pol, op in ops.items()},
            "cost_note": "device cost of the same steps on this build" if name == "fp" else
                         "golden-model outputs, modeled cycles" if "cost_model" in rec else "device"}
    worst = float(cost[:, -1].max())
    out["worst_case_bound"] = figure(worst, unit["unit"], unit["provenance"],
                                     f"N_sup = {q.shape[1]} steps, slowest input; halting never exceeds it")
    out["energy_source"] = epc["source"] if epc else None
    out["labels"] = labels is not None
    out["bit_exact"] = {"inputs": len(rs), "all_steps_bit_exact": sum(bool(r["bit_exact"]) for r in rs)}
    if "cost_model" in rec:
        out["bit_exact"]["note"] = rec["cost_model"]["outputs"]
    return out


def float_view(checkpoint: str, x_float: np.ndarray, classes: int) -> dict:
    """FP reference on the same inputs: per-step float q, predictions and logit margins."""
    from trm_tvm.quantize import _checkpoint
    from trm_tvm.quant import float_ref

    params, dims, _, _ = _checkpoint(checkpoint)
    lg, qs = [], []
    for i in range(0, len(x_float), 256):
        r = float_ref.forward(params, dims, np.asarray(x_float[i:i + 256], np.float64))
        lg.append(r.logits)
        qs.append(r.q)
    logits = np.concatenate(lg)
    top = np.sort(logits, axis=-1)
    return {"q": np.concatenate(qs).reshape(len(logits), -1), "pred": logits.argmax(-1),
            "margin": top[..., -1] - top[..., -2]}


# ------------------------------------------------------------------------------------------------ outputs
def _label(p: dict) -> str:
    return f"{p['policy']} {p['parameter']}={p['value']:g}"


def write_csv(res: dict, path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["variant", "policy", "parameter", "value", "metric", "accuracy", "ci95_lo", "ci95_hi", "steps_mean",
            "cost_mean", "cost_p99", "cost_max", "cost_unit", "cost_provenance", "latency_mean_s", "latency_p99_s",
            "latency_max_s", "energy_mean_j", "halt_share", "pareto"]
    w.writerow(cols)
    for name, v in res["variants"].items():
        front = {i for ids in v["pareto"].values() for i in ids}
        for i, p in enumerate(v["points"]):
            w.writerow([name, p["policy"], p["parameter"], p["value"], p["metric"], p["accuracy"], *p["ci95"],
                        p["steps_mean"], p["cost_mean"], p["cost_p99"], p["cost_max"], res["cost"]["unit"],
                        res["cost"]["provenance"], p.get("latency_mean_s", ""), p.get("latency_p99_s", ""),
                        p.get("latency_max_s", ""), p.get("energy_mean_j", ""), p["halt_share"], int(i in front)])
    atomic_write_text(path, buf.getvalue())


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{1e3 * v:.4g}"


def _uj(v: float | None) -> str:
    return "-" if v is None else f"{1e6 * v:.4g}"


def summary_md(res: dict, meta: dict) -> str:
    u = res["cost"]
    lines = [f"# Halting study: {meta['artifact']} on {meta['board']} ({meta['kernels']} kernels)", "",
             f"{meta['inputs']} inputs ({meta['data']}); " + (res["bit_exact"]["note"] + "." if "note" in res["bit_exact"]
             else "every step of every input ran on the device and was checked against the golden model: "
             f"{res['bit_exact']['all_steps_bit_exact']}/{res['bit_exact']['inputs']} inputs bit-exact at every step."),
             f"Cost: {u['unit']} ({u['provenance']}: {u['source']}). Latency: modeled, cost / board clock. "
             f"Energy: modeled ({res['energy_source']}). Accuracy: counted on the inputs (golden-exact device outputs).",
             f"Worst-case bound that halting guarantees (N_sup): {fmt(res['worst_case_bound'])}.", ""]
    for name, v in res["variants"].items():
        pts = v["points"]
        full = pts[v["full_compute"]]
        metric = "accuracy" if res["labels"] else "agreement with full compute"
        header = ["policy (Pareto points)", f"{metric} [95 % CI]", "mean steps", f"mean {u['unit']}", "p99", "max",
                  "halt head share", "mean latency ms", "mean energy uJ"]
        rows = [[_label(p), f"{100 * p['accuracy']:.2f} % [{100 * p['ci95'][0]:.1f}, {100 * p['ci95'][1]:.1f}]",
                 f"{p['steps_mean']:.2f}", f"{p['cost_mean']:.4g}", f"{p['cost_p99']:.4g}", f"{p['cost_max']:.4g}",
                 f"{100 * p['halt_share']:.2g} %", _ms(p.get("latency_mean_s")), _uj(p.get("energy_mean_j"))]
                for pol in ("fixed", "learned", "confidence") for p in (pts[i] for i in v["pareto"][pol])]
        lines += [f"## {name} ({v['cost_note']})", "", markdown.table(header, rows)]
        lines += ["", f"Full compute: {100 * full['accuracy']:.2f} % at {full['cost_mean']:.4g} {u['unit']} "
                      f"({u['provenance']}). Cheapest point within 1 point of it, per policy:"]
        for pol, o in v["operating_points"].items():
            if o is None:
                lines.append(f"- {pol}: none")
                continue
            op = pts[o["point"]]
            lines.append(f"- {pol}: {_label(op)}, {100 * op['accuracy']:.2f} %, {op['cost_mean']:.4g} {u['unit']} "
                         f"= {100 * (1 - o['saving_vs_full']):.1f} % of full compute (saving "
                         f"{100 * o['saving_vs_full']:.1f} %), mean {op['steps_mean']:.2f} steps")
        lines.append("")
    return "\n".join(lines)


def plots(res: dict, out: Path, cost_full: np.ndarray) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    u = res["cost"]
    tag = f"{u['unit']} ({u['provenance']})"
    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, v in res["variants"].items():
        for pol, mk in (("fixed", "s"), ("learned", "o"), ("confidence", "^")):
            pts = [v["points"][i] for i in v["pareto"][pol]]
            line, = ax.plot([p["cost_mean"] for p in pts], [100 * p["accuracy"] for p in pts], mk + "-",
                            label=f"{name} {pol} (front)")
            rest = [p for p in v["points"] if p["policy"] == pol]          # every point, faint
            ax.plot([p["cost_mean"] for p in rest], [100 * p["accuracy"] for p in rest], mk, alpha=0.25,
                    color=line.get_color())
    ax.set_xlabel(f"mean {tag}")
    ax.set_ylabel("accuracy %" if res["labels"] else "agreement with full compute %")
    ax.set_title(f"Pareto fronts per policy; {'accuracy on the labelled' if res['labels'] else 'agreement on'} "
                 f"inputs, {u['provenance']} {u['unit']}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, out / "pareto.png")
    files.append("pareto.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, v in res["variants"].items():
        learned = [p for p in v["points"] if p["policy"] == "learned"]
        p = min(learned, key=lambda p: abs(p["value"] - 0.5))
        ax.bar(np.arange(1, len(p["steps_hist"]) + 1) + (0.2 if name == "fp" else -0.2), p["steps_hist"], 0.4,
               label=f"{name} learned tau={p['value']:g}")
    ax.set_xlabel("halting step")
    ax.set_ylabel("inputs")
    ax.legend(fontsize=7)
    save_figure(fig, out / "halting_steps.png")
    files.append("halting_steps.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, v in res["variants"].items():
        if name == "fp":
            continue
        ops, pts = v["operating_points"], v["points"]
        own = next(i for i, p in enumerate(pts) if p["policy"] == "learned" and p["value"] == res["meta"]["tau"])
        curves = {v["full_compute"]: "fixed full", own: "learned at the artifact's tau"}
        for pol, o in ops.items():
            if o and pol != "fixed":
                curves.setdefault(o["point"], f"{pol} op. point")
        for idx, lab in curves.items():
            c = np.sort(cost_full[np.arange(len(cost_full)), v["points"][idx]["stop"]])
            ax.plot(c, np.arange(1, len(c) + 1) / len(c), drawstyle="steps-post",
                    label=f"{name} {lab} ({_label(v['points'][idx])})")
    ax.set_xlabel(tag)
    ax.set_ylabel("fraction of inputs")
    ax.set_title("Latency CDF", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, out / "latency_cdf.png")
    files.append("latency_cdf.png")
    return files


# ------------------------------------------------------------------------------------------------ user's view
def operating_point_text(halting_json: str | Path) -> str:
    """One line for deploy/demo: the learned-halting threshold to pass to RUN (no rebuild) and what it saves
    against fixed full compute, from a halting study's halting.json."""
    res = read_json(halting_json, "halting study")
    v = res["variants"][res["meta"]["precision"]]
    full, u = v["points"][v["full_compute"]], res["cost"]
    o = v["operating_points"]["learned"]
    if o is None:
        return (f"halting: no learned threshold keeps accuracy within 1 point of full compute "
                f"({100 * full['accuracy']:.1f} %): run fixed compute (RUN q_threshold = INT32_MAX)")
    op = v["points"][o["point"]]
    return (f"halting: tau = {op['value']:g} (RUN q_threshold = {op['q_thr']}, no rebuild): "
            f"{100 * op['accuracy']:.1f} % vs {100 * full['accuracy']:.1f} % at full compute, "
            f"{op['steps_mean']:.2f} of {len(op['steps_hist'])} steps on average, "
            f"{op['cost_mean']:.4g} vs {full['cost_mean']:.4g} {u['unit']} ({u['provenance']}): saves "
            f"{100 * o['saving_vs_full']:.1f} %; worst case stays {fmt(res['worst_case_bound'])}")


def operating_threshold(halting_json: str | Path) -> int:
    """The int q_threshold of the learned operating point (INT32_MAX, fixed full compute, when none keeps accuracy)."""
    res = read_json(halting_json, "halting study")
    v = res["variants"][res["meta"]["precision"]]
    o = v["operating_points"]["learned"]
    return int(v["points"][o["point"]]["q_thr"]) if o else INT32_MAX


# ------------------------------------------------------------------------------------------------ CLI
def load_study_inputs(art, checkpoint: str | None, data: str | None, limit: int | None, sample: int | None,
                      seed: int):
    """(device inputs, labels or None, float inputs or None, test-set indices, description)."""
    from trm_tvm.quant.evaluation import device_inputs

    xf = y = None
    if checkpoint:
        from trm_tvm.quantize import _checkpoint
        from trm_tvm.tasks import load_task
        _, dims, cfg, _ = _checkpoint(checkpoint)
        if dims != art.dims:
            raise UserError(f"checkpoint {checkpoint} does not have the artifact's shape",
                            "pass the checkpoint the artifact was quantised from")
        # Only the test split: generating the ECG training series costs minutes on a fresh clone.
        d = load_task(cfg.task, train=False)
        xf, y, desc = d.x_test, d.y_test, f"{cfg.task.name} test split"
    elif data:
        p = Path(data)
        if not p.is_file():
            raise UserError(f"data file {p} does not exist", "pass an .npz with `inputs` [and `labels`]")
        with np.load(p) as z:
            x, y = z["inputs"], (z["labels"] if "labels" in z.files else None)
        xf, desc = (x, str(p)) if np.issubdtype(x.dtype, np.floating) else (None, str(p))
    else:
        from trm_tvm.quant.fixtures import golden_inputs
        _, x = golden_inputs(art, limit or sample or 16, seed)
        desc = f"random inputs (seed {seed}); accuracy = agreement with full compute"
    n = len(xf if xf is not None else x)
    if sample and sample < n:
        idx = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
        desc += f", seeded random subset of {sample} of {n} (seed {seed})"
    else:
        idx = np.arange(min(n, limit or n))
        desc += f", first {len(idx)} of {n}" if len(idx) < n else f", all {n}"
    if xf is not None:
        xf = xf[idx]
        x = device_inputs(art, xf)
    else:
        x = x[idx]
    return x, (y[idx] if y is not None else None), xf, idx, desc


def run_study(artifact: str | Path, board: str, out: str | Path, *, kernels: str = "tvm",
              schedule: str = "default", checkpoint: str | None = None, data: str | None = None,
              limit: int | None = None, sample: int | None = None, seed: int = 0, timing_model: int = 100,
              work: str | Path | None = None,
              taus=TAUS, log: Callable[[str], None] = lambda m: None) -> dict:
    from trm_tvm import project as proj
    from trm_tvm.compile.driver import compile_when_changed
    from trm_tvm.quant.artifact import Artifact

    art = Artifact.load(artifact)
    if not art.on_device:
        raise UserError(f"artifact {artifact} uses study-only numerics", "use a W8A8 / W4A8 / mixed artifact")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work or REPO_ROOT / "build" / "halting" / f"{board}-{kernels}-{schedule}-{Path(artifact).stem}")
    x, y, xf, idx, desc = load_study_inputs(art, checkpoint, data, limit, sample, seed)
    fp = float_view(checkpoint, xf, int(art.header["io"]["classes"])) if checkpoint and xf is not None else None
    if board == "gap9":
        rec = gap9_records(art, x, y, idx, work)
        write_json(out / "records.json", rec)
        return _report(rec, art, None, fp, taus, out, {"artifact": str(artifact), "precision": art.header["precision"],
                       "board": board, "kernels": "gap9 cluster (trm_tvm.gap9)", "schedule": "default", "data": desc,
                       "inputs": int(len(x)), "timing_model": "trm_tvm.gap9.cycles", "checkpoint": checkpoint})
    if compile_when_changed(artifact, board, kernels, work / "build", schedule):
        log(f"compiled {artifact} for {board} ({kernels}) into {work / 'build'}")
    project = proj.generate_project(work / "build", board, work / "project")
    if not project.board.emulated:
        timing_model = 0
    rec = record_device_runs(project, Path(artifact), x, y, idx, out / "records.json", timing_model, log=log)
    return _report(rec, art, project.board, fp, taus, out, {
        "artifact": str(artifact), "precision": art.header["precision"], "board": board, "kernels": kernels,
        "schedule": schedule, "data": desc, "inputs": int(len(x)), "timing_model": timing_model,
        "checkpoint": checkpoint, "build_id": project.build_id})


def _report(rec: dict, art, board, fp: dict | None, taus, out: Path, meta: dict) -> dict:
    """halting.json, points.csv, summary.md and the plots of one study."""
    res = study(rec, art, board, fp, taus)
    cost_full, _, _ = cost_arrays(rec, board)
    res["meta"] = {**meta, "tau": float(art.header["halting"]["threshold"])}
    res["schema"], res["version"], res["provenance"] = SCHEMA, 1, run_info()
    res["plots"] = plots(res, out, cost_full)
    for v in res["variants"].values():
        for p in v["points"]:
            p.pop("stop", None)
    write_json(out / "halting.json", res)
    write_csv(res, out / "points.csv")
    atomic_write_text(out / "summary.md", summary_md(res, res["meta"]))
    return res


def compare(dirs: list[str | Path], out: str | Path) -> str:
    """compare.md (+ .json) in `out`: full compute and each policy's operating point of several studies."""
    header = ["study", "variant", "full compute", "learned op. point", "saving", "confidence op. point", "saving",
              "learned 0<tau<1", "saving", "learned at the artifact's tau", "cost vs full", "worst case (N_sup)"]
    rows, cells_of_rows = [], []
    for d in dirs:
        res = read_json(Path(d) / "halting.json", "halting study")
        m, u = res["meta"], res["cost"]
        for name, v in res["variants"].items():
            full = v["points"][v["full_compute"]]
            cells = []
            for pol in ("learned", "confidence", "learned_0<tau<1"):
                o = v["operating_points"].get(pol)
                p = v["points"][o["point"]] if o else None
                cells += [f"{_label(p)}: {100 * p['accuracy']:.2f} %, {p['steps_mean']:.2f} steps" if p else "none",
                          f"{100 * o['saving_vs_full']:.1f} %" if o else "-"]
            own = next(p for p in v["points"] if p["policy"] == "learned" and p["value"] == m["tau"])
            cells += [f"{_label(own)}: {100 * own['accuracy']:.2f} % [{100 * own['ci95'][0]:.1f}, "
                      f"{100 * own['ci95'][1]:.1f}], {own['steps_mean']:.2f} steps",
                      f"{100 * own['cost_mean'] / full['cost_mean']:.1f} %"]
            fidelity = " LOW FIDELITY cycles" if "LOW FIDELITY" in u["source"] else ""
            cells_of_rows.append([f"{Path(m['artifact']).stem} {m['board']} ({m['kernels']}){fidelity}", name,
                                  f"{100 * full['accuracy']:.2f} %, {full['cost_mean']:.4g} {u['unit']}", *cells,
                                  fmt(res["worst_case_bound"])])
            rows.append({"study": str(d), "variant": name, "full": full, "operating_points": v["operating_points"],
                         "cost": u, "meta": m})
    text = "\n".join(["# Halting studies compared", "",
                       "Costs are the board's " + ", ".join(sorted({r["cost"]["unit"] + " (" + r["cost"]["provenance"]
                                                                   + ")" for r in rows})) +
                       "; the fp variant is costed with the same build's per-step device cost.", "",
                       markdown.table(header, cells_of_rows), ""])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.md", text)
    write_json(out / "compare.json", {"schema": SCHEMA + "-compare", "version": 1, "rows": rows, "run": run_info()})
    return text


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.halting", description=__doc__.split("\n\n")[0])
    ap.add_argument("--board")
    ap.add_argument("--artifact")
    ap.add_argument("--kernels", default="tvm", choices=("tvm", "reference", "handwritten"))
    ap.add_argument("--schedule", default="default")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="the float checkpoint: its task's test split and the FP reference")
    src.add_argument("--data", help=".npz with `inputs` (device dtype, or float series) [and `labels`]")
    ap.add_argument("--limit", type=int, help="the first N test inputs")
    ap.add_argument("--sample", type=int, help="a seeded random subset of N test inputs (--seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-model-inputs", type=int, default=100, metavar="K",
                    help="the first K inputs run under the QEMU timing plugin (modeled cycles; the rest: emulated "
                         "instructions x the plugin's cycles per instruction); 0: emulated instructions only")
    ap.add_argument("--work", help="build directory and project (default build/halting/...)")
    ap.add_argument("--compare", nargs="+", metavar="DIR", help="compare finished studies instead of running one")
    ap.add_argument("--out", required=True, help="reports/halting/<name>")
    a = ap.parse_args(argv)
    if a.compare:
        print(compare(a.compare, a.out))
        return 0
    if not (a.board and a.artifact):
        raise UserError("--board and --artifact are required (or --compare DIR...)",
                        "e.g. --board cortex-m4 --artifact artifacts/ecg_w8a8.npz")
    say = lambda m: print(m, file=sys.stderr)
    res = run_study(a.artifact, a.board, a.out, kernels=a.kernels, schedule=a.schedule, checkpoint=a.checkpoint,
                    data=a.data, limit=a.limit, sample=a.sample, seed=a.seed, timing_model=a.timing_model_inputs,
                    work=a.work, log=say)
    print(summary_md(res, res["meta"]))
    print(operating_point_text(Path(a.out) / "halting.json"))
    be = res["bit_exact"]
    return 0 if be["all_steps_bit_exact"] == be["inputs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
