"""UCR/UEA classification sets: the ones aeon ships (offline) or any user pair of `.ts` files.

Univariate or multivariate (C channels, all fed into each patch token), equal or unequal length. Each series is
fitted to task.seq_len by task.length (docs/tasks.md): `resample` (linear interpolation per channel, the whole
series on a stretched time axis) or `pad` (the sampling rate kept: the first seq_len samples, shorter series padded
at the end with the training mean). Then every channel is standardised with the TRAIN set's mean and std (amplitude
matters, e.g. running vs walking in BasicMotions) and clipped to [-4, 4] so int8 with scale 4/127 holds it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trm_tvm.config import TaskConfig
from trm_tvm.errors import UserError
from trm_tvm.model import Shape

SHIPPED = ("GunPoint", "BasicMotions", "JapaneseVowels", "ItalyPowerDemand", "ArrowHead", "OSULeaf")


def read_ts(path: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Series (each (C, S_i)) and string labels of one `.ts` file; anything malformed is a one-line UserError."""
    from aeon.datasets import load_from_ts_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f".ts file {path} does not exist", "check the path")
    try:
        X, y = load_from_ts_file(str(path))
    except Exception as e:  # aeon raises IOError/ValueError/IndexError... for malformed headers and data
        msg = str(e).splitlines()[0][:150] if str(e) else type(e).__name__
        raise UserError(f".ts file {path} is malformed ({msg})", "fix it to the UCR/UEA .ts format (a @data section "
                        "of comma-separated values with ':'-separated channels and a class label)")
    series = [np.asarray(s, dtype=np.float64) for s in X]
    if len(series) == 0 or len(y) != len(series) or any(s.ndim != 2 or s.size == 0 for s in series):
        raise UserError(f".ts file {path} has no labelled series", "it needs @classLabel true and a @data section")
    if any(not np.isfinite(s).all() for s in series):
        raise UserError(f".ts file {path} has missing values", "fill or drop the series with '?' / NaN entries")
    return series, np.asarray(y).astype(str)


def _load_split(cfg: TaskConfig, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    if cfg.train_file or cfg.test_file:
        if not (cfg.train_file and cfg.test_file):
            raise UserError("task.train_file and task.test_file must be given together", "set both or neither")
        return read_ts(cfg.train_file if split == "train" else cfg.test_file)
    if not cfg.dataset:
        raise UserError("task ucr needs task.dataset or task.train_file/test_file",
                        f"e.g. dataset: GunPoint (shipped with aeon: {', '.join(SHIPPED)})")
    import aeon.datasets as ad

    shipped = Path(ad.__file__).parent / "data" / cfg.dataset / f"{cfg.dataset}_{split.upper()}.ts"
    if not shipped.is_file():
        raise UserError(f"UCR/UEA set {cfg.dataset!r} is not shipped with aeon (nothing downloads at run time)",
                        f"use one of {', '.join(SHIPPED)} or point task.train_file/test_file at your .ts files")
    return read_ts(shipped)


def fit_length(series: list[np.ndarray], length: int, rule: str) -> np.ndarray:
    """(N, C, length) float32 by `rule` (resample | pad); padding is NaN here, the training mean after
    `normalise`."""
    out = np.full((len(series), series[0].shape[0], length), np.nan, np.float32)
    dst = np.linspace(0.0, 1.0, length)
    for i, s in enumerate(series):
        if s.shape[0] != out.shape[1]:
            raise UserError(f"series {i} has {s.shape[0]} channels, expected {out.shape[1]}", "fix the .ts file")
        if rule == "pad":
            kept = s[:, :length]
            out[i, :, :kept.shape[1]] = kept
        else:
            src = np.linspace(0.0, 1.0, s.shape[1])
            out[i] = [np.interp(dst, src, ch) for ch in s]
    return out


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the real samples (padding excluded)."""
    return np.nanmean(x, axis=(0, 2)), np.nanstd(x, axis=(0, 2)) + 1e-6


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std (broadcast against (N, C, S)), padding -> 0, clipped to [-4, 4]."""
    z = (x - mean) / std
    return np.clip(np.nan_to_num(z, nan=0.0), -4, 4).astype(np.float32)


def load(cfg: TaskConfig):
    from trm_tvm.tasks import Dataset

    tr_series, tr_labels = _load_split(cfg, "train")
    te_series, te_labels = _load_split(cfg, "test")
    names = sorted({str(v) for v in tr_labels})
    unknown = sorted(set(te_labels) - set(names))
    if unknown:
        raise UserError(f"test labels {unknown} never occur in the training set", "check the .ts pair")
    x_tr, x_te = fit_length(tr_series, cfg.seq_len, cfg.length), fit_length(te_series, cfg.seq_len, cfg.length)
    mean, std = channel_stats(x_tr)
    index = {n: i for i, n in enumerate(names)}
    shape = Shape(tokens=cfg.seq_len // cfg.patch, classes=len(names), channels=x_tr.shape[1], patch=cfg.patch)
    per_channel = mean[:, None], std[:, None]
    return Dataset(shape, normalise(x_tr, *per_channel), np.array([index[v] for v in tr_labels]),
                   normalise(x_te, *per_channel), np.array([index[v] for v in te_labels]), names,
                   info={"norm_mean": mean.tolist(), "norm_std": std.tolist(),
                         "source": cfg.dataset or f"{cfg.train_file} / {cfg.test_file}",
                         "lengths": {"train": _length_range(tr_series), "test": _length_range(te_series),
                                     "fitted_to": cfg.seq_len, "rule": cfg.length}})


def _length_range(series: list[np.ndarray]) -> list[int]:
    return [min(s.shape[1] for s in series), max(s.shape[1] for s in series)]


def read_ts_for(path: str | Path, cfg: TaskConfig, shape: Shape, class_names: list[str],
                norm: dict) -> tuple[np.ndarray, np.ndarray]:
    """A user's `.ts` test file shaped and normalised like the model's training data."""
    series, labels = read_ts(path)
    if series[0].shape[0] != shape.channels:
        raise UserError(f"{path} has {series[0].shape[0]} channels but the model takes {shape.channels}",
                        "evaluate it with a model trained on data with the same channels")
    unknown = sorted(set(labels) - set(class_names))
    if unknown:
        raise UserError(f"{path} has labels {unknown} the model does not know ({', '.join(class_names)})",
                        "use the label names of the training set")
    x = fit_length(series, cfg.seq_len, cfg.length)
    if norm:
        x = normalise(x, np.asarray(norm["norm_mean"])[:, None], np.asarray(norm["norm_std"])[:, None])
    else:   # ECG-style per-series normalisation
        x = normalise(x, np.nanmedian(x, axis=2, keepdims=True), np.nanstd(x, axis=2, keepdims=True) + 1e-6)
    index = {n: i for i, n in enumerate(class_names)}
    return x.astype(np.float32), np.array([index[v] for v in labels])
