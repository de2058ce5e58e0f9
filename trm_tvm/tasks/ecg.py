"""Simulated single-lead ECG with five rhythm/morphology classes, on neurokit2's ECGSYN (McSharry et al. 2003).

Generation has two halves (docs/tasks.md):
1. `clean_beat_trace` (slow: ECGSYN integrates an ODE, ~0.07 s per series at 100 Hz): per series, class-specific
   heart rate / variability and P-Q-R-S-T wave-shape parameters (angles ti, amplitudes ai, widths bi), each jittered
   so that neighbouring classes overlap. Cached on disk in chunks under data_cache/ (resumable).
2. `add_noise` (fast, at load time, seeded): gain, baseline wander, powerline, muscle (EMG) bursts, then a random
   crop and per-series normalisation to an int8-friendly range.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

from trm_tvm.errors import UserError, atomic_write_bytes

CLASSES = ["normal", "rate", "irregular", "wide_qrs", "repolarisation"]
GENERATOR_VERSION = 2
DURATION_S = 6.5            # generated; a random window of seq_len samples is cropped after the first 0.5 s
CHUNK = 250
TI = np.array([-70.0, -15.0, 0.0, 15.0, 100.0])      # ECGSYN defaults, order P Q R S T
AI = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
BI = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
P_, Q_, R_, S_, T_ = range(5)


def sample_parameters(label: int, rng: np.random.Generator) -> dict:
    """ECGSYN parameters of one series of class `label`; jitter ranges overlap across classes on purpose."""
    ti = TI + rng.normal(0, 4, 5)
    ai = AI * rng.uniform(0.8, 1.2, 5)
    bi = BI * rng.uniform(0.85, 1.3, 5)
    ai[P_] *= rng.uniform(0.4, 1.2)
    ai[T_] *= rng.uniform(0.45, 1.4)
    hr, hr_std, fwave = rng.uniform(55, 105), rng.uniform(0.5, 6), 0.0
    name = CLASSES[label]
    if name == "rate":                                  # bradycardia or tachycardia
        hr = rng.uniform(40, 62) if rng.random() < 0.5 else rng.uniform(96, 140)
    elif name == "irregular":                           # AF-like: RR variability, weak P, fibrillatory waves
        hr, hr_std = rng.uniform(60, 120), rng.uniform(4, 16)
        ai[P_] = AI[P_] * rng.uniform(0.0, 0.6)
        fwave = rng.uniform(0.0, 0.04)
    elif name == "wide_qrs":                            # bundle-branch-block-like: wide Q, R, S, deeper S
        bi[[Q_, R_, S_]] *= rng.uniform(1.2, 2.2)
        ai[S_] *= rng.uniform(1.0, 1.5)
    elif name == "repolarisation":
        if rng.random() < 0.5:                          # inverted or flattened T
            ai[T_] = AI[T_] * rng.uniform(-0.9, 0.45)
        else:                                           # ST deviation: T pulled into the ST segment, widened
            ti[T_] = rng.uniform(55, 85)
            bi[T_] *= rng.uniform(1.0, 1.5)
    return {"hr": hr, "hr_std": hr_std, "ti": ti, "ai": ai, "bi": bi, "fwave": fwave,
            "lfhf": rng.uniform(0.3, 2.0), "ode_seed": int(rng.integers(2**31))}


def clean_beat_trace(p: dict, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One noise-free ECGSYN series (mV-ish, scaled by ECGSYN to [-0.4, 1.2]) plus any fibrillatory waves."""
    import neurokit2 as nk

    sig = nk.ecg_simulate(duration=DURATION_S, sampling_rate=sample_rate, method="ecgsyn", noise=0,
                          heart_rate=p["hr"], heart_rate_std=p["hr_std"], random_state=p["ode_seed"],
                          ti=tuple(p["ti"]), ai=tuple(p["ai"]), bi=tuple(p["bi"]), lfhfratio=p["lfhf"])
    sig = np.asarray(sig, dtype=np.float64)
    if p["fwave"] > 0:
        t = np.arange(sig.size) / sample_rate
        f = rng.uniform(4, 8)
        sig += p["fwave"] * np.sin(2 * np.pi * f * t + 0.8 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
    return sig


def cached_generate(n: int, seed: int, sample_rate: int, cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """`generate` in chunks of CHUNK series, each cached atomically: an interrupted generation resumes."""
    key = hashlib.sha1(json.dumps([GENERATOR_VERSION, seed, sample_rate, DURATION_S, CHUNK]).encode()).hexdigest()[:10]
    root = Path(cache_dir) / f"ecg-{key}"
    xs, ys = [], []
    t0 = time.time()
    for c0 in range(0, n, CHUNK):
        path = root / f"chunk{c0 // CHUNK:05d}.npz"
        if not path.exists():
            cx, cy = generate(c0, CHUNK, seed, sample_rate)
            buf = io.BytesIO()
            np.savez(buf, x=cx, y=cy)
            atomic_write_bytes(path, buf.getvalue())
            print(f"ecg: generated series {c0}..{c0 + CHUNK - 1} (seed {seed}) "
                  f"[{time.time() - t0:.0f} s so far, cache {root}]", flush=True)
        with np.load(path) as d:
            xs.append(d["x"])
            ys.append(d["y"])
    length = int(round(DURATION_S * sample_rate))
    if not xs:
        return np.zeros((0, length), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def generate(start: int, count: int, seed: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Clean series start..start+count-1 and labels; series i depends only on (seed, i), classes drawn uniformly."""
    length = int(round(DURATION_S * sample_rate))
    x = np.zeros((count, length), np.float32)
    y = np.zeros(count, np.int64)
    for j in range(count):
        rng = np.random.default_rng([seed, start + j])
        label = int(rng.integers(len(CLASSES)))
        sig = clean_beat_trace(sample_parameters(label, rng), sample_rate, rng)
        x[j, : min(length, sig.size)] = sig[:length]
        y[j] = label
    return x, y


def add_noise(clean: np.ndarray, seq_len: int, sample_rate: int, level: float, seed: int, draw: int = 0) -> np.ndarray:
    """Gain, baseline wander, powerline (aliased at low rates), EMG bursts; random crop; robust normalisation.

    Returns float32 (N, 1, seq_len), roughly in [-4, 4] (clipped there so int8 with scale 4/127 holds it).
    `draw` > 0 gives another noise and crop of the same clean traces (training augmentation, one per epoch).
    """
    n, length = clean.shape
    t = np.arange(seq_len) / sample_rate
    out = np.empty((n, 1, seq_len), np.float32)
    skip = int(0.5 * sample_rate)
    for i in range(n):
        rng = np.random.default_rng([seed, 7919, draw, i])   # per series: a prefix reproduces alone
        start = rng.integers(skip, length - seq_len + 1)
        s = clean[i, start: start + seq_len] * rng.uniform(0.6, 1.5)
        wander = sum(rng.uniform(0, 0.25) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3))
                     for _ in range(2))
        mains = rng.uniform(0, 0.08) * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t + rng.uniform(0, 6.3))
        emg = rng.normal(0, 1, seq_len) * rng.uniform(0.005, 0.12)
        burst = np.zeros(seq_len)
        if rng.random() < 0.4:                           # a muscle-artefact burst
            b0, bl = rng.integers(0, seq_len), rng.integers(sample_rate // 4, sample_rate)
            burst[b0: b0 + bl] = rng.normal(0, rng.uniform(0.05, 0.2), min(bl, seq_len - b0))
        s = s + level * (wander + mains + emg + burst)
        s = (s - np.median(s)) / (np.std(s) + 1e-6)
        out[i, 0] = np.clip(s, -4, 4)
    return out


TEST_SEED_OFFSET = 1000      # the test set is generated from seed + 1000: no series is shared with training


def load(cfg, cache: Path, train: bool = True, test_limit: int | None = None):
    from trm_tvm.model import Shape
    from trm_tvm.tasks import Dataset

    longest = int(round((DURATION_S - 0.5) * cfg.sample_rate))
    if cfg.seq_len > longest:
        raise UserError(f"task.seq_len {cfg.seq_len} is longer than the {longest} samples the ECG generator keeps "
                        f"at {cfg.sample_rate} Hz", "lower task.seq_len or task.sample_rate")
    test_seed = cfg.seed + TEST_SEED_OFFSET
    x_tr, y_tr = cached_generate(cfg.n_train if train else 0, cfg.seed, cfg.sample_rate, cache)
    x_te, y_te = cached_generate(min(cfg.n_test, test_limit or cfg.n_test), test_seed, cfg.sample_rate, cache)
    shape = Shape(tokens=cfg.seq_len // cfg.patch, classes=len(CLASSES), channels=1, patch=cfg.patch)

    def redraw(epoch: int) -> np.ndarray:          # fresh noise and crop of the clean training traces
        return add_noise(x_tr, cfg.seq_len, cfg.sample_rate, cfg.noise, cfg.seed, draw=epoch + 1)

    return Dataset(shape, add_noise(x_tr, cfg.seq_len, cfg.sample_rate, cfg.noise, cfg.seed), y_tr,
                   add_noise(x_te, cfg.seq_len, cfg.sample_rate, cfg.noise, test_seed), y_te, list(CLASSES),
                   redraw_train=redraw if cfg.augment else None,
                   info={"source": f"ECGSYN v{GENERATOR_VERSION}, {cfg.sample_rate} Hz, seeds {cfg.seed}/{test_seed}"})
