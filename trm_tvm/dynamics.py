"""How quantisation changes the recursion: state drift per net call, per-step accuracy and loss, halting, FP vs
quantised (the golden model, i.e. what the device computes).

    python -m trm_tvm.dynamics --checkpoint checkpoints/ecg/model.pt --artifact artifacts/ecg_w8a8.npz --out reports/quant/ecg/dynamics
    python -m trm_tvm.dynamics --checkpoint ... --recipe qat/w8a8.yaml --variants --out ...   # shared vs per-step x 8 vs 16-bit state
    python -m trm_tvm.dynamics --checkpoint ... --artifact a.npz b.npz --bias --out ...       # is the damage a systematic bias?

Writes dynamics.json and drift.png / steps.png / halting.png to --out.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from trm_tvm.errors import UserError, cli_main
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.plots import save_figure

SOURCE = "golden model vs numpy float reference on the host"


def _variants(recipe: str, params, dims, cfg, x_train) -> list:
    from trm_tvm.quant.ptq import quantise
    from trm_tvm.quantize import calibration_indices, load_recipe

    base = load_recipe(recipe, "ptq")
    x_calib = x_train[calibration_indices(len(x_train), base)]
    arts = []
    for mode in ("shared", "per_step"):
        for sb in (8, 16):
            qc = dataclasses.replace(base, state_scale_mode=mode, state_bits=sb,
                                     name=f"{base.name} {mode} state{sb}")
            art = quantise(params, dims, x_calib, qc, cfg.model.halt_threshold)
            art.path = qc.name
            arts.append(art)
    return arts


def logit_bias(art, params, x: np.ndarray, y: np.ndarray, batch: int = 250) -> list[dict]:
    """Is the quantisation damage a systematic bias? Per supervision step (fixed compute): the logit error
    e = quantised - FP; `bias_share` = ||mean e||^2 / mean ||e||^2 (1: the same offset on every sample, about 0:
    zero-mean noise); and the accuracy after subtracting the mean error estimated on the other half of the samples
    (two-fold, so never on the samples it corrects), beside the FP and uncorrected accuracy."""
    from trm_tvm.quant import float_ref, spec
    from trm_tvm.quant.evaluation import correct, device_inputs
    from trm_tvm.quant.golden import Golden

    g, f, q = Golden(art), [], []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        f.append(float_ref.forward(params, art.dims, np.asarray(xb, dtype=np.float64)).logits)
        r = g.infer(device_inputs(art, xb), q_thr=spec.INT32_MAX, all_steps=True)
        q.append(r.step_logits * art.header["io"]["logit_scale"])
    f, q = np.concatenate(f), np.concatenate(q)
    half = np.arange(len(x)) % 2 == 0
    out = []
    for k in range(f.shape[1]):
        e = q[:, k] - f[:, k]
        flat = e.reshape(len(e), -1)
        share = float((flat.mean(0) ** 2).sum() / max(float((flat ** 2).sum(1).mean()), 1e-30))
        fixed = q[:, k].copy()
        fixed[half] -= e[~half].mean(0)
        fixed[~half] -= e[half].mean(0)
        out.append({"step": k + 1, "bias_share": share, "acc_fp": float(correct(f[:, k].argmax(-1), y).mean()),
                    "acc_quant": float(correct(q[:, k].argmax(-1), y).mean()),
                    "acc_quant_debiased": float(correct(fixed.argmax(-1), y).mean())})
    return out


def plot(results: list[dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(results):
        calls = np.arange(1, len(r["cos_z"]) + 1)
        axes[0].plot(calls, r["cos_z"], color=f"C{i}", label=f"{r['label']} z")
        axes[0].plot(calls, r["cos_y"], "--", color=f"C{i}", label=f"{r['label']} y (dashed)")
        axes[1].semilogy(calls, r["rel_z"], color=f"C{i}", label=f"{r['label']} z")
    for ax, t in zip(axes, ("cosine vs FP trajectory", "relative L2 error of z")):
        ax.set_xlabel("net call (n*T*N_sup order)")
        ax.set_title(f"{t} (measured, golden model)")
        for k in range(1, results[0]["N_sup"]):
            ax.axvline(k * results[0]["calls_per_step"] + 0.5, color="grey", lw=0.5)
    axes[0].legend(fontsize=7)
    save_figure(fig, out / "drift.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [s["step"] for s in results[0]["steps"]]
    ax.plot(steps, [100 * s["acc_fp"] for s in results[0]["steps"]], "k-o", label="FP")
    for r in results:
        ax.plot(steps, [100 * s["acc_quant"] for s in r["steps"]], "-o", label=r["label"])
    ax.set_xlabel("supervision steps (fixed compute)")
    ax.set_ylabel("accuracy % (measured)")
    ax.legend(fontsize=7)
    save_figure(fig, out / "steps.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    w = 0.8 / (len(results) + 1)
    ax.bar(np.array(steps) - 0.4, results[0]["halting"]["steps_hist_fp"], w, label="FP", color="k")
    for i, r in enumerate(results):
        ax.bar(np.array(steps) - 0.4 + (i + 1) * w, r["halting"]["steps_hist_quant"], w, label=r["label"])
    ax.set_xlabel("halting step")
    ax.set_ylabel("samples (measured)")
    ax.legend(fontsize=7)
    save_figure(fig, out / "halting.png")


@cli_main
def main(argv=None) -> int:
    from trm_tvm.quant.artifact import Artifact
    from trm_tvm.quant.drift import trajectory
    from trm_tvm.quantize import _checkpoint, _dataset

    ap = argparse.ArgumentParser(prog="python -m trm_tvm.dynamics", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--artifact", nargs="*", default=[])
    ap.add_argument("--recipe", help="with --variants: the recipe the variants start from")
    ap.add_argument("--variants", action="store_true", help="shared vs per-step state scale x 8- vs 16-bit state")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=500, help="test samples (default 500)")
    ap.add_argument("--bias", action="store_true",
                    help="also the logit error's bias share and the accuracy with the mean error removed")
    a = ap.parse_args(argv)
    if not a.artifact and not a.variants:
        raise UserError("nothing to study", "pass --artifact and/or --recipe <r> --variants")
    if a.variants and not a.recipe:
        raise UserError("--variants needs --recipe", "e.g. --recipe qat/w8a8.yaml")
    params, dims, cfg, _ = _checkpoint(a.checkpoint)
    data = _dataset(cfg)
    arts = [Artifact.load(p) for p in a.artifact]
    for art in arts:
        if art.dims != dims:
            raise UserError(f"artifact {art.path} was not made from this checkpoint's model shape",
                            "pass the checkpoint it was quantised from")
    if a.variants:
        arts += _variants(a.recipe, params, dims, cfg, data.x_train)
    x, y = data.x_test[:a.limit], data.y_test[:a.limit]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for art in arts:
        t0 = time.time()
        r = trajectory(art, params, x, y)
        r["label"] = Path(str(art.path)).stem if str(art.path).endswith(".npz") else str(art.path)
        results.append(r)
        last = r["steps"][-1]
        print(f"{r['label']}: final cos z {r['cos_z'][-1]:.4f} y {r['cos_y'][-1]:.4f}, accuracy after "
              f"{last['step']} steps FP {100 * last['acc_fp']:.2f} % / quantised {100 * last['acc_quant']:.2f} % "
              f"(measured, {len(y)} samples, {time.time() - t0:.0f} s)")
        if a.bias:
            r["logit_bias"] = logit_bias(art, params, x, y)
            b = r["logit_bias"][-1]
            print(f"  logit error after {b['step']} steps: bias share {b['bias_share']:.3f}; accuracy quantised "
                  f"{100 * b['acc_quant']:.2f} %, mean error removed {100 * b['acc_quant_debiased']:.2f} % "
                  f"(FP {100 * b['acc_fp']:.2f} %, measured)")
    write_json(out / "dynamics.json", {"checkpoint": a.checkpoint, "provenance": "measured", "source": SOURCE,
                                       "results": results, "run": run_info()})
    plot(results, out)
    print(f"wrote {out}/dynamics.json, drift.png, steps.png, halting.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
