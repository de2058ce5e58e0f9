"""Configs as dataclasses loaded from YAML, validated strictly (unknown keys and wrong types are user errors).

One YAML file in configs/ = one `Config` with sections `task`, `model`, `train`. Every hyper-parameter lives here.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trm_tvm.errors import UserError


@dataclass
class TaskConfig:
    name: str = "ecg"                 # ecg | ucr | sudoku (see trm_tvm.tasks.TASKS)
    dataset: str = ""                 # ucr: an aeon-shipped set name (GunPoint, BasicMotions, JapaneseVowels)
    train_file: str = ""              # ucr: a user's own pair of .ts files instead of `dataset`
    test_file: str = ""
    n_train: int = 8000               # generated tasks (ecg, sudoku)
    n_test: int = 2000
    seq_len: int = 512                # time series: samples per series after resampling
    patch: int = 16                   # time series: samples per token
    length: str = "resample"          # ucr: fit each series to seq_len by resample | pad (see docs/tasks.md)
    sample_rate: int = 128            # ecg: Hz
    noise: float = 1.0                # ecg: scale of the added noise (baseline wander, powerline, EMG)
    min_clues: int = 35               # sudoku
    max_clues: int = 50
    augment: bool = True              # sudoku: the paper's augmentations; ecg: new noise + crop each epoch
    seed: int = 0


@dataclass
class ModelConfig:
    hidden: int = 48                  # D
    expansion: float = 2.0            # SwiGLU expansion, channel and token MLPs
    layers: int = 2                   # blocks in `net`
    mixer: str = "mlp"                # mlp (deploy target) | attention (study only)
    heads: int = 2                    # attention heads (mixer attention only)
    n: int = 2                        # latent recursions z <- net(x, y, z) per cycle
    T: int = 2                        # cycles; the first T-1 run without gradients
    N_sup: int = 4                    # deep-supervision steps
    halt_threshold: float = 0.5       # halt when sigmoid(q) >= threshold
    norm_eps: float = 1e-5


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 200
    ema: float = 0.999
    halt_loss_weight: float = 0.5
    eval_every: int = 1               # epochs
    wall_time_min: float = 60.0       # stop (and checkpoint) after this budget
    threads: int = 0                  # 0: all cores of the machine
    baseline: bool = True             # also train the same-size non-recursive baseline (n=1, T=1, N_sup=1)
    baseline_wall_time_min: float = 10.0
    seed: int = 0


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _coerce(value: Any, typ: Any, where: str) -> Any:
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a mapping, got {type(value).__name__}", "fix the YAML")
        return from_dict(typ, value, where)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ in (int, float, str, bool):
        if type(value) is not typ:
            raise UserError(f"{where} must be {typ.__name__}, got {value!r}", "fix the YAML")
        return value
    origin = typing.get_origin(typ)
    if origin in (list, tuple):
        (item,) = typing.get_args(typ)[:1]
        if not isinstance(value, list):
            raise UserError(f"{where} must be a list, got {value!r}", "fix the YAML")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for t in typing.get_args(typ):
            try:
                return _coerce(value, t, where)
            except UserError:
                pass
        raise UserError(f"{where} has the wrong type: {value!r}", "fix the YAML")
    return value


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build dataclass `cls` from a dict; unknown keys and type mismatches are one-line user errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}", f"valid keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def validate(cfg: Config) -> Config:
    m, t = cfg.model, cfg.task
    checks = [
        (m.hidden > 0 and m.layers > 0, f"model.hidden and model.layers must be positive ({m.hidden}, {m.layers})"),
        (m.n >= 0 and m.T >= 1 and m.N_sup >= 1, f"need n >= 0, T >= 1, N_sup >= 1 (got {m.n}, {m.T}, {m.N_sup})"),
        (0.0 <= m.halt_threshold <= 1.0, f"model.halt_threshold must be in [0, 1], got {m.halt_threshold}"),
        (m.mixer in ("mlp", "attention"), f"model.mixer must be mlp or attention, got {m.mixer!r}"),
        (m.mixer != "attention" or (m.heads > 0 and m.hidden % (2 * m.heads) == 0),
         f"model.hidden ({m.hidden}) must split into {m.heads} heads of an even size (RoPE rotates pairs)"),
        (t.patch > 0 and t.seq_len % t.patch == 0 if t.name != "sudoku" else True,
         f"task.seq_len ({t.seq_len}) must be a multiple of task.patch ({t.patch})"),
        (t.length in ("resample", "pad"), f"task.length must be resample or pad, got {t.length!r}"),
        (t.min_clues <= t.max_clues, f"task.min_clues ({t.min_clues}) > task.max_clues ({t.max_clues})"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg, "fix the config")
    return cfg


def load_yaml_mapping(path: str | Path, what: str, example: str) -> dict:
    """A YAML file that must hold a mapping (a config, a recipe); anything else is one UserError line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist", f"pick one like {example}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{what} {path} is not valid YAML ({str(e).splitlines()[0]})", "fix the YAML syntax")
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must be a mapping", f"see {example}")
    return data


def load_config(path: str | Path) -> Config:
    data = load_yaml_mapping(path, "config", "configs/ecg.yaml")
    return validate(from_dict(Config, data, where=Path(path).name))
