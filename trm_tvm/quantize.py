"""Quantise a trained TRM into an integer artifact, check its accuracy, or make a random-weight one.

    python -m trm_tvm.quantize run --checkpoint checkpoints/ecg/model.pt --recipe qat/w8a8.yaml --out artifacts/ecg_w8a8.npz [--eval]
        [--linear-multipliers shift32]
    python -m trm_tvm.quantize eval --checkpoint checkpoints/ecg/model.pt --artifact artifacts/ecg_w8a8.npz [--json out.json]
    python -m trm_tvm.quantize mixed --checkpoint checkpoints/ecg/model.pt --budget-kb 20 --out artifacts/ecg_mixed.npz --json reports/quant/ecg/mixed.json
    python -m trm_tvm.quantize sweep --checkpoint checkpoints/ecg/model.pt [more seeds] --out reports/quant/ecg [--qat [w4a8 ...]]
    python -m trm_tvm.quantize random --out /tmp/r.npz --hidden 48 --tokens 32 --classes 5 [--bits 4] ...

Accuracy is the golden model's (bit-exact with what the device computes) against the float model on the task's
test set, with 95 % Wilson intervals and the paired McNemar test.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from trm_tvm.errors import UserError, atomic_write_text, cli_main
from trm_tvm.jsonio import REPO_ROOT, run_info, write_json



def load_recipe(path: str | Path, method: str | None = None, linear_multipliers: str | None = None):
    from trm_tvm.config import from_dict, load_yaml_mapping
    from trm_tvm.quant.ptq import QuantConfig

    path = Path(path)
    data = load_yaml_mapping(path, "recipe", "qat/w8a8.yaml")
    qc = from_dict(QuantConfig, data, where=path.name)
    if method:
        qc = dataclasses.replace(qc, method=method)
    if linear_multipliers:
        from trm_tvm.quant.spec import LINEAR_MULTIPLIER_ENCODINGS
        if linear_multipliers not in LINEAR_MULTIPLIER_ENCODINGS:
            raise UserError(f"--linear-multipliers {linear_multipliers!r} is not a multiplier encoding",
                            f"use one of {', '.join(LINEAR_MULTIPLIER_ENCODINGS)}")
        qc = dataclasses.replace(qc, linear_multipliers=linear_multipliers)
    try:
        qc.check()
    except ValueError as e:
        raise UserError(f"recipe {path}: {e}", "fix the recipe") from None
    return qc


def qat_settings(qc):
    from trm_tvm.config import from_dict
    from trm_tvm.quant.qat import QatSettings

    return from_dict(QatSettings, qc.qat or {}, where="recipe qat")


def _checkpoint(path: str):
    from trm_tvm.model import load_checkpoint
    from trm_tvm.quant.float_ref import Dims

    model, cfg, ckpt = load_checkpoint(path)
    params = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    return params, Dims.from_model(cfg.model, model.shape), cfg, model


def _dataset(cfg):
    from trm_tvm.tasks import load_task
    return load_task(cfg.task)


def calibration_indices(n_train: int, qc) -> np.ndarray:
    """The recipe's calibration samples: a seeded random subset of the train split."""
    rng = np.random.default_rng(qc.seed)
    return np.sort(rng.choice(n_train, min(qc.calib_samples, n_train), replace=False))


def _sha(path) -> str:
    from trm_tvm.quant.artifact import file_sha256
    return file_sha256(path)


