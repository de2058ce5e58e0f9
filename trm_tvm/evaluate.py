"""Evaluate a checkpoint: accuracy and macro-F1 with 95 % intervals, per supervision step, with fixed compute and
with learned halting; the same-size non-recursive baseline; MiniRocket as the classic anchor (time series);
Sudoku cell accuracy on blanks and puzzle accuracy per clue-count bin.

    python -m trm_tvm.evaluate --checkpoint checkpoints/ecg/model.pt --json runs/ecg/eval.json [--data f] [--limit N]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
import torch

from trm_tvm.errors import UserError, cli_main
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.markdown import table
from trm_tvm.model import TRM, load_baseline, load_checkpoint
from trm_tvm.provenance import figure, fmt

HOST = "PyTorch FP32 on the host"
SUBSET = 200          # the stored accuracy of the first SUBSET test samples lets tests re-check a checkpoint fast


# -- running the model -------------------------------------------------------------------------------------------
@torch.no_grad()
def run_model(model: TRM, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every supervision step (N_sup, N, [L,] classes) and halting logits (N_sup, N)."""
    model.eval()
    logits, qs = [], []
    for i in range(0, len(x), batch_size):
        steps = model(torch.as_tensor(x[i: i + batch_size]))
        logits.append(torch.stack([s.logits for s in steps]))
        qs.append(torch.stack([s.q for s in steps]))
    return torch.cat(logits, 1).numpy(), torch.cat(qs, 1).numpy()


def halting_step(q: np.ndarray, threshold: float) -> np.ndarray:
    """0-based step each sample stops at: the first with sigmoid(q) >= threshold, else the last."""
    stop = 1.0 / (1.0 + np.exp(-q)) >= threshold
    stop[-1] = True
    return stop.argmax(axis=0)


# -- statistics ----------------------------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, c - h), min(1.0, c + h)


def macro_f1(pred: np.ndarray, y: np.ndarray, classes: int) -> float:
    f1s = []
    for c in range(classes):
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        if denom:
            f1s.append(2 * tp / denom)
    return float(np.mean(f1s)) if f1s else 0.0


def bootstrap_f1(pred: np.ndarray, y: np.ndarray, classes: int, reps: int = 400) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    vals = [macro_f1(pred[i], y[i], classes) for i in (rng.integers(0, len(y), len(y)) for _ in range(reps))]
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def cell_proportion(right: np.ndarray, counted: np.ndarray, what: str, reps: int = 400) -> dict:
    """Accuracy over the counted cells of many puzzles (right, counted: (N, 81) bool). Cells of one puzzle are not
    independent, so the 95 % interval resamples whole puzzles (bootstrap), not cells."""
    k, n = (right & counted).sum(axis=1), counted.sum(axis=1)
    idx = np.random.default_rng(0).integers(0, len(n), (reps, len(n)))
    ratios = k[idx].sum(axis=1) / np.maximum(n[idx].sum(axis=1), 1)
    return {**figure(round(k.sum() / max(n.sum(), 1), 5), "", "measured", f"{HOST}, {what}, puzzle bootstrap interval"),
            "ci95": [round(float(np.percentile(ratios, 2.5)), 5), round(float(np.percentile(ratios, 97.5)), 5)],
            "n": int(n.sum()), "puzzles": int(len(n))}


def proportion(k: int, n: int, what: str) -> dict:
    lo, hi = wilson(int(k), int(n))
    return {**figure(round(k / max(n, 1), 5), "", "measured", f"{HOST}, {what}"), "ci95": [round(lo, 5), round(hi, 5)],
            "n": int(n)}


def classification_scores(pred: np.ndarray, y: np.ndarray, classes: int, what: str) -> dict:
    f1 = macro_f1(pred, y, classes)
    lo, hi = bootstrap_f1(pred, y, classes)
    return {"accuracy": proportion(int(np.sum(pred == y)), len(y), what),
            "macro_f1": {**figure(round(f1, 5), "", "measured", f"{HOST}, {what}, bootstrap interval"),
                         "ci95": [round(lo, 5), round(hi, 5)]}}


