"""The accuracy-precision sweep: FP32 and W8A8 / W4A8 / W4A4 / mixed, PTQ (and QAT), per-channel and per-tensor,
each configuration's golden accuracy on the test set cached as one JSON so the sweep resumes where it stopped.

Over several checkpoints (training seeds) it also gives the issue's protocol: a per-seed table (accuracy, change vs
the FP32 model of the same seed, paired McNemar test on the same test samples), an across-seed summary (mean, min,
max per configuration) and one verdict per criterion, computed from those numbers.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

import numpy as np

from trm_tvm import markdown
from trm_tvm.errors import atomic_write_text
from trm_tvm.jsonio import read_json, write_json
from trm_tvm.plots import save_figure

RECIPES = ("w8a8", "w4a8", "w4a4", "mixed")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    recipe: str              # one of RECIPES (qat/<recipe>.yaml)
    method: str              # ptq | qat
    per_channel: bool

    @property
    def name(self) -> str:
        return f"{self.recipe}-{self.method}-{'pc' if self.per_channel else 'pt'}"


def configs(qat_recipes=()) -> list[SweepConfig]:
    """Every PTQ configuration, then QAT (per-channel) for `qat_recipes`: cheap ones first, so a budget that stops
    the sweep early stops it among the expensive ones."""
    out = [SweepConfig(r, "ptq", pc) for r in RECIPES for pc in (True, False)]
    return out + [SweepConfig(r, "qat", True) for r in RECIPES if r in qat_recipes]


def cached(path: Path, compute) -> dict:
    """Run `compute()` once; later calls (and later runs) read the stored JSON. A computed entry records its wall
    time, so the sweep's total cost across sessions is known."""
    if path.is_file():
        return read_json(path, "sweep cache entry")
    t0 = time.time()
    res = compute()
    res["seconds"] = round(time.time() - t0, 1)
    write_json(path, res)
    return res


CSV_FIELDS = ("checkpoint", "config", "recipe", "method", "granularity", "act_bits", "weight_bytes",
              "acc_halting", "ci95_lo", "ci95_hi", "delta_pts_vs_fp", "acc_fixed_last", "mean_steps", "agreement_fp",
              "mcnemar_fp_only", "mcnemar_quant_only", "mcnemar_p_vs_fp", "n_test", "seconds", "provenance")


def rows(entries: list[dict]) -> list[dict]:
    """One CSV row per (checkpoint, configuration); accuracies are with learned halting unless named otherwise."""
    out, fp_acc = [], {}
    for e in entries:
        h = e["halting"]
        side = "fp" if e["config"] == "fp32" else "quant"
        q = h[side]
        if side == "fp":
            fp_acc[e["checkpoint"]] = q["accuracy"]
        mc = h["mcnemar"] if side == "quant" else {"a_only": 0, "b_only": 0, "p_value": 1.0}
        out.append({"checkpoint": e["checkpoint"], "config": e["config"], "recipe": e.get("recipe", "fp32"),
                    "method": e.get("method", "-"), "granularity": e.get("granularity", "-"),
                    "act_bits": e.get("act_bits", 32), "weight_bytes": e["weight_bytes"],
                    "acc_halting": round(q["accuracy"], 5), "ci95_lo": round(q["ci95"][0], 5),
                    "ci95_hi": round(q["ci95"][1], 5),
                    "delta_pts_vs_fp": round(100 * (q["accuracy"] - h["fp"]["accuracy"]), 3),
                    "acc_fixed_last": round(e["fixed"][-1][side]["accuracy"], 5),
                    "mean_steps": round(h["mean_steps"][side], 3),
                    "agreement_fp": round(h["agreement"], 5) if side == "quant" else 1.0,
                    "mcnemar_fp_only": mc["a_only"], "mcnemar_quant_only": mc["b_only"],
                    "mcnemar_p_vs_fp": mc["p_value"], "n_test": q["n"], "seconds": e.get("seconds", ""),
                    "provenance": "measured"})
    return out


def checkpoints_of(table: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["checkpoint"] for r in table))


def summary(table: list[dict]) -> list[dict]:
    """Per configuration across checkpoints: accuracy and its change vs each seed's own FP32 (points), mean / min /
    max, and the McNemar p of every seed."""
    out = []
    for cfg in dict.fromkeys(r["config"] for r in table):
        rs = [r for r in table if r["config"] == cfg]
        acc = np.array([100 * r["acc_halting"] for r in rs])
        d = np.array([r["delta_pts_vs_fp"] for r in rs])
        out.append({"config": cfg, "seeds": len(rs), "checkpoints": [r["checkpoint"] for r in rs],
                    "weight_bytes": rs[0]["weight_bytes"],
                    "acc_mean": round(float(acc.mean()), 3), "acc_min": round(float(acc.min()), 3),
                    "acc_max": round(float(acc.max()), 3), "delta_mean": round(float(d.mean()), 3),
                    "delta_min": round(float(d.min()), 3), "delta_max": round(float(d.max()), 3),
                    "mcnemar_p": [r["mcnemar_p_vs_fp"] for r in rs], "provenance": "measured"})
    return out


@dataclasses.dataclass(frozen=True)
class Criterion:
    """'<what> within <max_drop_pts> points of FP': the configuration's accuracy (learned halting) may be at most
    that many points below the FP32 accuracy of the same checkpoint; being above FP always passes."""
    what: str
    config: str
    max_drop_pts: float


CRITERIA = (Criterion("INT8 PTQ (W8A8 per-channel, the device default)", "w8a8-ptq-pc", 0.5),
            Criterion("W4A8 after QAT (per-channel)", "w4a8-qat-pc", 2.0))

EPS = 1e-9          # deltas are differences of k/n fractions: compare at the boundary without float noise