def _rel(p: str | Path) -> str:
    p = Path(p).resolve()
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def cmd_run(a) -> int:
    from trm_tvm.quant.ptq import quantise

    qc = load_recipe(a.recipe, a.method, a.linear_multipliers)
    if a.calib_samples:
        qc = dataclasses.replace(qc, calib_samples=a.calib_samples)
    if a.per_tensor:
        qc = dataclasses.replace(qc, per_channel=False)
    qs = qat_settings(qc)
    if a.qat_minutes:
        qs = dataclasses.replace(qs, wall_time_min=a.qat_minutes)
    if a.no_deep_supervision:
        qs = dataclasses.replace(qs, deep_supervision=False)
    params, dims, cfg, model = _checkpoint(a.checkpoint)
    data = _dataset(cfg)
    idx = calibration_indices(len(data.x_train), qc)
    t0 = time.time()
    provenance = {
        "source": {"checkpoint": _rel(a.checkpoint), "sha256": _sha(a.checkpoint)},
        "recipe_file": _rel(a.recipe),
        "calibration": {"data": f"{cfg.task.name} train split", "samples": int(len(idx)), "seed": qc.seed},
        "command": "python -m trm_tvm.quantize " + " ".join(shlex.quote(s) for s in a.argv),
        "run": run_info()}
    art = quantise(params, dims, data.x_train[idx], qc, cfg.model.halt_threshold, provenance=provenance)
    if qc.method == "qat":
        from trm_tvm.quant.ptq import scales_of
        from trm_tvm.quant.qat import qat

        art, info = qat(model.train(), dims, scales_of(art), qc, qs, data.x_train, data.y_train,
                        cfg.model.halt_threshold)
        art.header["provenance"] = {**provenance, "qat": {**dataclasses.asdict(qs), **info}}
    sha = art.save(a.out)
    wb = art.weight_bytes()
    print(f"wrote {a.out} ({qc.name}, {sum(wb.values())} constant bytes: {wb}; sha256 {sha[:12]}) "
          f"in {time.time() - t0:.1f} s")
    if a.eval:
        return _evaluate(art, params, dims, cfg, data, a)
    return 0


def cmd_eval(a) -> int:
    from trm_tvm.quant.artifact import Artifact

    art = Artifact.load(a.artifact)
    params, dims, cfg, _ = _checkpoint(a.checkpoint)
    if art.dims != dims:
        raise UserError(f"artifact {a.artifact} was not made from a model of this shape ({art.dims} vs {dims})",
                        "pass the checkpoint the artifact was quantised from")
    return _evaluate(art, params, dims, cfg, _dataset(cfg), a)


def _evaluate(art, params, dims, cfg, data, a) -> int:
    from trm_tvm.provenance import figure, fmt
    from trm_tvm.quant.evaluation import compare, float_run, golden_run

    x, y = data.x_test, data.y_test
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    t0 = time.time()
    fp = float_run(params, dims, x, art.header["halting"]["threshold"])
    q = golden_run(art, x)
    res = compare(fp, q, y)
    h = res["halting"]
    src = "golden model / numpy float reference on the host"
    acc = {k: figure(round(100 * h[k]["accuracy"], 2), "%", "measured", src) for k in ("fp", "quant")}
    print(f"{art.header['precision']} on {len(y)} {cfg.task.name} test samples, learned halting: "
          f"FP {fmt(acc['fp'])}, quantised {fmt(acc['quant'])}, McNemar p = {h['mcnemar']['p_value']:.3g}, "
          f"agreement {100 * h['agreement']:.1f} %, mean steps FP {h['mean_steps']['fp']:.2f} / "
          f"quantised {h['mean_steps']['quant']:.2f} ({time.time() - t0:.0f} s)")
    for s in res["fixed"]:
        print(f"  fixed {s['steps']} step(s): FP {100 * s['fp']['accuracy']:.2f} %, "
              f"quantised {100 * s['quant']['accuracy']:.2f} %, agreement {100 * s['agreement']:.1f} %")
    if a.json:
        write_json(a.json, {"artifact": art.path, "precision": art.header["precision"], "task": cfg.task.name,
                            "n_test": int(len(y)), "provenance": "measured", "source": src, **res,
                            "run": run_info()})
    return 0