def sudoku_scores(pred: np.ndarray, y: np.ndarray, puzzles: np.ndarray, groups: np.ndarray, what: str) -> dict:
    """Cell accuracy on blanks and puzzle accuracy (every cell right), overall and per clue-count bin of 5."""
    blank = puzzles == 0
    right = pred == y
    solved = right.all(axis=1)
    out = {"cell_accuracy_blanks": cell_proportion(right, blank, what),
           "puzzle_accuracy": proportion(int(solved.sum()), len(y), what), "per_clue_bin": []}
    for lo in range(int(groups.min()) // 5 * 5, int(groups.max()) + 1, 5):
        m = (groups >= lo) & (groups < lo + 5)
        if m.any():
            out["per_clue_bin"].append({"clues": [lo, lo + 4],
                                        "cell_accuracy_blanks": cell_proportion(right[m], blank[m], what),
                                        "puzzle_accuracy": proportion(int(solved[m].sum()), int(m.sum()), what)})
    return out


def scores(pred, y, classes, what, puzzles=None, groups=None) -> dict:
    if puzzles is not None:
        return sudoku_scores(pred, y, puzzles, groups, what)
    return classification_scores(pred, y, classes, what)


def headline(s: dict) -> dict:
    """The one proportion a table shows: accuracy, or Sudoku cell accuracy on blanks."""
    return s.get("accuracy") or s["cell_accuracy_blanks"]


# -- sizes ---------------------------------------------------------------------------------------------------------
def size_figures(model: TRM, mean_steps: float | None = None) -> dict:
    m = model.macs()
    src = "analytic count of the linear layers"
    out = {"params": figure(model.num_params(), "", "measured", "torch parameter count"),
           "macs_net_call": figure(m["net_call"], "MAC", "measured", src),
           "net_calls_per_step": m["net_calls_per_step"],
           "macs_fixed_inference": figure(m["fixed_inference"], "MAC", "measured", src)}
    if mean_steps is not None:
        out["macs_mean_with_halting"] = figure(round(m["prologue"] + mean_steps * m["per_step"]), "MAC", "measured",
                                               f"{src} x mean supervision steps used on the test set")
    return out


# -- the whole evaluation ------------------------------------------------------------------------------------------
def evaluate_model(model: TRM, x, y, classes: int, threshold: float, puzzles=None, groups=None) -> dict:
    logits, q = run_model(model, x)
    preds = logits.argmax(-1)                                  # (N_sup, N[, L])
    per_step = [{"step": k + 1, **scores(preds[k], y, classes, f"fixed {k + 1} supervision steps", puzzles, groups)}
                for k in range(len(preds))]
    stop = halting_step(q, threshold)
    halted = preds[stop, np.arange(len(y))]
    mean_steps = float(stop.mean() + 1)
    return {"fixed": per_step[-1], "per_step": per_step,
            "halting": {"threshold": threshold, "mean_steps": round(mean_steps, 4),
                        **scores(halted, y, classes, f"learned halting at sigmoid(q) >= {threshold}", puzzles, groups)},
            "sizes": size_figures(model, mean_steps), "_preds": preds[-1]}


def minirocket_anchor(x_train, y_train, x_test, y_test, classes: int, seed: int = 0) -> dict:
    from aeon.classification.convolution_based import MiniRocketClassifier

    t0 = time.time()
    clf = MiniRocketClassifier(n_jobs=1, random_state=seed)
    clf.fit(x_train.astype(np.float64), y_train)
    pred = np.asarray(clf.predict(x_test.astype(np.float64)))
    return {"name": "MiniRocket (aeon, 10k kernels, ridge)", "seconds": round(time.time() - t0, 1),
            **classification_scores(pred, y_test, classes, "aeon MiniRocket on the same split")}


def evaluate_checkpoint(path, data: str | None = None, limit: int | None = None, anchor: bool = True,
                        baseline: bool = True) -> dict:
    from trm_tvm.tasks import load_external, load_task

    model, cfg, ckpt = load_checkpoint(path)
    torch.set_num_threads(max(1, cfg.train.threads or torch.get_num_threads()))
    meta = ckpt.get("meta", {})
    ds = None
    if data:
        x, y, groups = load_external(cfg.task, data, model.shape, meta.get("class_names", []), meta.get("data_info", {}))
        source = str(data)
    else:
        anchor = anchor and not model.shape.per_token
        ds = load_task(cfg.task, train=anchor, test_limit=limit)
        x, y, groups, source = ds.x_test, ds.y_test, ds.test_groups, "task test split"
    if limit:
        x, y = x[:limit], y[:limit]
        groups = None if groups is None else groups[:limit]
    sudoku = model.shape.per_token
    puzzles = x if sudoku else None
    classes = model.shape.classes
    result = {"checkpoint": str(path), "task": cfg.task.name, "data": source, "n_test": int(len(y)),
              "model": {"hidden": cfg.model.hidden, "layers": cfg.model.layers, "n": cfg.model.n, "T": cfg.model.T,
                        "N_sup": cfg.model.N_sup, "tokens": model.shape.tokens},
              "run": run_info()}
    trm = evaluate_model(model, x, y, classes, cfg.model.halt_threshold, puzzles, groups)
    preds = trm.pop("_preds")
    result.update(trm)
    n_sub = min(SUBSET, len(y))
    result["subset"] = {"first_n": n_sub, "fixed_" + ("cell_accuracy_blanks" if sudoku else "accuracy"):
                        headline(scores(preds[:n_sub], y[:n_sub], classes, "subset", None if not sudoku else
                                        puzzles[:n_sub], None if groups is None else groups[:n_sub]))["value"]}
    base = load_baseline(ckpt) if baseline else None
    if base is not None:
        b = evaluate_model(base, x, y, classes, 1.0, puzzles, groups)
        result["baseline"] = {"what": f"same net, no recursion: n={base.cfg.n}, T={base.cfg.T}, N_sup={base.cfg.N_sup}",
                              **b["fixed"], "sizes": b["sizes"]}
        result["baseline"].pop("step", None)
    if anchor and ds is not None:
        from trm_tvm.train import split_monitor

        x_tr, y_tr, *_ = split_monitor(ds)                       # the very items the TRM trained on
        result["anchor"] = minirocket_anchor(x_tr, y_tr, x, y, classes, cfg.train.seed)
    return result


def table_rows(res: dict) -> list[tuple[str, str, str]]:
    """(what, score with interval, MACs) rows for printing."""
    def cell(s):
        h = headline(s)
        return f"{100 * h['value']:.1f} % [{100 * h['ci95'][0]:.1f}, {100 * h['ci95'][1]:.1f}] ({h['provenance']})"

    sz = res["sizes"]
    rows = [(f"TRM step {s['step']}", cell(s), "") for s in res["per_step"]]
    rows.append(("TRM fixed compute", cell(res["fixed"]), fmt(sz["macs_fixed_inference"])))
    rows.append((f"TRM halting (mean {res['halting']['mean_steps']:.2f} steps)", cell(res["halting"]),
                 fmt(sz["macs_mean_with_halting"])))
    if "baseline" in res:
        rows.append((f"baseline ({res['baseline']['what'].split(': ')[1]})", cell(res["baseline"]),
                     fmt(res["baseline"]["sizes"]["macs_fixed_inference"])))
    if "anchor" in res:
        rows.append((res["anchor"]["name"], cell(res["anchor"]), ""))
    return rows


def print_report(res: dict) -> None:
    metric = "cell accuracy on blanks" if res["task"] == "sudoku" else "accuracy"
    sz = res["sizes"]
    print(f"{res['checkpoint']}: task {res['task']}, {res['n_test']} test items ({res['data']}); "
          f"params {fmt(sz['params'])}, {fmt(sz['macs_net_call'])} per net call")
    print(f"  {'':44s} {metric + ' [95 % interval]':42s} MACs per inference")
    for what, score, macs in table_rows(res):
        print(f"  {what:44s} {score:42s} {macs}")
    if res["task"] == "sudoku":
        for b in res["fixed"]["per_clue_bin"]:
            c, p = b["cell_accuracy_blanks"], b["puzzle_accuracy"]
            print(f"  clues {b['clues'][0]}-{b['clues'][1]}: cells {100 * c['value']:.1f} %, "
                  f"puzzles {100 * p['value']:.1f} % [{100 * p['ci95'][0]:.1f}, {100 * p['ci95'][1]:.1f}] "
                  f"of {p['n']}")


# -- one config over several training seeds ----------------------------------------------------------------------
ANCHOR_MARGIN = 0.02      # "within 2 points of MiniRocket or better" (issue 4)


def compare_seeds(dirs: list[str]) -> dict:
    """Per checkpoint directory (its eval.json): TRM, baseline and anchor with their intervals, and the issue's
    verdicts computed from them -- recursion beats the baseline by more than the interval (TRM's lower 95 % bound
    above the baseline's upper bound), and the TRM within ANCHOR_MARGIN of the anchor or better."""
    from pathlib import Path

    from trm_tvm.config import load_config
    from trm_tvm.jsonio import read_json

    rows, configs = [], []
    for d in dirs:
        cfg = load_config(Path(d) / "config.yaml")
        configs.append(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0)))
        if configs[-1] != configs[0]:
            raise UserError(f"{d} was trained with another config than {dirs[0]} (beyond train.seed)",
                            "compare checkpoints of one config over seeds")
        r = read_json(Path(d) / "eval.json", "stored evaluation")
        row = {"checkpoint": str(d), "seed": cfg.train.seed, "n_test": r["n_test"],
               "trm_fixed": headline(r["fixed"]), "trm_halting": headline(r["halting"]),
               "mean_steps": r["halting"]["mean_steps"]}
        if "baseline" in r:
            b = row["baseline"] = headline(r["baseline"])
            row["beats_baseline_beyond_interval"] = row["trm_fixed"]["ci95"][0] > b["ci95"][1]
        if "anchor" in r:
            a = row["anchor"] = headline(r["anchor"])
            row["within_anchor_margin"] = row["trm_fixed"]["value"] >= a["value"] - ANCHOR_MARGIN - 1e-9   # ties pass
        rows.append(row)
    verdicts = {}
    for key, what in (("beats_baseline_beyond_interval", "recursive TRM (fixed compute) beats its non-recursive "
                       "baseline by more than the 95 % interval"),
                      ("within_anchor_margin", f"TRM (fixed compute) within {100 * ANCHOR_MARGIN:g} points of the "
                       "anchor or better")):
        if all(key in r for r in rows):
            ok = sum(r[key] for r in rows)
            verdicts[key] = {"what": what, "seeds_passing": ok, "seeds": len(rows), "pass": ok == len(rows)}
    return {"rows": rows, "verdicts": verdicts, "run": run_info()}