def verdict(table: list[dict], crit: Criterion) -> dict:
    """The criterion on every checkpoint of the table and on the mean over checkpoints; None = not evaluable (the
    configuration is missing on some checkpoint)."""
    cks = checkpoints_of(table)
    got = {r["checkpoint"]: r for r in table if r["config"] == crit.config}
    deltas = {ck: got[ck]["delta_pts_vs_fp"] for ck in cks if ck in got}
    complete = bool(cks) and len(deltas) == len(cks)
    passes = {ck: d >= -crit.max_drop_pts - EPS for ck, d in deltas.items()}
    mean = float(np.mean(list(deltas.values()))) if deltas else None
    res = {"criterion": f"{crit.what} within {crit.max_drop_pts:g} points of FP", "config": crit.config,
           "max_drop_pts": crit.max_drop_pts, "delta_pts": deltas, "pass_per_seed": passes,
           "mcnemar_p": {ck: got[ck]["mcnemar_p_vs_fp"] for ck in deltas},
           "every_seed": all(passes.values()) if complete else None,
           "mean_delta_pts": None if mean is None else round(mean, 3),
           "on_mean": (mean >= -crit.max_drop_pts - EPS) if complete else None}
    res["line"] = verdict_line(res, len(cks))
    return res


def _word(ok) -> str:
    return "not evaluated" if ok is None else ("PASS" if ok else "FAIL")


def verdict_line(v: dict, n_checkpoints: int) -> str:
    if not v["delta_pts"]:
        return f"{v['criterion']}: not evaluated ({v['config']} is on none of the {n_checkpoints} checkpoints)"
    per = ", ".join(f"{d:+.2f} (p = {v['mcnemar_p'][ck]:.2g})" for ck, d in v["delta_pts"].items())
    missing = "" if v["every_seed"] is not None else (
        f"; only {len(v['delta_pts'])} of {n_checkpoints} checkpoints have {v['config']}")
    return (f"{v['criterion']}: on every seed {_word(v['every_seed'])}, on the mean {_word(v['on_mean'])} "
            f"(change vs FP in points per seed: {per}; mean {v['mean_delta_pts']:+.2f}{missing})")


def report_md(table: list[dict], summ: list[dict], verdicts: list[dict], n_test: int) -> str:
    """Per-seed table, across-seed summary and verdicts as markdown (every number measured: golden model)."""
    cks = checkpoints_of(table)
    cell = {(r["checkpoint"], r["config"]): r for r in table}
    lines = [f"Golden model (bit-exact with the device) and FP32 on the same {n_test} test samples, learned halting; "
             "all figures **measured** on the host. Change = quantised minus FP32 of the same checkpoint, in "
             "points; p = exact paired McNemar test vs that FP32.", "",
             "## Per seed", ""]
    per_seed = []
    for s in summ:
        cells = []
        for ck in cks:
            r = cell.get((ck, s["config"]))
            if r is None:
                cells.append("—")
            elif s["config"] == "fp32":
                cells.append(f"{100 * r['acc_halting']:.2f} %")
            else:
                cells.append(f"{100 * r['acc_halting']:.2f} % ({r['delta_pts_vs_fp']:+.2f}, p = "
                             f"{r['mcnemar_p_vs_fp']:.2g})")
        per_seed.append([s["config"], *cells])
    across = [[s["config"], s["seeds"], s["weight_bytes"],
               f"{s['acc_mean']:.2f} % [{s['acc_min']:.2f}, {s['acc_max']:.2f}]",
               f"{s['delta_mean']:+.2f} [{s['delta_min']:+.2f}, {s['delta_max']:+.2f}]"] for s in summ]
    lines += [markdown.table(["config", *cks], per_seed), "", "## Across seeds", "",
              markdown.table(["config", "seeds", "weight bytes", "accuracy mean [min, max]",
                              "change vs FP mean [min, max]"], across)]
    lines += ["", "## Verdicts", ""] + [f"- {v['line']}" for v in verdicts]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, table: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    w.writerows(table)
    atomic_write_text(path, buf.getvalue())


def plot(path: Path, table: list[dict]) -> None:
    """Accuracy vs weight bytes per configuration: every seed as a small dot, the mean as a marker with the
    across-seed min-max (or, for one seed, the Wilson 95 % interval) as its error bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    cmap = plt.get_cmap("tab20")
    summ = summary(table)
    for i, s in enumerate(summ):
        rs = [r for r in table if r["config"] == s["config"]]
        kb = s["weight_bytes"] / 1024 * (1 + 0.012 * (i % 5 - 2))       # small jitter: configs share sizes
        color = cmap(i % 20)
        if len(rs) == 1:
            lo, hi = 100 * rs[0]["ci95_lo"], 100 * rs[0]["ci95_hi"]
        else:
            lo, hi = s["acc_min"], s["acc_max"]
            ax.plot([kb] * len(rs), [100 * r["acc_halting"] for r in rs], ".", color=color, ms=4, alpha=0.6)
        ax.errorbar(kb, s["acc_mean"], yerr=[[s["acc_mean"] - lo], [hi - s["acc_mean"]]], fmt="o", color=color,
                    capsize=3, label=f"{s['config']} (n={s['seeds']})")
    ax.set_xscale("log")
    ax.set_xlabel("device weight bytes (KiB, log)")
    ax.set_ylabel("test accuracy % (measured)")
    n = len(checkpoints_of(table))
    bars = "min-max over seeds" if n > 1 else "Wilson 95 % intervals"
    ax.set_title(f"golden model, learned halting, {n} checkpoint(s): mean and {bars}", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    save_figure(fig, path)


def over_budget(t0: float, hours: float) -> bool:
    return hours > 0 and time.time() - t0 > hours * 3600