def cmd_mixed(a) -> int:
    from trm_tvm.quant import mixed
    from trm_tvm.quant.ptq import build, calibrate

    qc = load_recipe(a.recipe, "ptq")
    params, dims, cfg, _ = _checkpoint(a.checkpoint)
    data = _dataset(cfg)
    idx = calibration_indices(len(data.x_train), qc)
    scales = calibrate(params, dims, data.x_train[idx], qc)
    mon = np.random.default_rng(qc.seed + 1).choice(len(data.x_train), min(a.monitor, len(data.x_train)),
                                                    replace=False)
    xm, ym = data.x_train[mon], data.y_train[mon]
    thr = cfg.model.halt_threshold
    sens = mixed.sensitivity(params, dims, scales, qc, xm, ym, thr)
    order = mixed.greedy_order(params, dims, sens)
    pts = mixed.front(params, dims, scales, qc, order, xm, ym, thr)
    try:
        chosen = mixed.assign(params, dims, order, qc, int(a.budget_kb * 1024))
    except ValueError as e:
        raise UserError(str(e), "raise --budget-kb") from None
    provenance = {"source": {"checkpoint": _rel(a.checkpoint), "sha256": _sha(a.checkpoint)},
                  "recipe_file": _rel(a.recipe),
                  "calibration": {"data": f"{cfg.task.name} train split", "samples": int(len(idx)), "seed": qc.seed},
                  "mixed": {"budget_kb": a.budget_kb, "monitor_samples": int(len(mon)),
                            "four_bit": sorted(k for k, v in chosen.weight_bits.items() if v == 4)},
                  "command": "python -m trm_tvm.quantize " + " ".join(shlex.quote(s) for s in a.argv),
                  "run": run_info()}
    art = build(params, dims, scales, chosen, thr, provenance)
    art.save(a.out)
    wbytes = mixed.weight_bytes(params, chosen, dims)
    k = len(provenance["mixed"]["four_bit"])
    print(f"wrote {a.out}: {k} of {len(order)} layers at 4 bits, {wbytes} weight bytes <= {a.budget_kb} KB; "
          f"monitor accuracy {100 * pts[k]['accuracy']:.2f} % (all 8-bit {100 * pts[0]['accuracy']:.2f} %, "
          f"all 4-bit {100 * pts[-1]['accuracy']:.2f} %; measured, golden model on {len(mon)} train samples)")
    if a.json:
        write_json(a.json, {"provenance": "measured", "source": "golden model on held-out train samples",
                            "sensitivity": sens, "order": order, "front": pts,
                            "chosen": provenance["mixed"], "weight_bytes": wbytes, "run": run_info()})
    return 0


class _SweepCheckpoint:
    """One checkpoint of a sweep: its model, test split and cache directory; the float run only when needed."""

    def __init__(self, path: str, out: Path, limit: int):
        from trm_tvm.quant.mixed import weight_layers

        self.path = path
        self.params, self.dims, self.cfg, _ = _checkpoint(path)
        sha = _sha(path)
        self.tag = f"{Path(path).parent.name}:{sha[:8]}"
        self.data = _dataset(self.cfg)
        self.x, self.y = self.data.x_test, self.data.y_test
        if limit:
            self.x, self.y = self.x[:limit], self.y[:limit]
        self.thr = self.cfg.model.halt_threshold
        self.cache = out / "cache" / sha[:16] / (f"limit{limit}" if limit else "full")
        self.fp_bytes = int(4 * sum(self.params[n].size for n in weight_layers(self.dims)))
        self._fp = None

    @property
    def fp(self) -> dict:
        from trm_tvm.quant.evaluation import float_run
        if self._fp is None:
            self._fp = float_run(self.params, self.dims, self.x, self.thr)
        return self._fp


def _sweep_entry(ck: _SweepCheckpoint, c, qat_minutes: float = 0) -> dict:
    """Quantise (and fine-tune) one configuration of one checkpoint and compare it with its FP32 model. QAT
    artifacts are kept beside the cache entry (small, and the dynamics study reuses them)."""
    from trm_tvm.quant.evaluation import compare, golden_run
    from trm_tvm.quant.ptq import quantise, scales_of
    from trm_tvm.quant.qat import qat

    qc = dataclasses.replace(load_recipe(f"qat/{c.recipe}.yaml", c.method), per_channel=c.per_channel)
    idx = calibration_indices(len(ck.data.x_train), qc)
    art = quantise(ck.params, ck.dims, ck.data.x_train[idx], qc, ck.thr)
    extra = {}
    if c.method == "qat":
        qs = qat_settings(qc)
        if qat_minutes:
            qs = dataclasses.replace(qs, wall_time_min=qat_minutes)
        model = _checkpoint(ck.path)[3]
        art, info = qat(model.train(), ck.dims, scales_of(art), qc, qs, ck.data.x_train, ck.data.y_train, ck.thr)
        art.save(ck.cache / f"{c.name}.npz")
        extra = {"qat": {**dataclasses.asdict(qs), **info}}
    print(f"sweep {ck.tag} {c.name} ...", flush=True)
    res = compare(ck.fp, golden_run(art, ck.x), ck.y)
    return {"checkpoint": ck.tag, "config": c.name, "recipe": c.recipe, "method": c.method,
            "granularity": "per-channel" if c.per_channel else "per-tensor", "act_bits": qc.act_bits,
            "weight_bytes": art.weight_bytes()["weights"], **res, **extra, "run": run_info()}


