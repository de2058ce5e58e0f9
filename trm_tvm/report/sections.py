"""The report's sections, each a function of the committed results. Every table is built from the JSON here;
every number goes through `pct` / `num` / `fmt`, so it carries the provenance its file declares."""
from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
from pathlib import Path
from typing import Callable

from trm_tvm.errors import UserError
from trm_tvm.markdown import table
from trm_tvm.provenance import figure, fmt
from trm_tvm.report.manifest import (CKPTS, ECG_CKPTS, FIGURES, HALTING_STUDIES, MODELS, QAT_DS, REPORT_DIR, Figure,
                                     figure_command)
from trm_tvm.report.sources import Results, commands_to_make, missing_error, num, pct

REPORT_MD = "reports/report.md"


def _fig(id: str) -> Figure:
    return next(f for f in FIGURES if f.id == id)


def figure_path(R: Results, png: str) -> Path:
    """Committed plots live in the repository; the report's own go to report/ beside the report file."""
    if png.startswith(REPORT_DIR + "/"):
        return R.out_dir / "report" / Path(png).name
    return R.root / png


def _link(R: Results, png: str) -> str:
    return Path(os.path.relpath(figure_path(R, png), R.out_dir)).as_posix()


def block(R: Results, fig: Figure, body: Callable[[], str], notes: list[str]) -> str:
    """One table/plot: title, what it reads and their provenance classes, the body, the plot, the command."""
    out = [f"### {fig.title}", ""]
    missing = [p for p in fig.reads if not R.exists(p)]
    if missing and not fig.optional:                      # only files the figure may miss (build checked the rest)
        make = " && ".join(dict.fromkeys(c for p in missing for c in commands_to_make(p, R)))
        notes.append(f"{fig.title}: without {', '.join(f'`{p}`' for p in missing)} (not yet produced; make with "
                     f"`{make}`)")
    if missing and fig.optional:
        make = " && ".join(dict.fromkeys(c for p in missing for c in commands_to_make(p, R)))
        notes.append(f"{fig.title}: not yet produced ({', '.join(f'`{p}`' for p in missing)}); make with `{make}`")
        return "\n".join(out + [f"Not yet available: {', '.join(f'`{p}`' for p in missing)}.", "",
                                f"regenerate: `{figure_command(fig)}`", ""])
    try:
        out += [body(), ""]
    except (KeyError, IndexError, TypeError, ValueError, StopIteration) as e:   # a result's format changed
        what = f"{type(e).__name__}: {e}"
        notes.append(f"{fig.title}: could not be rendered from {', '.join(fig.reads)} ({what}); update "
                     "trm_tvm/report/sections.py to the new format")
        out += [f"**Could not be rendered** from the current files ({what}).", ""]
    if fig.png:
        drawn = fig.png.startswith(REPORT_DIR + "/")
        if not (figure_path(R, fig.png).is_file() if drawn else R.exists(fig.png)):
            raise missing_error(fig.png, R)
        out += [f"![{fig.title}]({_link(R, fig.png)})", ""]
    out += [f"provenance (from the files): {', '.join(R.provenances(fig)) or 'none declared'}; reads "
            + ", ".join(f"`{p}`" for p in fig.reads if R.exists(p)), "",
            f"regenerate: `{figure_command(fig)}`", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- 1 reference TRM

def _metric(ev: dict) -> str:
    return "accuracy" if "accuracy" in ev["fixed"] else "cell_accuracy_blanks"


def reference_rows(R: Results) -> list[list[str]]:
    rows = []
    for name in MODELS:
        if not R.exists(f"checkpoints/{name}/eval.json"):
            continue
        ev = R.json(f"checkpoints/{name}/eval.json")
        m = _metric(ev)
        rows.append([f"`{name}`", f"{ev['task']} ({m.replace('_', ' ')}, {ev['n_test']:,} test)",
                     num(ev["sizes"]["params"]), num(ev["sizes"]["macs_fixed_inference"]),
                     pct(ev["fixed"][m]), f"{pct(ev['halting'][m])}, {_mean_steps(ev, m)}",
                     pct(ev["baseline"][m]), pct(ev["anchor"][m]) if "anchor" in ev else "—"])
    return rows


def steps(value: float, provenance: str, source: str) -> str:
    """A mean number of supervision steps, always with two decimals ('1.00 steps (measured)')."""
    return fmt(figure(f"{value:.2f}", "steps", provenance, source))


def _mean_steps(ev: dict, metric: str) -> str:
    """Mean supervision steps with learned halting, labelled like the accuracy measured in the same run."""
    return steps(ev["halting"]["mean_steps"], ev["halting"][metric]["provenance"], "")


def _puzzles(R: Results) -> str:
    ev = R.json("checkpoints/sudoku/eval.json")
    if "puzzle_accuracy" not in ev["fixed"]:
        return ""
    return ("\n\nSudoku puzzles solved (every cell right): TRM " + pct(ev["fixed"]["puzzle_accuracy"])
            + " with fixed compute, " + pct(ev["halting"]["puzzle_accuracy"]) + " with learned halting; baseline "
            + pct(ev["baseline"]["puzzle_accuracy"]) + ". MiniRocket is a time-series method: not run on Sudoku.")


def _reference(R: Results, notes: list[str]) -> str:
    parts = [block(R, _fig("reference-accuracy"), lambda: table(
        ["model", "task (metric)", "params", "MACs / inference (fixed)", "TRM fixed compute",
         "TRM learned halting (mean steps)", "non-recursive baseline", "MiniRocket"], reference_rows(R))
        + _puzzles(R), notes)]
    parts += [block(R, f, lambda f=f: _seeds(R, f), notes) for f in FIGURES if f.id.startswith("reference-seeds-")]
    parts.append(block(R, _fig("reference-per-step"), lambda: _per_step(R), notes))
    return "\n".join(parts)


def _seeds(R: Results, fig: Figure) -> str:
    have = [Path(p).parent.name for p in fig.reads if R.exists(p)]
    cols = [("fixed", "TRM fixed"), ("halting", "TRM halting"), ("baseline", "baseline"), ("anchor", "MiniRocket")]
    evs = [R.json(f"checkpoints/{c}/eval.json") for c in have]
    m = _metric(evs[0])
    cols = [(k, t) for k, t in cols if all(k in ev for ev in evs)]       # e.g. evaluated with --no-anchor
    rows = [[f"`{c}`", f"`{ev['run']['commit'][:7]}`"] + [pct(ev[k][m]) for k, _ in cols]
            for c, ev in zip(have, evs)]
    rows.append([f"mean over {len(have)} seed(s) [min, max]", ""]
                + [_spread([ev[k][m] for ev in evs]) for k, _ in cols])
    return (f"{m.replace('_', ' ')}; same config and test set, training seed varied (`train --seed`); code commit of "
            "each evaluation shown, as the model code may differ between them.\n\n"
            + table(["checkpoint", "evaluated at"] + [t for _, t in cols], rows) + _seed_verdicts(R, have, evs))


def _seed_verdicts(R: Results, have: list[str], evs: list[dict]) -> str:
    """The mission's verdicts over seeds, computed by `trm_tvm.evaluate.compare_seeds` from the same eval.json."""
    from trm_tvm.evaluate import compare_seeds

    try:
        res = compare_seeds([str(R.root / f"checkpoints/{c}") for c in have])
    except UserError as e:                    # e.g. a seed trained with another config
        return f"\n\nVerdicts over seeds not computed: {e.what}."
    prov = sorted({ev["fixed"][_metric(ev)]["provenance"] for ev in evs})
    lines = [f"- {v['what']}: {v['seeds_passing']} of {v['seeds']} seeds -> {'PASS' if v['pass'] else 'FAIL'} "
             f"(from {', '.join(prov)} figures)" for v in res["verdicts"].values()]
    return "\n\nVerdicts (`trm_tvm.evaluate.compare_seeds`):\n\n" + "\n".join(lines) if lines else ""


def _spread(figs: list[dict]) -> str:
    """Mean [min, max] over checkpoints; a single one as it is."""
    if len(figs) == 1:
        return pct(figs[0], ci=False)
    v = [f["value"] for f in figs]
    provs = sorted({f["provenance"] for f in figs})
    return f"{100 * statistics.mean(v):.2f} % [{100 * min(v):.1f}, {100 * max(v):.1f}] ({', '.join(provs)})"


def _per_step(R: Results) -> str:
    names = [c for c in MODELS if R.exists(f"checkpoints/{c}/eval.json")]
    evs = {c: R.json(f"checkpoints/{c}/eval.json") for c in names}
    n_steps = max(len(e["per_step"]) for e in evs.values())
    rows = [[f"`{c}`"] + [pct(s[_metric(e)], ci=False) for s in e["per_step"]] + [pct(e["baseline"][_metric(e)],
                                                                                    ci=False)]
            for c, e in evs.items()]
    _plot_per_step(R, evs)
    return table(["checkpoint"] + [f"step {i + 1}" for i in range(n_steps)] + ["baseline"], rows)


def _plot_per_step(R: Results, evs: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    provs = sorted({s[_metric(e)]["provenance"] for e in evs.values() for s in e["per_step"]})
    for c, e in evs.items():
        m = _metric(e)
        ln, = ax.plot([s["step"] for s in e["per_step"]], [100 * s[m]["value"] for s in e["per_step"]], "o-",
                      label=c)
        ax.axhline(100 * e["baseline"][m]["value"], color=ln.get_color(), ls=":", lw=1)
    ax.set_xticks(sorted({s["step"] for e in evs.values() for s in e["per_step"]}))
    ax.set_xlabel("supervision step (fixed compute)")
    ax.set_ylabel(f"test accuracy % ({', '.join(provs)})")
    ax.set_title("Float TRM per step; dotted: non-recursive baseline", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_atomic(fig, figure_path(R, f"{REPORT_DIR}/reference_per_step.png"))


def save_atomic(fig, path: Path) -> None:
    from trm_tvm.plots import save_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        save_figure(fig, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


# ---------------------------------------------------------------- 2 quantisation

def _ckpt_names(R: Results) -> dict[str, str]:
    """'ecg:25ecd3af' style ids of the committed checkpoints (sha256 prefix) -> checkpoint name."""
    out = {}
    for c in CKPTS:
        p = f"checkpoints/{c}/model.pt"
        if R.exists(p):
            out[hashlib.sha256(R.bytes(p)).hexdigest()[:8]] = c
    return out


def sweep_rows(R: Results, path: str = "reports/quant/ecg/sweep.json") -> tuple[list[list[str]], list[str]]:
    rows_in = R.json(path)["rows"]
    by_cfg: dict[str, list[dict]] = {}
    for r in rows_in:
        by_cfg.setdefault(r["config"], []).append(r)
    names = _ckpt_names(R)
    seen = [names.get(i.split(":")[-1], i) for i in dict.fromkeys(r["checkpoint"] for r in rows_in)]
    fp = {r["checkpoint"]: r["acc_halting"] for r in by_cfg.get("fp32", [])}
    rows = []
    for cfg, rs in by_cfg.items():
        prov = rs[0]["provenance"]
        acc = [figure(r["acc_halting"], "", r["provenance"], "sweep") for r in rs]
        a = (pct({**acc[0], "ci95": [rs[0]["ci95_lo"], rs[0]["ci95_hi"]]}) if len(rs) == 1
             else _spread(acc) + f" over {len(rs)} checkpoints")
        deltas = [round(100 * (r["acc_halting"] - fp[r["checkpoint"]]), 6) + 0.0 for r in rs if r["checkpoint"] in fp]
        mean = round(statistics.mean(deltas), 2) + 0.0 if deltas else 0.0      # + 0.0: no "-0.00"
        delta = (f"{mean:+.2f} [{min(deltas):+.2f}, {max(deltas):+.2f}] points ({prov})"
                 if len(deltas) > 1 else f"{deltas[0]:+.2f} points ({prov})" if deltas else "—")
        rows.append([cfg, num(figure(rs[0]["weight_bytes"], "B", prov, "sweep")), a, delta,
                     _spread([figure(r["acc_fixed_last"], "", r["provenance"], "") for r in rs]),
                     steps(statistics.mean(r["mean_steps"] for r in rs), prov, "sweep"),
                     fmt(figure(statistics.mean(r["agreement_fp"] for r in rs), "", prov, "")),
                     ", ".join(f"{r['mcnemar_p_vs_fp']:.3g}" for r in rs) + f" ({prov})"])
    return rows, seen


def _verdicts(sweep: dict) -> str:
    """The sweep's own verdict lines (computed from its rows by trm_tvm.quant.sweep), with the file's label."""
    lines = [f"- {v['line']} ({sweep['provenance']})" for v in sweep.get("verdicts", [])]
    return "\n\nVerdicts recorded by the sweep:\n\n" + "\n".join(lines) if lines else ""


def _quant(R: Results, notes: list[str]) -> str:
    def sweep(path: str, expected: tuple[str, ...]) -> str:
        rows, seen = sweep_rows(R, path)
        if R.json(path).get("complete") is False:
            notes.append(f"{path} stopped at its time budget (complete: false): rerun its command to finish it")
        if len(seen) < len(expected):
            notes.append(f"{path} covers {len(seen)} of the {len(expected)} checkpoints its command names "
                         f"({', '.join(seen)})")
        return (f"Checkpoints in the sweep: {', '.join(f'`{s}`' for s in seen)}. Accuracy with learned halting; "
                f"with several checkpoints, the mean and [min, max] over them; change vs the same checkpoint's "
                f"FP32.\n\n" + table(
                    ["configuration", "weight bytes", "accuracy, learned halting", "change vs FP32",
                     "accuracy, fixed N_sup", "mean steps", "agreement with FP", "McNemar p vs FP (per checkpoint)"],
                    rows) + _verdicts(R.json(path)))

    def qat() -> str:
        q = R.json("reports/quant/ecg/w4a8_qat_eval.json")
        h, prov = q["halting"], q["provenance"]
        fp = figure(h["fp"]["accuracy"], "", prov, q["source"]) | {"ci95": h["fp"]["ci95"]}
        qa = figure(h["quant"]["accuracy"], "", prov, q["source"]) | {"ci95": h["quant"]["ci95"]}
        return table(["artifact", "FP32 (halting)", "W4A8 QAT (halting)", "McNemar p"],
                     [[f"`{q['artifact']}`", pct(fp), pct(qa), f"{h['mcnemar']['p_value']:.3f} ({prov})"]])

    def mixed() -> str:
        m = R.json("reports/quant/ecg/mixed.json")
        prov = m["provenance"]
        rows = [[len(p["four_bit"]), num(figure(p["weight_bytes"], "B", prov, "")),
                 pct(figure(p["accuracy"], "", prov, m["source"]))] for p in m["front"]]
        return (f"Budget {m['chosen']['budget_kb']} KB: {len(m['chosen']['four_bit'])} layers at 4 bits, "
                f"{num(figure(m['weight_bytes'], 'B', prov, ''))} of weights; accuracy on "
                f"{m['chosen']['monitor_samples']} held-out train samples ({m['source']}).\n\n"
                + table(["layers at 4 bits", "weight bytes", "held-out accuracy"], rows))

    def dynamics() -> str:
        d = R.json("reports/quant/ecg/dynamics/dynamics.json")
        prov = d["provenance"]
        rows = []
        for r in d["results"]:
            last = r["steps"][-1]
            rows.append([r["label"], r["state_scale_mode"], r["numerics"]["state_bits"],
                         fmt(figure(r["cos_y"][-1], "", prov, ""), 4), fmt(figure(r["cos_z"][-1], "", prov, ""), 4),
                         pct(figure(last["acc_quant"], "", prov, ""), ci=False),
                         pct(figure(last["acc_fp"], "", prov, ""), ci=False),
                         steps(r["halting"]["mean_steps_quant"], prov, d["source"])])
        return (f"{d['results'][0]['samples']} test samples, {d['source']}; cosine to the float trajectory after the "
                f"last net call.\n\n" + table(["variant", "state scale", "state bits", "cos y (last)", "cos z (last)",
                                               f"accuracy step {len(d['results'][0]['steps'])}", "FP same step",
                                               "mean steps (halting)"], rows)
                + "\n\n" + " ".join(f"![{n}]({_link(R, f'reports/quant/ecg/dynamics/{n}.png')})"
                                    for n in ("steps", "halting")))

    return "\n".join([block(R, _fig("quant-sweep"), lambda: sweep(_fig("quant-sweep").reads[0], ECG_CKPTS), notes),
                      block(R, _fig("quant-sweep-gunpoint"),
                            lambda: sweep(_fig("quant-sweep-gunpoint").reads[0], ("gunpoint",)), notes),
                      block(R, _fig("quant-sweep-sudoku"),
                            lambda: sweep(_fig("quant-sweep-sudoku").reads[0], ("sudoku",)), notes),
                      block(R, _fig("quant-qat"), qat, notes),
                      block(R, _fig("quant-mixed"), mixed, notes),
                      block(R, _fig("quant-dynamics"), dynamics, notes),
                      block(R, _fig("quant-findings"), lambda: findings(R), notes),
                      block(R, _fig("quant-qat-ds"), lambda: qat_ds(R), notes)])


def series(values: list[float], unit: str, provenance: str, scale: float = 1.0, digits: int = 2) -> str:
    """Per-step values of one quantity as '81.10 / 80.90 / 80.65 % (measured)'."""
    return (" / ".join(f"{scale * v:.{digits}f}" for v in values) + (f" {unit}" if unit else "")
            + f" ({provenance})")


def points(delta: float, provenance: str) -> str:
    """A change in percentage points, signed ('-0.30 points (measured)'; never '-0.00')."""
    return f"{round(delta, 6) + 0.0:+.2f} points ({provenance})"


def findings(R: Results) -> str:
    """The dynamics run behind reports/quant/README.md's check of the published findings: final-state cosine,
    relative drift, accuracy, and how much of the logit error is a common offset (bias share)."""
    d = R.json(_fig("quant-findings").reads[0])
    prov = d["provenance"]
    rows = []
    for r in d["results"]:
        last = r["logit_bias"][-1]
        rows.append([f"`{r['label']}` ({r['precision']})",
                     f"{r['cos_z'][-1]:.3f} / {r['cos_y'][-1]:.3f} ({prov})", f"{r['rel_z'][-1]:.2f} ({prov})",
                     pct(figure(last["acc_quant"], "", prov, ""), ci=False),
                     points(100 * (last["acc_quant"] - last["acc_fp"]), prov),
                     fmt(figure(last["bias_share"], "", prov, ""), 2),
                     pct(figure(last["acc_quant_debiased"], "", prov, ""), ci=False)])
    r0 = d["results"][0]
    return (f"{r0['samples']:,} test samples, fixed compute ({r0['N_sup']} supervision steps), {d['source']}; FP32 "
            f"{pct(figure(r0['logit_bias'][-1]['acc_fp'], '', prov, ''), ci=False)}. *Bias share* = ||mean logit "
            "error||^2 / mean ||logit error||^2 (1: every sample shifted the same way); the mean error is removed "
            "two-fold (estimated on one half of the samples, applied to the other). Which published claim each row "
            "checks, and the verdicts: reports/quant/README.md.\n\n"
            + table(["artifact", "final cosine z / y vs FP", "relative L2 of z", "accuracy", "change vs FP",
                     "logit-error bias share", "accuracy, mean logit error removed"], rows))


QAT_DS_VARIANTS = (("ecg_w4a8", "w4a8-ptq-pc", "W4A8 PTQ"), ("w4a8-qat-pc", "w4a8-qat-pc", "QAT, deep supervision"),
                   ("w4a8-qat-pc-last-step", None, "QAT, last step only"))   # (dynamics label, sweep config, name)


def qat_ds(R: Results) -> str:
    """Per seed: FP32, PTQ and the two QAT losses -- halting accuracy (the sweep's rows, the last-step QAT's own
    evaluation), and per supervision step the fixed-compute accuracy and loss from the dynamics runs."""
    sweep = R.json("reports/quant/ecg/sweep.json")
    names = _ckpt_names(R)
    by_ckpt = {(names.get(r["checkpoint"].split(":")[-1]), r["config"]): r for r in sweep["rows"]}
    rows = []
    for ckpt, study in QAT_DS.items():
        ev = R.json(f"{study}/w4a8-qat-pc-last-step_eval.json")
        dyn = R.json(f"{study}/dynamics.json")
        prov = dyn["provenance"]
        res = {r["label"]: r for r in dyn["results"]}
        first = dyn["results"][0]
        fp_h = figure(ev["halting"]["fp"]["accuracy"], "", ev["provenance"], "") | {"ci95": ev["halting"]["fp"]["ci95"]}
        rows.append([f"`{ckpt}`", "FP32", pct(fp_h), "", "",
                     series([s["acc_fp"] for s in first["steps"]], "%", prov, 100),
                     series([s["loss_fp"] for s in first["steps"]], "", prov, digits=4),
                     fmt(figure(first["steps"][0]["ece_halt_fp"], "", prov, ""), 2),
                     steps(first["halting"]["mean_steps_fp"], prov, dyn["source"]), "—"])
        for label, config, name in QAT_DS_VARIANTS:
            sw = by_ckpt.get((ckpt, config))
            if config is None:
                h = ev["halting"]
                acc = pct(figure(h["quant"]["accuracy"], "", ev["provenance"], "") | {"ci95": h["quant"]["ci95"]})
                delta, p = 100 * (h["quant"]["accuracy"] - h["fp"]["accuracy"]), h["mcnemar"]["p_value"]
            elif sw:
                acc = pct(figure(sw["acc_halting"], "", sw["provenance"], "")
                          | {"ci95": [sw["ci95_lo"], sw["ci95_hi"]]})
                delta, p = sw["delta_pts_vs_fp"], sw["mcnemar_p_vs_fp"]
            else:
                continue
            r = res.get(label)
            dash = "—"
            rows.append([f"`{ckpt}`", name, acc, points(delta, prov),
                         f"{p:.2g} ({prov})",
                         series([s["acc_quant"] for s in r["steps"]], "%", prov, 100) if r else dash,
                         series([s["loss_quant"] for s in r["steps"]], "", prov, digits=4) if r else dash,
                         fmt(figure(r["steps"][0]["ece_halt_quant"], "", prov, ""), 2) if r else dash,
                         steps(r["halting"]["mean_steps_quant"], prov, dyn["source"]) if r else dash,
                         fmt(figure(r["cos_z"][-1], "", prov, ""), 3) if r else dash])
    return ("W4A8 QAT with the deep-supervision loss (one optimiser step per supervision step, the sweep's QAT) vs "
            "only the last step's loss (`--no-deep-supervision`); same epochs, data order and monitor-based "
            f"selection; {first['samples']:,} test samples, golden model. Halting accuracy with learned halting, "
            "McNemar p vs FP32; per-step columns: fixed compute after 1, 2, ... supervision steps. A seed where "
            "QAT kept the PTQ start (no epoch beat it on the monitor split) shows the same figures for both. "
            "Reading: reports/quant/ecg/README.md.\n\n"
            + table(["checkpoint", "model", "accuracy, learned halting", "change vs FP32", "McNemar p",
                     "accuracy, fixed 1 / 2 / ... steps", "loss per step", "halting ECE, step 1",
                     "mean steps (halting)", "final cosine z"], rows))


# ---------------------------------------------------------------- 3 deployment

GOLDEN = "golden-model outputs, bit-exact with the device (docs/quant.md: measured on the host)"


def device_steps(point: dict) -> str:
    """Mean supervision steps of a halting-study point: they follow from the golden-exact q values."""
    return steps(point["steps_mean"], "measured", GOLDEN)


def full_and_tau(h: dict, variant: str | None = None) -> tuple[dict, dict]:
    """A halting study's full-compute point and its learned-halting point at the artifact's threshold."""
    v = h["variants"][variant or h["meta"]["precision"]]
    tau = next(q for q in v["points"] if q["policy"] == "learned" and q["value"] == h["meta"]["tau"])
    return v["points"][v["full_compute"]], tau



_SCALE = {("s", "ms"): 1e3, ("J", "mJ"): 1e3, ("J", "uJ"): 1e6}


def _in(fig: dict, unit: str) -> dict:
    """The same figure in another unit (provenance and source kept)."""
    return {**fig, "value": fig["value"] * _SCALE[(fig["unit"], unit)], "unit": unit}


def exactness_rows(R: Results, path: str = "reports/bench/exactness-ecg/results.json") -> list[list[str]]:
    rows = []
    for r in R.json(path)["rows"]:
        for mode, m in r["modes"].items():
            rows.append([r["board"], f"{Path(r['artifact']).stem} ({r['precision']})", r["kernels"], mode,
                         f"{m['bit_exact']}/{m['checked']}", num(m["instructions"]["mean"]),
                         num(_in(m["latency"]["mean"], "ms")), num(r["flash"]), num(r["ram"]), num(r["arena"]),
                         num(m["peak_stack"]) if "peak_stack" in m else "—"])
    return rows


def _disagreeing_cycles(R: Results, tune: dict) -> list[str]:
    """The same whole inference (board, artifact, kernels, schedule) costed in two result files with cycle counts
    more than 2 % apart: they were made by different code versions, so a reader must not compare across them."""
    whole = next((p for p in _fig("deploy-whole").reads if R.exists(p)), None)
    if whole is None:
        return []
    res = R.json(whole)
    other = {(r["board"], Path(r["artifact"]).name, r["kernels"], r["schedule"]): r["profile"]["total"]["cycles"]
             for r in res["rows"] if "profile" in r}
    out = []
    for w in tune["whole"]:
        key = (tune["board"], w["artifact"], w["kernels"], "n/a" if w["kernels"] == "handwritten" else w["schedule"])
        if key in other and abs(other[key]["value"] / w["cycles"]["value"] - 1) > 0.02:
            out.append(f"{' '.join(key[:3])} ({key[3]}): {num(w['cycles'])} in reports/tune/cortex-m4 (commit "
                       f"{tune['provenance']['commit'][:7]}) vs {num(other[key])} in {whole} (commit "
                       f"{res['provenance']['commit'][:7]}): different code versions, compare within one table only")
    return out


def whole_inferences(R: Results, path: str, plot: bool = False) -> str:
    """A bench run with --profile: one fixed-compute inference per board x artifact x kernels x schedule."""
    res = R.json(path)
    rows, bars = [], []
    for r in res["rows"]:
        t = r["profile"]["total"]
        rows.append([r["board"], f"{Path(r['artifact']).stem} ({r['precision']})", r["kernels"], r["schedule"],
                     f"{r['modes']['fixed']['bit_exact']}/{r['modes']['fixed']['checked']}",
                     num(t["instructions"]), num(t["cycles"]), num(_in(t["latency"], "ms")),
                     num(_in(t["energy"], "mJ")), num(r["flash"])])
        bars.append((f"{r['board']}\n{r['precision']}", r["kernels"], t["cycles"]))
    if plot:
        _plot_backends(R, bars)
    src = res["rows"][0]["profile"]["total"]
    arts = ", ".join(f"`{a}`" for a in dict.fromkeys(r["artifact"] for r in res["rows"]))
    return (f"One fixed-compute inference ({res['rows'][0]['profile']['steps']} steps) of {arts} (`{path}`, commit "
            f"{res['provenance']['commit'][:7]}), under the QEMU timing plugin; cycles: the board's timing model; "
            f"energy: {src['energy']['source']} (first row; each board names its own).\n\n"
            + table(["board", "artifact", "kernels", "schedule", "bit-exact", "instructions", "cycles",
                     "latency", "energy", "flash"], rows))


EXACTNESS_HEADER = ["board", "artifact", "kernels", "mode", "bit-exact", "instructions / inference (mean)",
                    "latency (mean)", "flash", "RAM", "arena", "peak stack"]


def _deploy(R: Results, notes: list[str]) -> str:
    def exactness() -> str:
        res = R.json("reports/bench/exactness-ecg/results.json")
        src = res["rows"][0]["modes"]
        lat_src = next(iter(src.values()))["latency"]["mean"]["source"]
        notes.append(f"bench latency is {lat_src} -- see the tuning table and section 4 for timing-model cycles")
        return ("Every inference's output checked against the integer golden model (0 LSB). Latency here: "
                f"{lat_src}.\n\n" + table(EXACTNESS_HEADER, exactness_rows(R)))

    def exactness_random() -> str:
        path = _fig("deploy-exactness-random").reads[0]
        return ("The compiler's first check, before trained artifacts existed: random-weight W8A8 / W4A8 / mixed "
                "artifacts of a tiny model (`trm_tvm.quant.fixtures`; their accuracy is meaningless), reference and "
                f"TVM kernels, every output checked against the golden model (commit "
                f"{R.json(path)['provenance']['commit'][:7]}; TVM's default schedules of that time).\n\n"
                + table(EXACTNESS_HEADER, exactness_rows(R, path)))

    def handwritten() -> str:
        path = _fig("deploy-exactness-handwritten").reads[0]
        return ("The SMLAD (M4) / Helium (M55) kernels of docs/kernels.md, compiled with `--kernels handwritten`; "
                "every output checked against the golden model.\n\n"
                + table(EXACTNESS_HEADER, exactness_rows(R, path)))

    def whole() -> str:
        path = next((p for p in _fig("deploy-whole").reads if R.exists(p)), None)
        return whole_inferences(R, path, plot=True) if path else "Not yet available."

    def backends() -> str:
        t = R.json("reports/tune/cortex-m4/summary.json")
        notes.extend(_disagreeing_cycles(R, t))
        hand = {w["artifact"]: w["cycles"]["value"] for w in t["whole"] if w["kernels"] == "handwritten"}
        rows = [[f"{w['artifact']} ({w['precision']})", w["kernels"], w["schedule"], str(w["bit_exact"]),
                 num(w["instructions"]), num(w["cycles"]),
                 fmt(figure(w["cycles"]["value"] / hand[w["artifact"]], "x", w["cycles"]["provenance"], ""))
                 if w["artifact"] in hand else "—"] for w in t["whole"]]
        return (f"{t['board']}, one fixed-compute inference under the timing plugin; the reference kernels on all "
                "boards are in the exactness table.\n\n"
                + table(["artifact", "kernels", "schedule", "bit-exact", "instructions", "cycles",
                         "cycles vs hand-written"], rows))

    def kernels() -> str:
        k = R.json("reports/kernels/handwritten/bench.json")
        st = "; ".join(f"{b}: {s['cases']} cases, {len(s['mismatches'])} mismatches"
                       for b, s in k.get("selftest", {}).items())
        return (f"Instructions per MAC of one call at each of the model's linear shapes (tokens x n_in x n_out), "
                f"requantisation included. On-device self-test vs the spec: {st}.\n\n"
                + table(*kernel_table(k["rows"])) + "\n\n" + "\n".join(f"- {t}" for t in issue8_targets(k["rows"])))

    def per_op() -> str:
        path = next((p for p in _fig("deploy-per-op").reads if R.exists(p)), None)
        return per_op_table(R, path) if path else "Not yet available."

    def ecg_shapes() -> str:
        path = _fig("deploy-ecg-shapes").reads[0]
        rows = R.json(path)["rows"]
        cols = [(r["kernels"], r["schedule"]) for r in rows]
        fns = list(dict.fromkeys(fn for r in rows for fn, f in r["profile"]["kernels"].items()
                                 if "instructions_per_mac" in f))
        lin = [[f"`{fn}`"] + [fmt(r["profile"]["kernels"][fn]["instructions_per_mac"])
                              if fn in r["profile"]["kernels"] else "" for r in rows] for fn in fns]
        return (whole_inferences(R, path) + "\n\nInstructions per MAC of each linear kernel (one fixed-compute "
                "inference; TVM names its kernels by shape):\n\n"
                + table(["function"] + [f"{k} ({s})" for k, s in cols], lin))

    def tuning() -> str:
        t = R.json("reports/tune/cortex-m4/summary.json")
        rows = [[f"`{k['kernel']}`", k["calls"], num(k["naive"]), num(k["default"]), num(k["tuned"]),
                 fmt(figure(k["tuned"]["value"] / k["default"]["value"], "", k["tuned"]["provenance"], ""))]
                for k in t["kernels"]]
        s = t["search"]
        return (f"{t['board']}: {s['strategy']}; {s['trials_per_task']} trials per task, {s['firmware_builds']} "
                f"firmware builds, {s['wall_s']:.0f} s wall (measured on the shared host).\n\n"
                + table(["kernel", "calls / inference", "naive", "default", "tuned", "tuned / default"], rows))

    def boards() -> str:
        rows, rows_fig = [], []
        for s in HALTING_STUDIES:
            p = f"reports/halting/{s}/halting.json"
            if not s.startswith("ecg_w8a8") or not R.exists(p):
                continue
            h = R.json(p)
            full, tau = full_and_tau(h)
            prov, src = h["cost"]["provenance"], h["cost"]["source"]
            rows_fig.append((h["meta"]["board"], prov, full, tau))
            rows.append([h["meta"]["board"], h["meta"]["kernels"], h["meta"]["inputs"],
                         pct(figure(full["accuracy"], "", "measured", GOLDEN), ci=False),
                         num(figure(full["latency_mean_s"] * 1e3, "ms", prov, src)),
                         num(figure(full["energy_mean_j"] * 1e6, "uJ", prov, h["energy_source"])),
                         f"{pct(figure(tau['accuracy'], '', 'measured', GOLDEN), ci=False)}, "
                         f"{device_steps(tau)}",
                         num(figure(tau["latency_mean_s"] * 1e3, "ms", prov, src)),
                         num(figure(tau["energy_mean_j"] * 1e6, "uJ", prov, h["energy_source"]))])
        _plot_boards(R, rows_fig)
        return ("ECG W8A8 from the halting studies (section 4): fixed compute = all N_sup steps; learned halting at "
                "the artifact's threshold. Cycle sources and energy operating points are named in each study's "
                "summary.md.\n\n" + table(["board", "kernels", "inputs", "accuracy, fixed", "latency, fixed",
                                           "energy, fixed", "accuracy, learned halting", "latency, halting",
                                           "energy, halting"], rows))

    return "\n".join([block(R, _fig("deploy-exactness"), exactness, notes),
                      block(R, _fig("deploy-exactness-random"), exactness_random, notes),
                      block(R, _fig("deploy-exactness-handwritten"), handwritten, notes),
                      block(R, _fig("deploy-whole"), whole, notes),
                      block(R, _fig("deploy-per-op"), per_op, notes),
                      block(R, _fig("deploy-ecg-shapes"), ecg_shapes, notes),
                      block(R, _fig("deploy-backends"), backends, notes),
                      block(R, _fig("deploy-tuned-whole"),
                            lambda: whole_inferences(R, _fig("deploy-tuned-whole").reads[0]), notes),
                      block(R, _fig("deploy-kernels"), kernels, notes),
                      block(R, _fig("deploy-tuning"), tuning, notes),
                      block(R, _fig("deploy-boards"), boards, notes)])


# issue 8's targets for the hand-written linear kernels (emulated instructions per MAC at the model's shapes)
INT8_TARGET = {"cortex-m4": 1.0, "cortex-m55": 0.5}
INT4_OVER_INT8 = 1.3
HANDWRITTEN_VARIANTS = ("_dsp", "_mve")       # the optimised kernels the targets are for (not _ref, not TVM's)


def _shape(r: dict) -> str:
    return f"{r['tokens']}x{r['n_in']}x{r['n_out']}"


def kernel_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per shape, one column per board x kernel: instructions per MAC (and the file's label)."""
    cols = list(dict.fromkeys((r["board"], r["kernel"]) for r in rows))
    by = {(_shape(r), r["board"], r["kernel"]): r["instructions_per_mac"] for r in rows}
    shapes = list(dict.fromkeys(_shape(r) for r in rows))
    body = [[s] + [f"{by[(s, *c)]['value']:.2f} ({by[(s, *c)]['provenance']})" if (s, *c) in by else "—"
                   for c in cols] for s in shapes]
    return ["shape"] + [f"{b} `{k}`" for b, k in cols], body


def issue8_targets(rows: list[dict]) -> list[str]:
    """Each target of issue 8 checked at every shape of the bench, per multiplier encoding of the bench's rows
    (the spec's normalised one and sh fixed at 32): where it is met and where not."""
    opt = [r for r in rows if r["kernel"].split(" ")[0].endswith(HANDWRITTEN_VARIANTS)]
    groups = list(dict.fromkeys((r["board"], r.get("multipliers", "")) for r in opt))
    out = []
    for board, target in INT8_TARGET.items():
        for enc in (e for b, e in groups if b == board):
            s8 = [r for r in opt if (r["board"], r.get("multipliers", "")) == (board, enc) and "_s8_" in r["kernel"]]
            if not s8:
                continue
            miss = [f"{_shape(r)} ({r['instructions_per_mac']['value']:.2f}, "
                    f"{r['instructions_per_mac']['provenance']})" for r in s8
                    if r["instructions_per_mac"]["value"] > target]
            cpm = [r["cycles_per_mac"]["value"] for r in s8]
            where = f"; not at {', '.join(miss)}" if miss else ""
            out.append(f"{board} int8 `{s8[0]['kernel']}`{f' ({enc})' if enc else ''} <= {target} instruction/MAC: "
                       f"met at {len(s8) - len(miss)} of {len(s8)} shapes{where}"
                       + f". Cycles per MAC beside it: {min(cpm):.2f}-{max(cpm):.2f} "
                       f"({s8[0]['cycles_per_mac']['provenance']}).")
    for board, enc in groups:
        pairs = {(_shape(r), "_s4_" in r["kernel"]): r["instructions_per_mac"] for r in opt
                 if (r["board"], r.get("multipliers", "")) == (board, enc)}
        ratios = [pairs[(s, True)]["value"] / pairs[(s, False)]["value"] for s, four in pairs if four
                  and (s, False) in pairs]
        if ratios:
            prov = next(iter(pairs.values()))["provenance"]
            over = sum(x > INT4_OVER_INT8 for x in ratios)
            verdict = f"missed at {over} of {len(ratios)} shapes" if over else "met at every shape"
            out.append(f"{board}{f' ({enc})' if enc else ''} int4 <= {INT4_OVER_INT8}x int8: int4 / int8 "
                       f"{min(ratios):.2f}-{max(ratios):.2f}x ({prov}), {verdict}.")
    return out


RUNTIME_FNS = ("trm_run", "trm_phase_begin", "trm_phase_end", "trm_step_end", "trm_counter_now", "trm_systick_irq")


def op_family(fn: str) -> str:
    """The op a profiled function implements, whatever the back end calls it (`trm_linear_s8_16x48x96_tvm` and
    `trm_linear_s8_dsp` are both linear; linear layers with int16 outputs are the heads); the executor, memcpy
    and the C library's division helpers are 'runtime'."""
    if not fn.startswith("trm_") or fn in RUNTIME_FNS:
        return "runtime"
    parts = fn[4:].split("_")
    if parts[0] == "linear":
        return "head" if "o16" in parts else "linear"
    if parts[0] == "add":
        return f"add_{parts[1]}"
    return "mean_pool" if parts[:2] == ["mean", "pool"] else parts[0]


def _by_family(profile: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for fn, f in profile["kernels"].items():
        fam = op_family(fn)
        c = f["cycles"]
        out[fam] = {**c, "value": out[fam]["value"] + c["value"]} if fam in out else dict(c)
    return out


def times(ratio: dict) -> str:
    return f"{ratio['value']:.2f}x ({ratio['provenance']})"


def per_op_table(R: Results, path: str) -> str:
    """TVM / hand-written modeled cycles per op family for every board x artifact the bench ran both on."""
    res = R.json(path)
    prof = {(r["board"], r["artifact"], r["kernels"], r["schedule"]): r["profile"]
            for r in res["rows"] if "profile" in r}
    hand = {(b, a): p for (b, a, k, _), p in prof.items() if k == "handwritten"}
    pairs = [((b, a, s), p, hand[(b, a)]) for (b, a, k, s), p in prof.items() if k == "tvm" and (b, a) in hand]
    fams = sorted({f for _, p, h in pairs for f in (*_by_family(p), *_by_family(h))} - {"runtime"},
                  key=lambda f: -sum(_by_family(h).get(f, {"value": 0})["value"] for _, _, h in pairs))
    rows, slower, faster = [], {}, {}
    for (board, art, sched), p, h in pairs:
        tf, hf = _by_family(p), _by_family(h)
        ratio = lambda t, hw: figure(t["value"] / hw["value"], "", t["provenance"], "")  # noqa: E731
        cells = []
        for f in fams:
            if f in tf and f in hf and hf[f]["value"]:
                x = ratio(tf[f], hf[f])
                cells.append(times(x))
                if x["value"] > 1.05:
                    slower.setdefault(board, set()).add(f)
                elif x["value"] < 0.95:
                    faster.setdefault(board, set()).add(f)
            else:
                cells.append("—")
        rows.append([board, f"{Path(art).stem}", sched, times(ratio(p["total"]["instructions"],
                                                                   h["total"]["instructions"])),
                     times(ratio(p["total"]["cycles"], h["total"]["cycles"]))] + cells)
    where = "; ".join(f"{b}: slower in {', '.join(sorted(slower.get(b, ())) or ['none'])}, faster in "
                      f"{', '.join(sorted(faster.get(b, ())) or ['none'])}"
                      for b in dict.fromkeys(k[0] for k, _, _ in pairs))
    return (f"TVM / hand-written per op family, one fixed-compute inference each (`{path}`, commit "
            f"{res['provenance']['commit'][:7]}): the profile's functions summed per op (`op_family`: TVM names its "
            "kernels by shape, the hand-written back end by variant; ops the hand-written back end leaves to the "
            "reference kernels, e.g. the heads and mean pooling, compare TVM with those). Where TVM needs > 5 % more or "
            f"fewer cycles (per board, over its artifacts): {where}.\n\n"
            + table(["board", "artifact", "TVM schedule", "whole: instructions", "whole: cycles"] + fams, rows))


def _plot_backends(R: Results, bars: list[tuple]) -> None:
    """Cycles per whole inference, grouped by board and precision, one bar per kernel back end."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = list(dict.fromkeys(b[0] for b in bars))
    kernels = list(dict.fromkeys(b[1] for b in bars))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    w = 0.8 / len(kernels)
    for i, k in enumerate(kernels):
        ys = [next((b[2]["value"] for b in bars if b[0] == g and b[1] == k), np.nan) for g in groups]
        ax.bar(np.arange(len(groups)) + (i - (len(kernels) - 1) / 2) * w, ys, w, label=k)
    provs = sorted({b[2]["provenance"] for b in bars})
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(f"cycles per inference ({', '.join(provs)})")
    ax.legend(fontsize=7)
    ax.set_title("Whole inference by kernel back end (ECG-shaped model, fixed compute)", fontsize=9)
    save_atomic(fig, figure_path(R, f"{REPORT_DIR}/backends_whole_inference.png"))


def _plot_boards(R: Results, rows: list[tuple]) -> None:
    """Latency and energy per board, all N_sup steps vs learned halting (log scale: GAP9 is ~10x the M4)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    x = np.arange(len(rows))
    provs = sorted({r[1] for r in rows})
    for ax, key, scale, unit in ((axes[0], "latency_mean_s", 1e3, "ms"), (axes[1], "energy_mean_j", 1e6, "uJ")):
        ax.bar(x - 0.2, [r[2][key] * scale for r in rows], 0.4, label="fixed compute (N_sup steps)")
        ax.bar(x + 0.2, [r[3][key] * scale for r in rows], 0.4, label="learned halting (artifact's tau)")
        ax.set_xticks(x, [r[0] for r in rows])
        ax.set_yscale("log")
        ax.set_ylabel(f"mean {key.split('_')[0]} per inference, {unit} ({', '.join(provs)})")
    axes[0].legend(fontsize=7)
    fig.suptitle("ECG W8A8 per board (halting studies)", fontsize=9)
    save_atomic(fig, figure_path(R, f"{REPORT_DIR}/boards_latency_energy.png"))


# ---------------------------------------------------------------- 4 halting

def _device_check(study: str, be: dict) -> str:
    if "note" in be:
        return f"{study}: {be['note']}"
    return f"{study}: {be['all_steps_bit_exact']}/{be['inputs']} inputs bit-exact at every step"


def _halting(R: Results, notes: list[str]) -> str:
    def compare() -> str:
        c = R.json("reports/halting/ecg_compare/compare.json")
        rows = []
        for r in c["rows"]:
            h = R.json(f"{r['study']}/halting.json")
            prov = r["cost"]["provenance"]
            learned = h["variants"][r["variant"]]["points"][r["operating_points"]["learned"]["point"]]
            _, tau = full_and_tau(h, r["variant"])
            acc = lambda q: pct(figure(q["accuracy"], "", "measured", GOLDEN), ci=False)
            rows.append([f"{Path(r['study']).name}", r["variant"], r["full"]["n"],
                         f"{acc(r['full'])}, {num(figure(r['full']['cost_mean'], 'cycles', prov, ''))}",
                         f"tau={learned['value']}: {acc(learned)}, {device_steps(learned)}",
                         fmt(figure(100 * r["operating_points"]["learned"]["saving_vs_full"], "%", prov, "")),
                         f"tau={tau['value']}: {acc(tau)}, {device_steps(tau)}",
                         fmt(figure(100 * tau["cost_mean"] / r["full"]["cost_mean"], "%", prov, "")),
                         num(h["worst_case_bound"])])
        bits = "; ".join(_device_check(Path(s).name, R.json(f"{s}/halting.json")["bit_exact"])
                         for s in dict.fromkeys(r["study"] for r in c["rows"]))
        return ("Each input runs all N_sup steps once on the device; every policy is replayed from the per-step "
                "records (docs/halting.md). Learned operating point: the cheapest learned-head threshold within "
                f"1 point of full compute. Device checks: {bits}.\n\n"
                + table(["study", "variant", "inputs", "full compute (accuracy, mean cycles)",
                         "learned op. point", "saving vs full", "learned at the artifact's tau", "cost vs full",
                         "worst case (N_sup)"], rows)
                + "\n\nPer-study plots: " + ", ".join(
                    f"[{s} pareto]({_link(R, f'reports/halting/{s}/pareto.png')}) / "
                    f"[latency CDF]({_link(R, f'reports/halting/{s}/latency_cdf.png')})"
                    for s in HALTING_STUDIES if R.exists(f"reports/halting/{s}/pareto.png")))

    return block(R, _fig("halting-compare"), compare, notes)


# ---------------------------------------------------------------- 5 GAP9

def _gap9(R: Results, notes: list[str]) -> str:
    def deploy() -> str:
        rows, pub = [], None
        for f in _fig("gap9-deploy").reads:
            d = R.json(f)
            g, mem, m = d["functional"]["golden"], d["memory"], d["modeled"]
            rows.append([f"`{d['artifact']['path']}` ({d['artifact']['precision']})",
                         f"{d['schedule'].split()[0]}, {d.get('linear_compute', 'hand-written')}",
                         f"{g['runs'] - g['mismatches']}/{g['runs']} runs, {g['inputs']} inputs",
                         num(mem["l1_peak"]), num(mem["l2"]),
                         num(m["fixed_compute"]["cycles"]), num(m["fixed_compute"]["latency_ms"]),
                         num(m["fixed_compute"]["energy_uj"]),
                         f"{num(m['halting']['latency_ms'])}, {num(m['halting']['energy_uj'])}, "
                         f"mean {steps(m['halting']['mean_steps'], 'measured', GOLDEN)}"])
            pub = d.get("published")
        cal = m["calibration"]
        text = (f"**Modeled, not measured**: no GAP9 device here. Functional: {d['functional']['what']} (golden "
                f"check 0 LSB). Cycles: {m['model']}; calibration vs published PULP-NN "
                f"{cal['pulpnn_published_macs_per_cycle']} MAC/cycle: modeled {cal['modeled_macs_per_cycle']} "
                f"(relative error {cal['relative_error']}, {cal.get('layer_note', '')}).\n\n"
                + table(["artifact", "schedule, per-core linear kernels", "bit-exact vs golden (functional QEMU)",
                         "L1 peak", "L2", "cycles, fixed",
                         "latency, fixed", "energy, fixed", "learned halting: latency, energy (mean steps)"], rows)
                + f"\n\nInputs: {d['inputs']['count']} {d['inputs']['kind']}; the halting column depends on the "
                "inputs, so the ECG test-set figure is the GAP9 halting study's (section 4).")
        if pub and "mlperf_tiny_v1" in pub:
            mp = pub["mlperf_tiny_v1"]
            text += ("\n\nPublished GAP9 anchors (label: published, source "
                     f"`{mp['source']}`; other models, for scale only): "
                     + "; ".join(f"{k.replace('_', ' ')} {v['latency_ms']} ms, {v['energy_uj']} uJ"
                                 for k, v in mp.items() if isinstance(v, dict)))
        notes.append("GAP9: every cost is modeled (trm_tvm/gap9/cycles.py); the functional QEMU build checks "
                     "exactness only; no GAP9 board or SDK run yet")
        return text

    def tuning() -> str:
        t = R.json("reports/gap9/tune/summary.json")
        ks = [[f"`{k['kernel']}`", k["calls"], num(k["naive"]), num(k["default"]), num(k["tuned"]),
               fmt(figure(k["tuned"]["value"] / k["default"]["value"], "", k["tuned"]["provenance"], ""))]
              for k in t["kernels"]]
        ws = [[f"{w['artifact']} ({w['precision']})", num(w["naive"]), num(w["default"]), num(w["tuned"]),
               fmt(figure(w["tuned"]["value"] / w["default"]["value"], "", w["tuned"]["provenance"], "")),
               f"{w['tuned_bit_exact']} ({w['verified_runs']} functional runs)"] for w in t["whole"]]
        sr = t["search"]
        return (f"{sr['strategy']}; {sr['trials_per_task']} trials per task, {sr['functional_firmware']} functional "
                f"firmware builds on the 9-hart QEMU, {sr['wall_s']:.0f} s wall (measured on the shared host). "
                f"Cost: {t['cost']}.\n\n"
                + table(["kernel", "calls / inference", "naive", "default", "tuned", "tuned / default"], ks)
                + "\n\nWhole inference (all steps):\n\n"
                + table(["artifact", "naive", "default", "tuned", "tuned / default", "tuned bit-exact vs golden"], ws))

    return "\n".join([block(R, _fig("gap9-deploy"), deploy, notes), block(R, _fig("gap9-tuning"), tuning, notes)])


# ---------------------------------------------------------------- summary

def summary(R: Results, notes: list[str]) -> str:
    """A few headline lines, each computed from the same files as the section it points to."""
    def reference() -> str:
        ev = R.json("checkpoints/ecg/eval.json")
        line = (f"Float ECG TRM ({ev['n_test']:,} test series): {pct(ev['fixed']['accuracy'])} with all "
                f"{ev['fixed']['step']} supervision steps, {pct(ev['halting']['accuracy'])} with learned halting, "
                f"vs {pct(ev['baseline']['accuracy'])} for the same net without recursion and "
                f"{pct(ev['anchor']['accuracy'])} for MiniRocket (section 1)")
        seeds = [R.json(f"checkpoints/{c}/eval.json") for c in ECG_CKPTS if R.exists(f"checkpoints/{c}/eval.json")]
        if len(seeds) > 1:
            line += (f"; over {len(seeds)} training seeds, mean [min, max]: TRM fixed "
                     f"{_spread([e['fixed']['accuracy'] for e in seeds])}, baseline "
                     f"{_spread([e['baseline']['accuracy'] for e in seeds])}")
        return line + "."

    def quant() -> str:
        rows = R.json("reports/quant/ecg/sweep.json")["rows"]
        fp = {r["checkpoint"]: r["acc_halting"] for r in rows if r["config"] == "fp32"}
        def change(cfg):
            d = [100 * (r["acc_halting"] - fp[r["checkpoint"]]) for r in rows if r["config"] == cfg]
            return fmt(figure(statistics.mean(d), "points", rows[0]["provenance"], "sweep"), 2)
        if any(r["config"] == "w4a8-qat-pc" for r in rows):          # the sweep's QAT, over its checkpoints
            qat = change("w4a8-qat-pc")
        else:                                                          # the single QAT artifact's evaluation
            qe = R.json("reports/quant/ecg/w4a8_qat_eval.json")
            q = qe["halting"]
            qat = fmt(figure(100 * (q["quant"]["accuracy"] - q["fp"]["accuracy"]), "points", qe["provenance"],
                               ""), 2)
        return (f"Quantisation (golden model, bit-exact with the device), mean change vs FP32 over {len(fp)} "
                f"checkpoint(s): W8A8 per-channel PTQ {change('w8a8-ptq-pc')}, W4A8 PTQ {change('w4a8-ptq-pc')}, "
                f"W4A8 after QAT {qat} (section 2).")

    def exact() -> str:
        n = ok = 0
        benches = [_fig(f).reads[0] for f in ("deploy-exactness", "deploy-exactness-random",
                                              "deploy-exactness-handwritten", "deploy-ecg-shapes")]
        benches += [p for p in _fig("deploy-whole").reads if R.exists(p)][:1]
        for f in benches:
            for r in R.json(f)["rows"]:
                for m in r["modes"].values():
                    n, ok = n + m["checked"], ok + m["bit_exact"]
        for st in HALTING_STUDIES:
            be = R.json(f"reports/halting/{st}/halting.json")["bit_exact"]
            if "note" not in be:
                n, ok = n + be["inputs"], ok + be["all_steps_bit_exact"]
        return (f"Exactness: {ok:,} of {n:,} inferences on the emulated Cortex-M boards (bench sessions, and every "
                "supervision step of the halting studies) matched the integer golden model with 0 LSB difference "
                "(sections 3, 4).")

    def m4() -> str:
        h = R.json("reports/halting/ecg_w8a8_cortex-m4/halting.json")
        full, tau = full_and_tau(h)
        prov = h["cost"]["provenance"]
        line = (f"Cortex-M4 (its timing model, STM32L4R5 datasheet energy), ECG W8A8, hand-written kernels as of the "
                f"halting study (commit {h['provenance']['commit'][:7]}): "
                f"{num(figure(full['latency_mean_s'] * 1e3, 'ms', prov, ''))} and "
                f"{num(figure(full['energy_mean_j'] * 1e3, 'mJ', prov, ''))} per inference with all steps, "
                f"{num(figure(tau['latency_mean_s'] * 1e3, 'ms', prov, ''))} and "
                f"{num(figure(tau['energy_mean_j'] * 1e3, 'mJ', prov, ''))} with learned halting "
                f"({device_steps(tau)} on average)")
        reads = _fig("deploy-tuned-whole").reads + _fig("deploy-whole").reads          # newest kernels first
        whole = next((p for p in reads if R.exists(p)), None)
        if whole:
            res = R.json(whole)
            cyc = {(r["board"], Path(r["artifact"]).stem, r["kernels"], r["schedule"]): r["profile"]["total"]["cycles"]
                   for r in res["rows"] if "profile" in r}
            hw = cyc.get(("cortex-m4", "ecg_w8a8", "handwritten", "n/a"))
            tvm = [(sch, c) for (b, a, k, sch), c in cyc.items() if (b, a, k) == ("cortex-m4", "ecg_w8a8", "tvm")]
            if hw and tvm:
                line += (f"; with the kernels of {whole} (commit {res['provenance']['commit'][:7]}) one inference "
                         f"takes {num(hw)} hand-written, and TVM "
                         + ", ".join(f"{fmt(figure(c['value'] / hw['value'], 'x', c['provenance'], ''))} that "
                                     f"with its {sch} schedules" for sch, c in tvm))
        return line + " (sections 3, 4)."

    def gap9() -> str:
        m = R.json("reports/gap9/ecg_w8a8/deploy.json")["modeled"]
        fixed, halt = m["fixed_compute"], m["halting"]
        line = (f"GAP9 (modeled only): {num(fixed['latency_ms'])} and {num(fixed['energy_uj'])} per ECG W8A8 "
                f"inference with all steps, {num(halt['latency_ms'])} with learned halting")
        tuned = "reports/gap9/ecg_w8a8_tuned_tir/deploy.json"
        if R.exists(tuned):
            t = R.json(tuned)["modeled"]["fixed_compute"]
            line += (f"; {num(t['latency_ms'])} and {num(t['energy_uj'])} with all steps on the tuned schedules and "
                     "TIR-generated per-core kernels")
        return line + " (section 5)."

    lines = []
    for part in (reference, quant, exact, m4, gap9):
        try:
            lines.append(f"- {part()}")
        except (KeyError, IndexError, TypeError, ValueError, StopIteration, ZeroDivisionError, UserError) as e:
            notes.append(f"summary line '{part.__name__}' could not be computed ({type(e).__name__}: {e})")
    return "\n".join(lines) + "\n"


SECTION_RENDER = {"reference": ("1 The reference TRM (float, host)", _reference),
                  "quant": ("2 Quantisation", _quant),
                  "deploy": ("3 Deployment on the emulated Cortex-M boards", _deploy),
                  "halting": ("4 Learned halting on the device vs fixed compute", _halting),
                  "gap9": ("5 GAP9 (modeled)", _gap9)}
