"""Tasks: every one loads offline into a `Dataset` the trainer and evaluator share.

`TASKS[name](cfg)` builds the dataset of a `TaskConfig`; `load_external(cfg, path)` reads a user's own test file
(Sudoku text lines, or a UCR/UEA `.ts` file for the time-series tasks).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from trm_tvm.config import TaskConfig
from trm_tvm.errors import UserError
from trm_tvm.jsonio import REPO_ROOT
from trm_tvm.model import Shape


@dataclass
class Dataset:
    shape: Shape
    x_train: np.ndarray            # series float32 (N, C, S) | tokens int64 (N, L)
    y_train: np.ndarray            # int64 (N,) | (N, L)
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    test_groups: np.ndarray | None = None        # Sudoku: clue count of each test puzzle
    augment: Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]] | None = None
    redraw_train: Callable[[int], np.ndarray] | None = None     # ECG: x_train re-noised and re-cropped for an epoch
    info: dict = field(default_factory=dict)


def cache_dir() -> Path:
    """Generated data lives here (gitignored); TRM_TVM_DATA_CACHE overrides it (tests use a temp dir)."""
    return Path(os.environ.get("TRM_TVM_DATA_CACHE", REPO_ROOT / "data_cache"))


def _ecg(cfg: TaskConfig, **kw) -> Dataset:
    from trm_tvm.tasks import ecg
    return ecg.load(cfg, cache_dir(), **kw)


def _ucr(cfg: TaskConfig, **kw) -> Dataset:
    from trm_tvm.tasks import ucr
    return ucr.load(cfg)          # small files: always whole


def _sudoku(cfg: TaskConfig, **kw) -> Dataset:
    from trm_tvm.tasks import sudoku
    return sudoku.load(cfg, cache_dir(), **kw)


TASKS: dict[str, Callable[..., Dataset]] = {"ecg": _ecg, "ucr": _ucr, "sudoku": _sudoku}


def load_task(cfg: TaskConfig, train: bool = True, test_limit: int | None = None) -> Dataset:
    """The task's data; train=False skips the (possibly slow to generate) training split, test_limit keeps only
    the first items of the test split (generated tasks make just those)."""
    if cfg.name not in TASKS:
        raise UserError(f"unknown task {cfg.name!r}", f"task.name must be one of {', '.join(TASKS)}")
    return TASKS[cfg.name](cfg, train=train, test_limit=test_limit)


def load_external(cfg: TaskConfig, path: str | Path, shape: Shape, class_names: list[str],
                  info: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A user's own test set for a model trained on task `cfg` (`info`: the training data's normalisation)."""
    if cfg.name == "sudoku":
        from trm_tvm.tasks import sudoku
        return sudoku.read_puzzle_file(path)
    from trm_tvm.tasks import ucr
    x, y = ucr.read_ts_for(path, cfg, shape, class_names, info)
    return x, y, None