def cmd_sweep(a) -> int:
    from trm_tvm.quant import sweep
    from trm_tvm.quant.evaluation import compare

    qat_recipes = sweep.RECIPES if a.qat == [] else tuple(a.qat or ())
    unknown = sorted(set(qat_recipes) - set(sweep.RECIPES))
    if unknown:
        raise UserError(f"unknown --qat recipe(s) {', '.join(unknown)}", f"use some of {', '.join(sweep.RECIPES)}")
    out, t0 = Path(a.out), time.time()
    todo = sweep.configs(qat_recipes)
    print(f"sweep: {len(a.checkpoint)} checkpoint(s) x (FP32 + {len(todo)} configurations), configuration by "
          f"configuration over the checkpoints; each PTQ configuration costs one golden pass over the test set, "
          f"each QAT one wall-time budget ({f'{a.qat_minutes:g} min' if a.qat_minutes else 'its recipe'}); "
          f"cached in {out / 'cache'}, so a rerun resumes"
          + (f"; stops starting new ones after {a.budget_h} h" if a.budget_h else ""))
    cks = [_SweepCheckpoint(p, out, a.limit) for p in a.checkpoint]
    entries = {(ck.tag, "fp32"): sweep.cached(ck.cache / "fp32.json", lambda ck=ck: {
        "checkpoint": ck.tag, "config": "fp32", "weight_bytes": ck.fp_bytes, **compare(ck.fp, ck.fp, ck.y)})
        for ck in cks}
    stopped = False
    for c in todo:
        for ck in cks:
            if sweep.over_budget(t0, a.budget_h) and not (ck.cache / f"{c.name}.json").is_file():
                stopped = True
                continue
            entries[(ck.tag, c.name)] = sweep.cached(ck.cache / f"{c.name}.json",
                                                     lambda ck=ck, c=c: _sweep_entry(ck, c, a.qat_minutes))
    order = ["fp32"] + [c.name for c in todo]
    table = sweep.rows([entries[(ck.tag, name)] for ck in cks for name in order if (ck.tag, name) in entries])
    summ = sweep.summary(table)
    verdicts = [sweep.verdict(table, crit) for crit in sweep.CRITERIA]
    spent = sum(float(r["seconds"] or 0) for r in table)
    untimed = sum(r["seconds"] == "" for r in table)
    cost = (f"{spent / 60:.1f} min of wall time in the cached entries" +
            (f" ({untimed} entries computed before timing was recorded)" if untimed else "") +
            f"; this run {(time.time() - t0) / 60:.1f} min")
    sweep.write_csv(out / "sweep.csv", table)
    write_json(out / "sweep.json", {"provenance": "measured", "source": "golden model (bit-exact with the device) "
                                    "and numpy float reference on the host", "rows": table, "summary": summ,
                                    "verdicts": verdicts, "cost": cost, "complete": not stopped, "run": run_info()})
    n_test = table[0]["n_test"]
    atomic_write_text(out / "summary.md", "# Quantisation sweep: " + ", ".join(ck.tag for ck in cks) + "\n\n"
                      + sweep.report_md(table, summ, verdicts, n_test)
                      + f"\nCost: {cost}." + ("" if not stopped else " Budget reached: rerun to continue.") + "\n")
    sweep.plot(out / "sweep.png", table)
    for s in summ:
        print(f"  {s['config']:>16}: {s['acc_mean']:.2f} % [{s['acc_min']:.2f}, {s['acc_max']:.2f}] over "
              f"{s['seeds']} checkpoint(s) (measured), change vs FP {s['delta_mean']:+.2f} points, "
              f"{s['weight_bytes']} weight bytes, McNemar p " + ", ".join(f"{p:.2g}" for p in s["mcnemar_p"]))
    for v in verdicts:
        print("  " + v["line"])
    print(f"wrote {out}/sweep.csv, sweep.json, summary.md, sweep.png; {cost}"
          + (" (budget reached: rerun to continue)" if stopped else ""))
    return 0


