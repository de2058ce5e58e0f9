"""Train a TRM with deep supervision, then its same-size non-recursive baseline.

    python -m trm_tvm.train --config configs/ecg.yaml --out runs/ecg [--resume]

Per batch, as in the paper: N_sup supervision steps, each one forward (T cycles, only the last with gradients),
one loss (cross-entropy + BCE of the halting logit on "prediction correct"), one optimiser step and one EMA update;
(y, z) are carried, detached, to the next step. Training always runs all N_sup steps (no early exit while training).
State is saved atomically to <out>/state.pt every minute and at each epoch end; --resume continues from it.
The result is <out>/model.pt: EMA weights, config, task shape, metadata, and the baseline's weights.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from trm_tvm.config import Config, ModelConfig, load_config, to_dict
from trm_tvm.errors import UserError, atomic_write_bytes, atomic_write_text, cli_main
from trm_tvm.jsonio import run_info
from trm_tvm.model import EMA, TRM, StepOutput, checkpoint_dict

SAVE_EVERY_S = 60.0
MONITOR_N = 500


def baseline_config(m: ModelConfig) -> ModelConfig:
    """The same net without recursion or deep supervision: one z-update and one y-update (n=1, T=1, N_sup=1).
    n=0 would never read the input, since the y-update is y = net(y, z)."""
    return dataclasses.replace(m, n=1, T=1, N_sup=1)


def supervision_loss(out: StepOutput, target: torch.Tensor, halt_weight: float):
    """(loss, correct): cross-entropy of the answer + halt_weight * BCE(q, answer entirely correct)."""
    if out.logits.dim() == 3:                                  # per token (Sudoku): all tokens must be right
        ce = F.cross_entropy(out.logits.flatten(0, 1), target.flatten())
        correct = (out.logits.argmax(-1) == target).all(dim=1)
    else:
        ce = F.cross_entropy(out.logits, target)
        correct = out.logits.argmax(-1) == target
    bce = F.binary_cross_entropy_with_logits(out.q, correct.float())
    return ce + halt_weight * bce, correct


def make_optimizer(model: TRM, cfg: Config) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.train.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.train.lr, betas=(0.9, 0.95))


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train_batch(model: TRM, ema: EMA, opt, inp, target, cfg: Config, state: dict, total_steps: int,
                warmup: int) -> dict:
    y = z = None
    for _ in range(model.cfg.N_sup):
        x = model.embed_input(inp)
        if y is None:
            y, z = model.initial_state(x)
        out = model.supervision_step(x, y, z)
        loss, correct = supervision_loss(out, target, cfg.train.halt_loss_weight)
        for g in opt.param_groups:
            g["lr"] = lr_at(state["opt_step"], total_steps, warmup, cfg.train.lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        state["opt_step"] += 1
        y, z = out.y.detach(), out.z.detach()
    return {"loss": loss.item(), "acc": correct.float().mean().item()}


@torch.no_grad()
def monitor(model: TRM, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy of the last step and with halting (Sudoku: cell accuracy on blanks), mean steps used."""
    from trm_tvm.evaluate import halting_step, run_model

    logits, q = run_model(model, x)
    right = logits.argmax(-1) == y
    if right.ndim == 3:
        blank = x == 0
        score = (right & blank).sum(axis=2) / np.maximum(blank.sum(axis=1), 1)
    else:
        score = right.astype(np.float64)
    stop = halting_step(q, model.cfg.halt_threshold)
    return {"acc_last_step": round(float(score[-1].mean()), 4),
            "acc_halting": round(float(score[stop, np.arange(len(y))].mean()), 4),
            "mean_steps": round(float(stop.mean() + 1), 3)}


