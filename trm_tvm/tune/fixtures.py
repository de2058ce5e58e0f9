"""Random-weight artifacts of the ECG deploy model's shape (configs/ecg.yaml: 16 tokens of 32 samples, hidden 48,
expansion 2, 2 layers, n=2, T=2, N_sup=4) for tuning before trained artifacts exist; accuracy is meaningless,
shapes and so cycles are the model's."""
from __future__ import annotations

from pathlib import Path

from trm_tvm.errors import UserError

ECG = dict(hidden=48, tokens=16, classes=5, patch=32, channels=1, expansion=2.0, layers=2, n=2, T=2, N_sup=4)
KINDS = {"w8a8": dict(bits=8, seed=31), "w4a8": dict(bits=4, seed=32, state_scale_mode="per_step")}


def ecg_random(kind: str, out_dir: Path) -> Path:
    if kind not in KINDS:
        raise UserError(f"unknown random artifact random:{kind}", f"use random:{' | random:'.join(KINDS)}")
    path = out_dir / f"ecg-random-{kind}.npz"
    if not path.is_file():
        from trm_tvm.quant.fixtures import random_artifact
        out_dir.mkdir(parents=True, exist_ok=True)
        random_artifact(**ECG, **KINDS[kind])[0].save(path)
    return path