def cmd_random(a) -> int:
    from trm_tvm.quant.fixtures import random_artifact

    bits = a.bits if a.bits in (4, 8) else None
    if bits is None:
        raise UserError(f"--bits must be 4 or 8, got {a.bits}", "use --bits 8 or --bits 4")
    art, _, _ = random_artifact(hidden=a.hidden, tokens=a.tokens, classes=a.classes, input_kind=a.input_kind,
                                n=a.n, T=a.T, N_sup=a.N_sup, bits=bits, state_scale_mode=a.state_scale_mode,
                                seed=a.seed, channels=a.channels, patch=a.patch, vocab=a.vocab, layers=a.layers)
    sha = art.save(a.out)
    print(f"wrote {a.out} (random weights, seed {a.seed}, {sum(art.weight_bytes().values())} constant bytes, "
          f"sha256 {sha[:12]})")
    return 0


@cli_main
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.quantize", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="PTQ a checkpoint with a recipe into an artifact")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--recipe", required=True, help="qat/<recipe>.yaml")
    r.add_argument("--out", required=True, help="artifact path (.npz)")
    r.add_argument("--calib-samples", type=int, default=0, help="override the recipe's calibration sample count")
    r.add_argument("--method", choices=("ptq", "qat"), help="override the recipe's method")
    r.add_argument("--linear-multipliers", metavar="ENCODING",
                   help="override the recipe's linear_multipliers: normalised | shift32 (sh = 32 where precise)")
    r.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor instead of the recipe's")
    r.add_argument("--qat-minutes", type=float, default=0, help="override the recipe's QAT wall-time budget")
    r.add_argument("--no-deep-supervision", action="store_true",
                   help="QAT trains on the last supervision step's loss only (the recipe's qat.deep_supervision)")
    r.add_argument("--eval", action="store_true", help="then compare golden vs float accuracy on the test set")
    for p in (r, sub.add_parser("eval", help="golden vs float accuracy of an artifact on the test set")):
        p.add_argument("--json", help="write the comparison here")
        p.add_argument("--limit", type=int, default=0, help="only the first N test samples")
        if p is not r:
            p.add_argument("--checkpoint", required=True)
            p.add_argument("--artifact", required=True)
    mx = sub.add_parser("mixed", help="per-layer 4/8-bit assignment meeting a weight-flash budget")
    mx.add_argument("--checkpoint", required=True)
    mx.add_argument("--recipe", default="qat/mixed.yaml", help="observers etc.; its weight_bits are replaced")
    mx.add_argument("--budget-kb", type=float, required=True, help="device weight bytes / 1024")
    mx.add_argument("--out", required=True)
    mx.add_argument("--json", help="sensitivity, drop order and the accuracy-vs-bytes front")
    mx.add_argument("--monitor", type=int, default=500, help="held-out train samples for the accuracies")
    sw = sub.add_parser("sweep", help="accuracy-precision curves and CSV (resumable)")
    sw.add_argument("--checkpoint", required=True, nargs="+", help="one or more (e.g. 3 seeds)")
    sw.add_argument("--out", required=True, help="reports/quant/<task>")
    sw.add_argument("--qat", nargs="*", metavar="RECIPE",
                    help="also QAT (per-channel) of these recipes; no name: all of them")
    sw.add_argument("--qat-minutes", type=float, default=0,
                    help="QAT wall-time budget per configuration instead of the recipe's (recorded in each entry)")
    sw.add_argument("--limit", type=int, default=0, help="only the first N test samples")
    sw.add_argument("--budget-h", type=float, default=0, help="start no new configuration after this many hours")
    rnd = sub.add_parser("random", help="a random-weight artifact of any size (tests, compile work)")
    rnd.add_argument("--out", required=True)
    for name, default in (("hidden", 16), ("tokens", 8), ("classes", 5), ("n", 2), ("T", 2), ("N-sup", 4),
                          ("channels", 1), ("patch", 8), ("vocab", 10), ("layers", 2), ("bits", 8), ("seed", 0)):
        rnd.add_argument(f"--{name}", type=int, default=default)
    rnd.add_argument("--input-kind", choices=("series", "tokens"), default="series")
    rnd.add_argument("--state-scale-mode", choices=("shared", "per_step"), default="shared")
    a = ap.parse_args(argv)
    a.argv = argv
    return {"run": cmd_run, "eval": cmd_eval, "mixed": cmd_mixed, "sweep": cmd_sweep, "random": cmd_random}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
