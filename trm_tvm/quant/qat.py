"""Quantisation-aware fine-tuning of a trained TRM against the exact integer forward (quant.fakequant).

Activation scales stay those of the PTQ calibration; before every optimiser step the integer model is rebuilt from
the current float weights (quant.ptq.build), so the loss is always the device's. The training step mirrors
trm_tvm.train: one optimiser step per supervision step (deep supervision) with (y, z) carried over detached; with
`deep_supervision: false` only the last supervision step's loss trains. Stops at the wall-time budget; the returned
artifact is the one with the best golden accuracy on the monitor split (ties: the later epoch).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from trm_tvm.model import StepOutput
from trm_tvm.quant import spec
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.evaluation import correct, golden_run
from trm_tvm.quant.fakequant import ExactForward
from trm_tvm.quant.ptq import QuantConfig, Scales, build
from trm_tvm.train import supervision_loss


@dataclass
class QatSettings:
    """The recipe's `qat:` section."""
    lr: float = 1e-4
    batch_size: int = 64
    epochs: int = 5
    wall_time_min: float = 20.0
    deep_supervision: bool = True
    halt_loss_weight: float = 0.5
    monitor: int = 500                # samples of the train split held out to pick the best artifact
    threads: int = 1


def numpy_params(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def device_batch(art_scales: Scales, dims, x: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """(int input the device gets, its real value) for a float batch."""
    if dims.input_kind == "tokens":
        return x.astype(np.uint8), torch.as_tensor(x.astype(np.int64))
    q = spec.quantize_input(x, art_scales.input)
    return q, torch.as_tensor(q * art_scales.input, dtype=torch.float32)


def qat_step(model, dims, scales: Scales, qc: QuantConfig, qs: QatSettings, opt, inp: np.ndarray,
             target: np.ndarray, halt_threshold: float) -> dict:
    """One batch: N_sup supervision steps, each with a freshly built exact integer model."""
    params = model.state_dict(keep_vars=True)      # trained parameters and the fixed y_init / z_init buffers
    q_in, real_in = device_batch(scales, dims, inp)
    tgt = torch.as_tensor(target)
    y = z = None
    for k in range(dims.N_sup):
        train_now = qs.deep_supervision or k == dims.N_sup - 1
        art = build(numpy_params(model), dims, scales, qc, halt_threshold)
        fx = ExactForward(art, params)
        with torch.set_grad_enabled(train_now):
            x = fx.prologue(q_in, real_in)
            if y is None:
                y, z = fx.initial_state(x)
            y, z, lg, q = fx.supervision_step(x, y, z)
            loss, ok = supervision_loss(StepOutput(y[1], z[1], lg[1], q[1]), tgt, qs.halt_loss_weight)
        if train_now:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        y, z = (y[0], y[1].detach()), (z[0], z[1].detach())
    return {"loss": loss.item(), "acc": ok.float().mean().item()}


def qat(model, dims, scales: Scales, qc: QuantConfig, qs: QatSettings, x: np.ndarray, y: np.ndarray,
        halt_threshold: float, log=print) -> tuple[Artifact, dict]:
    """Fine-tune `model` in place; returns (best artifact on the monitor split, history)."""
    torch.set_num_threads(qs.threads)
    rng = np.random.default_rng(qc.seed)
    order = rng.permutation(len(x))
    n_mon = min(qs.monitor, len(x) // 5)            # small train sets keep most samples for training
    mon, tr = order[:n_mon], order[n_mon:]
    opt = torch.optim.AdamW(model.parameters(), lr=qs.lr, weight_decay=0.0, betas=(0.9, 0.95))
    t0, history = time.time(), []

    def evaluate(tag):
        art = build(numpy_params(model), dims, scales, qc, halt_threshold)
        acc = float(np.mean(correct(golden_run(art, x[mon])["pred"], y[mon])))
        history.append({"at": tag, "monitor_acc": acc, "minutes": round((time.time() - t0) / 60, 2)})
        log(f"qat {tag}: golden accuracy on {len(mon)} monitor samples {100 * acc:.2f} %")
        return art, acc

    best, best_acc = evaluate("start")
    out_of_time = False
    for epoch in range(qs.epochs):
        perm = rng.permutation(tr)
        stats = {}
        for i in range(0, len(perm), qs.batch_size):
            b = perm[i:i + qs.batch_size]
            stats = qat_step(model, dims, scales, qc, qs, opt, x[b], y[b], halt_threshold)
            if time.time() - t0 > qs.wall_time_min * 60:
                out_of_time = True
                break
        art, acc = evaluate(f"epoch {epoch + 1}" + (" (wall-time budget reached)" if out_of_time else ""))
        history[-1].update(stats)
        if acc >= best_acc:                          # ties go to the longer-trained weights
            best, best_acc = art, acc
        if out_of_time:
            break
    return best, {"history": history, "best_monitor_acc": best_acc, "minutes": round((time.time() - t0) / 60, 2)}
