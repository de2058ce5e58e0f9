"""Accuracy of the golden model (what the device computes) against the float model, on a labelled set.

Both run every supervision step once (all_steps), so one pass gives fixed-compute accuracy per step and the
accuracy with learned halting. Paired comparison: exact McNemar test on the per-sample correctness.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binom

from trm_tvm.evaluate import wilson
from trm_tvm.quant import float_ref, spec
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.golden import Golden


def mcnemar(a_correct: np.ndarray, b_correct: np.ndarray) -> dict:
    """Exact (binomial) McNemar test of two paired classifiers: discordant counts and two-sided p-value."""
    b = int(np.sum(a_correct & ~b_correct))
    c = int(np.sum(~a_correct & b_correct))
    p = 1.0 if b + c == 0 else min(1.0, 2.0 * float(binom.cdf(min(b, c), b + c, 0.5)))
    return {"a_only": b, "b_only": c, "p_value": p}


def correct(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample correctness: the class, or every token for per-token tasks."""
    ok = pred == y
    return ok.reshape(len(ok), -1).all(axis=1)


def float_run(params: dict, dims: float_ref.Dims, x: np.ndarray, threshold: float, batch: int = 256) -> dict:
    """Float model: predictions per step (N, S[, L]) and with learned halting, plus the halting steps."""
    logits, qs = [], []
    for i in range(0, len(x), batch):
        r = float_ref.forward(params, dims, np.asarray(x[i:i + batch], dtype=np.float64))
        logits.append(r.logits)
        qs.append(r.q)
    logits, q = np.concatenate(logits), np.concatenate(qs)
    step = float_ref.halted_step(q, threshold)
    step_pred = logits.argmax(-1)
    return {"step_pred": step_pred, "pred": step_pred[np.arange(len(x)), step], "steps": step + 1}


def device_inputs(art: Artifact, x: np.ndarray) -> np.ndarray:
    """Float series -> int8 at the artifact's input scale (what the host sends); digits unchanged."""
    if art.dims.input_kind == "tokens":
        return np.asarray(x).astype(np.uint8)
    return spec.quantize_input(x, art.header["io"]["input_scale"])


def golden_run(art: Artifact, x: np.ndarray, q_thr: int | None = None, batch: int = 256) -> dict:
    """Golden model: predictions per step and with halting at q_thr (default: the artifact's)."""
    g = Golden(art)
    step_pred, pred, steps = [], [], []
    for i in range(0, len(x), batch):
        r = g.infer(device_inputs(art, x[i:i + batch]), q_thr=q_thr, all_steps=True)
        step_pred.append(spec.argmax_s16(r.step_logits))
        pred.append(r.pred)
        steps.append(r.steps)
    return {"step_pred": np.concatenate(step_pred), "pred": np.concatenate(pred), "steps": np.concatenate(steps)}


def _acc(ok: np.ndarray) -> dict:
    k, n = int(ok.sum()), int(ok.size)
    lo, hi = wilson(k, n)
    return {"accuracy": k / max(n, 1), "ci95": [lo, hi], "n": n}


def compare(fp: dict, q: dict, y: np.ndarray) -> dict:
    """FP vs quantised: accuracy (Wilson 95 %) with halting and per fixed step, McNemar, argmax agreement."""
    out = {"halting": {}, "fixed": []}
    ok_fp, ok_q = correct(fp["pred"], y), correct(q["pred"], y)
    out["halting"] = {"fp": _acc(ok_fp), "quant": _acc(ok_q), "mcnemar": mcnemar(ok_fp, ok_q),
                      "agreement": float(np.mean(correct(fp["pred"], q["pred"]))),
                      "mean_steps": {"fp": float(fp["steps"].mean()), "quant": float(q["steps"].mean())}}
    for k in range(fp["step_pred"].shape[1]):
        a, b = correct(fp["step_pred"][:, k], y), correct(q["step_pred"][:, k], y)
        out["fixed"].append({"steps": k + 1, "fp": _acc(a), "quant": _acc(b), "mcnemar": mcnemar(a, b),
                             "agreement": float(np.mean(correct(fp["step_pred"][:, k], q["step_pred"][:, k])))})
    return out
