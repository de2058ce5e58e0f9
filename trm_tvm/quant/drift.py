"""How quantisation changes the recursion: the golden model's (y, z) trajectory against the float one, call by call,
plus per-supervision-step accuracy / loss and the halting distribution and calibration, FP vs quantised."""
from __future__ import annotations

import numpy as np

from trm_tvm.quant import float_ref, spec
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.evaluation import correct, device_inputs
from trm_tvm.quant.golden import Golden


def state_scales(art: Artifact) -> tuple[list[float], list[float]]:
    """Scale of y and of z after each call of a supervision step (a state keeps the scale of its last writer)."""
    cur = dict(art.header["state_init_scales"])
    sy, sz = [], []
    for c in art.calls:
        cur[c["update"]] = c["out_scale"]
        sy.append(cur["y"])
        sz.append(cur["z"])
    return sy, sz


def _cos_rel(q: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample cosine similarity and relative L2 error of q against f (both (B, ...))."""
    q, f = q.reshape(len(q), -1), f.reshape(len(f), -1)
    nf = np.linalg.norm(f, axis=1)
    cos = (q * f).sum(1) / np.maximum(np.linalg.norm(q, axis=1) * nf, 1e-30)
    rel = np.linalg.norm(q - f, axis=1) / np.maximum(nf, 1e-30)
    return cos, rel


def ece(conf: np.ndarray, outcome: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of probabilities `conf` for binary `outcome` (equal-width bins)."""
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(conf[m].mean() - outcome[m].mean())
    return float(err)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _ce(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy (mean over tokens for per-token tasks)."""
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    return nll.reshape(len(nll), -1).mean(1)


def trajectory(art: Artifact, params: dict, x: np.ndarray, y: np.ndarray, batch: int = 100) -> dict:
    """Everything the dynamics report plots, for one artifact against the float model on (x, y)."""
    dims = art.dims
    g = Golden(art)
    S, C = dims.N_sup, len(art.calls)
    sy, sz = state_scales(art)
    s_logit, s_q = art.header["io"]["logit_scale"], art.header["halting"]["q_scale"]
    cols = {k: [] for k in ("cos_y", "cos_z", "rel_y", "rel_z", "fp_logits", "q_logits", "fp_q", "q_q")}
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        fp = float_ref.forward(params, dims, np.asarray(xb, dtype=np.float64), keep_states=True)
        gq = g.infer(device_inputs(art, xb), q_thr=spec.INT32_MAX, keep_states=True)
        cy, cz, ry, rz = (np.zeros((len(xb), S * C)) for _ in range(4))
        for k in range(S):
            for c in range(C):
                j = k * C + c
                fy, fz = fp.states[j]
                cy[:, j], ry[:, j] = _cos_rel(gq.states[:, k, c, 0] * sy[c], fy)
                cz[:, j], rz[:, j] = _cos_rel(gq.states[:, k, c, 1] * sz[c], fz)
        for k, v in (("cos_y", cy), ("cos_z", cz), ("rel_y", ry), ("rel_z", rz), ("fp_logits", fp.logits),
                     ("q_logits", gq.step_logits * s_logit), ("fp_q", fp.q), ("q_q", gq.q * s_q)):
            cols[k].append(v)
    d = {k: np.concatenate(v) for k, v in cols.items()}
    out = {"calls_per_step": C, "N_sup": S, "n": dims.n, "T": dims.T, "samples": int(len(x)),
           "state_scale_mode": art.schedule["state_scale_mode"], "numerics": art.numerics,
           "precision": art.header["precision"]}
    for k in ("cos_y", "cos_z", "rel_y", "rel_z"):
        out[k] = d[k].mean(0).tolist()                 # per global call index k*C + c
    steps = []
    thr = art.header["halting"]["threshold"]
    for k in range(S):
        ok_f = correct(d["fp_logits"][:, k].argmax(-1), y)
        ok_q = correct(d["q_logits"][:, k].argmax(-1), y)
        steps.append({"step": k + 1, "acc_fp": float(ok_f.mean()), "acc_quant": float(ok_q.mean()),
                      "loss_fp": float(_ce(d["fp_logits"][:, k], y).mean()),
                      "loss_quant": float(_ce(d["q_logits"][:, k], y).mean()),
                      "ece_halt_fp": ece(_sigmoid(d["fp_q"][:, k]), ok_f),
                      "ece_halt_quant": ece(_sigmoid(d["q_q"][:, k]), ok_q)})
    out["steps"] = steps
    stop_f = float_ref.halted_step(d["fp_q"], thr) + 1
    stop_q = g_halt_steps(d["q_q"] / s_q, art.header["halting"]["q_thr"])
    out["halting"] = {"threshold": thr,
                      "steps_hist_fp": np.bincount(stop_f, minlength=S + 1)[1:].tolist(),
                      "steps_hist_quant": np.bincount(stop_q, minlength=S + 1)[1:].tolist(),
                      "mean_steps_fp": float(stop_f.mean()), "mean_steps_quant": float(stop_q.mean())}
    return out


def g_halt_steps(q_int: np.ndarray, q_thr: int) -> np.ndarray:
    """1-based stop step of each sample from its int q per step (the device's rule)."""
    stop = np.round(q_int).astype(np.int64) >= q_thr
    stop[:, -1] = True
    return stop.argmax(1) + 1