def _save(path: Path, obj: dict) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_phase(name: str, model_cfg: ModelConfig, cfg: Config, ds, x_tr, y_tr, x_mon, y_mon, saved: dict,
                state_path: Path, budget_s: float) -> tuple[TRM, dict]:
    """Train one model (the TRM or the baseline) until its epochs or wall-time budget are used up; resumable.
    `saved` is the whole run state (all phases), written to `state_path` on every snapshot."""
    state = saved["phases"].get(name)
    torch.manual_seed(cfg.train.seed)
    model = TRM(model_cfg, ds.shape)
    # the baseline takes 1 optimiser step per batch where the TRM takes N_sup: keep warm-up and EMA horizon the
    # same in epochs, so both see the same schedule over the same data
    steps_ratio = model_cfg.N_sup / cfg.model.N_sup
    warmup = max(1, round(cfg.train.warmup_steps * steps_ratio))
    ema = EMA(model, cfg.train.ema ** (1.0 / steps_ratio))
    opt = make_optimizer(model, cfg)
    if state is None:
        state = {"phase": name, "epoch": 0, "batch": 0, "opt_step": 0, "elapsed_s": 0.0, "history": [],
                 "stopped_by": None}
    else:
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        print(f"{name}: resuming at epoch {state['epoch']} batch {state['batch']} "
              f"({state['elapsed_s'] / 60:.1f} min used)", flush=True)
    bs = cfg.train.batch_size
    per_epoch = math.ceil(len(x_tr) / bs)
    total_steps = cfg.train.epochs * per_epoch * model_cfg.N_sup

    def snapshot():
        state.update(model=model.state_dict(), ema=ema.model.state_dict(), opt=opt.state_dict())
        saved["phases"][name] = state
        _save(state_path, saved)

    from tqdm import tqdm

    t_start = time.time() - state["elapsed_s"]
    last_save = time.time()
    stats = {"loss": float("nan")}
    while state["epoch"] < cfg.train.epochs and state["stopped_by"] is None:
        epoch = state["epoch"]
        order = np.random.default_rng([cfg.train.seed, epoch]).permutation(len(x_tr))
        x_ep = x_tr if ds.redraw_train is None else ds.redraw_train(epoch)[: len(x_tr)]
        bar = tqdm(range(state["batch"], per_epoch), desc=f"{name} epoch {epoch + 1}/{cfg.train.epochs}",
                   file=sys.stderr, mininterval=10 if not sys.stderr.isatty() else 0.5, leave=False)
        model.train()
        for b in bar:
            idx = order[b * bs: (b + 1) * bs]
            xb, yb = x_ep[idx], y_tr[idx]
            if ds.augment is not None:
                xb, yb = ds.augment(xb, yb, np.random.default_rng([cfg.train.seed, epoch, b]))
            stats = train_batch(model, ema, opt, torch.as_tensor(xb), torch.as_tensor(yb), cfg, state, total_steps,
                                warmup)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['acc']:.2f}", refresh=False)
            state["batch"] = b + 1
            state["elapsed_s"] = time.time() - t_start
            if state["elapsed_s"] > budget_s:
                state["stopped_by"] = "wall_time"
                break
            if time.time() - last_save > SAVE_EVERY_S:
                snapshot()
                last_save = time.time()
        bar.close()
        if state["batch"] >= per_epoch:
            state["epoch"], state["batch"] = epoch + 1, 0
        done = state["epoch"] >= cfg.train.epochs or state["stopped_by"]
        if done or state["epoch"] % cfg.train.eval_every == 0:
            m = monitor(ema.model, x_mon, y_mon)
            state["history"].append({"epoch": state["epoch"] + state["batch"] / per_epoch,
                                     "minutes": round(state["elapsed_s"] / 60, 2), "train_loss": stats["loss"], **m})
            print(f"{name}: epoch {state['history'][-1]['epoch']:.2f} ({state['elapsed_s'] / 60:.1f} min) "
                  f"loss {stats['loss']:.3f}, monitor set: last step {m['acc_last_step']:.3f}, halting "
                  f"{m['acc_halting']:.3f} in {m['mean_steps']:.2f} steps", flush=True)
        snapshot()
        last_save = time.time()
    if state["stopped_by"] is None:
        state["stopped_by"] = "epochs"
    return ema.model, state


def split_monitor(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Hold out a monitoring set from the training data (never the test set); tiny sets monitor on train."""
    n = len(ds.x_train)
    if n >= 2000:
        k = min(MONITOR_N, n // 10)
        return ds.x_train[:-k], ds.y_train[:-k], ds.x_train[-k:], ds.y_train[-k:], f"{k} held-out training items"
    return ds.x_train, ds.y_train, ds.x_train[:MONITOR_N], ds.y_train[:MONITOR_N], "training items (set too small)"


def run(cfg: Config, config_path: str, out: Path, resume: bool) -> Path:
    from trm_tvm.tasks import load_task

    state_path, final = out / "state.pt", out / "model.pt"
    saved = None
    if state_path.exists():
        if not resume:
            raise UserError(f"{out} already holds a run", "pass --resume to continue it, or pick another --out")
        try:
            saved = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(f"{state_path} cannot be read ({type(e).__name__})", "delete it to start over")
        if saved.get("config") != to_dict(cfg):
            raise UserError(f"{config_path} differs from the config {out} was started with",
                            "resume with the same config, or pick another --out")
    torch.set_num_threads(cfg.train.threads or os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    ds = load_task(cfg.task)
    x_tr, y_tr, x_mon, y_mon, mon_what = split_monitor(ds)
    print(f"{cfg.task.name}: {len(x_tr)} training items, monitoring on {mon_what}, {len(ds.x_test)} test items; "
          f"{torch.get_num_threads()} thread(s)", flush=True)

    saved = saved or {"config": to_dict(cfg), "phases": {}}
    phases = [("trm", cfg.model, cfg.train.wall_time_min)]
    if cfg.train.baseline:
        phases.append(("baseline", baseline_config(cfg.model), cfg.train.baseline_wall_time_min))
    models = {}
    for name, mcfg, minutes in phases:
        prev = saved["phases"].get(name)
        if prev is not None and "final" in prev:
            models[name] = TRM(mcfg, ds.shape)
            models[name].load_state_dict(prev["final"])
            continue
        models[name], st = train_phase(name, mcfg, cfg, ds, x_tr, y_tr, x_mon, y_mon, saved, state_path, minutes * 60)
        st["final"] = models[name].state_dict()
        for k in ("model", "ema", "opt"):
            st.pop(k, None)
        saved["phases"][name] = st
        _save(state_path, saved)
    trm_state = saved["phases"]["trm"]
    meta = {"class_names": ds.class_names, "data_info": ds.info, "monitor": mon_what,
            "phases": {k: {f: v[f] for f in ("epoch", "opt_step", "elapsed_s", "stopped_by", "history")}
                       for k, v in saved["phases"].items()},
            "epochs_done": trm_state["epoch"], "run": run_info(), "command": " ".join(sys.argv)}
    _save(final, checkpoint_dict(models["trm"], to_dict(cfg), meta, models.get("baseline")))
    print(f"wrote {final}", flush=True)
    return final


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.train", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="configs/<name>.yaml")
    ap.add_argument("--out", required=True, help="run directory (state.pt, model.pt, config.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out after a kill")
    ap.add_argument("--seed", type=int, help="override train.seed (init, batch order, noise draws); "
                    "the task's data seed stays, so seeds are compared on the same test set")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=args.seed))
    run(cfg, args.config, Path(args.out), args.resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