def compare_markdown(res: dict) -> str:
    def cell(h):
        return f"{100 * h['value']:.2f} [{100 * h['ci95'][0]:.2f}, {100 * h['ci95'][1]:.2f}]"

    rows = res["rows"]
    extra = [k for k in ("baseline", "anchor") if k in rows[0]]
    head = ["checkpoint", "seed", "TRM fixed", "TRM halting (steps)"] + extra
    lines = [table(head, [[r["checkpoint"], r["seed"], cell(r["trm_fixed"]),
                           f"{cell(r['trm_halting'])} ({r['mean_steps']:.2f})"] + [cell(r[k]) for k in extra]
                          for r in rows])]
    means = [np.mean([100 * r[k]["value"] for r in rows]) for k in ["trm_fixed", "trm_halting"] + extra]
    lines.append("| mean | | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    lines.append("")
    for v in res["verdicts"].values():
        lines.append(f"- {v['what']}: {v['seeds_passing']} of {v['seeds']} seeds -> "
                     f"{'PASS' if v['pass'] else 'FAIL'}")
    return "\n".join(lines) + "\n"


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="model.pt written by python -m trm_tvm.train")
    ap.add_argument("--compare", nargs="+", metavar="DIR",
                    help="instead: checkpoint directories of one config over seeds (each with eval.json): "
                         "a table with intervals and the issue's verdicts")
    ap.add_argument("--json", help="write the evaluation JSON here")
    ap.add_argument("--data", help="your own test set: a UCR/UEA .ts file, or Sudoku lines '<puzzle> <solution>'")
    ap.add_argument("--limit", type=int, help="evaluate only the first N test items")
    ap.add_argument("--no-anchor", action="store_true", help="skip MiniRocket")
    ap.add_argument("--no-baseline", action="store_true", help="skip the non-recursive baseline")
    args = ap.parse_args(argv)
    if args.compare:
        res = compare_seeds(args.compare)
        print("All figures measured (PyTorch FP32 on the host, from each eval.json); [95 % intervals].")
        print(compare_markdown(res), end="")
        if args.json:
            write_json(args.json, res)
        return 0
    if not args.checkpoint:
        raise UserError("pass --checkpoint <model.pt> (or --compare <dirs>)", "see python -m trm_tvm.evaluate -h")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be positive, got {args.limit}", "drop it to evaluate everything")
    res = evaluate_checkpoint(args.checkpoint, args.data, args.limit, not args.no_anchor, not args.no_baseline)
    print_report(res)
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
