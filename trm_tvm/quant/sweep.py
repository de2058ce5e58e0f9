"""The accuracy-precision sweep: FP32 and W8A8 / W4A8 / W4A4 / mixed, PTQ (and QAT), per-channel and per-tensor,
each configuration's golden accuracy on the test set cached as one JSON so the sweep resumes where it stopped."""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

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


def configs(with_qat: bool) -> list[SweepConfig]:
    out = [SweepConfig(r, "ptq", pc) for r in RECIPES for pc in (True, False)]
    if with_qat:
        out += [SweepConfig(r, "qat", True) for r in RECIPES]
    return out


def cached(path: Path, compute) -> dict:
    """Run `compute()` once; later calls (and later runs) read the stored JSON."""
    if path.is_file():
        return read_json(path, "sweep cache entry")
    res = compute()
    write_json(path, res)
    return res


CSV_FIELDS = ("checkpoint", "config", "recipe", "method", "granularity", "act_bits", "weight_bytes",
              "acc_halting", "ci95_lo", "ci95_hi", "acc_fixed_last", "mean_steps", "agreement_fp",
              "mcnemar_p_vs_fp", "n_test", "provenance")


def rows(entries: list[dict]) -> list[dict]:
    out = []
    for e in entries:
        h = e["halting"]
        q = h["quant"] if e["config"] != "fp32" else h["fp"]
        out.append({"checkpoint": e["checkpoint"], "config": e["config"], "recipe": e.get("recipe", "fp32"),
                    "method": e.get("method", "-"), "granularity": e.get("granularity", "-"),
                    "act_bits": e.get("act_bits", 32), "weight_bytes": e["weight_bytes"],
                    "acc_halting": round(q["accuracy"], 5), "ci95_lo": round(q["ci95"][0], 5),
                    "ci95_hi": round(q["ci95"][1], 5),
                    "acc_fixed_last": round(e["fixed"][-1]["quant" if e["config"] != "fp32" else "fp"]["accuracy"], 5),
                    "mean_steps": round(h["mean_steps"]["quant" if e["config"] != "fp32" else "fp"], 3),
                    "agreement_fp": round(h["agreement"], 5) if e["config"] != "fp32" else 1.0,
                    "mcnemar_p_vs_fp": h["mcnemar"]["p_value"] if e["config"] != "fp32" else 1.0,
                    "n_test": q["n"], "provenance": "measured"})
    return out


def write_csv(path: Path, table: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    w.writerows(table)
    atomic_write_text(path, buf.getvalue())


def plot(path: Path, table: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(table):
        kb = r["weight_bytes"] / 1024
        acc = 100 * r["acc_halting"]
        err = [[acc - 100 * r["ci95_lo"]], [100 * r["ci95_hi"] - acc]]
        ax.errorbar(kb, acc, yerr=err, fmt="o", color=f"C{i % 10}", capsize=3,
                    label=f"{r['config']} ({r['checkpoint']})")
    ax.set_xscale("log")
    ax.set_xlabel("device weight bytes (KiB, log)")
    ax.set_ylabel("test accuracy % (measured)")
    ax.set_title("golden model, learned halting, Wilson 95 % intervals", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    save_figure(fig, path)


def over_budget(t0: float, hours: float) -> bool:
    return hours > 0 and time.time() - t0 > hours * 3600
