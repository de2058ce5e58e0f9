"""TEST STUB: build directories around tests/fixtures/stub_model (a trivial trm_model.h implementation) with D's
real reference kernels (and E's hand-written ones), plus the Python twin of the stub's arithmetic."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STUB = Path(__file__).resolve().parent / "fixtures" / "stub_model"
KERNELS = REPO / "project_templates" / "kernels"
INPUT_BYTES, OUTPUT_LEN, N_SUP = 1500, 5, 4


def make_build_dir(path: Path, board: str = "cortex-m4", *, weight_bytes: int = 0, arena_bytes: int = 2048,
                   handwritten: tuple[str, ...] = ()) -> Path:
    """A build directory (docs/build-dir.md) holding the stub model and the reference kernels."""
    model = path / "model"
    model.mkdir(parents=True, exist_ok=True)
    for f in STUB.iterdir():
        shutil.copy2(f, model / f.name)
    shutil.copy2(KERNELS / "trm_kernels.h", model / "trm_kernels.h")
    shutil.copy2(KERNELS / "reference" / "trm_kernels_ref.c", model / "trm_kernels_ref.c")
    sources = ["model/trm_model.c", "model/trm_kernels_ref.c"]
    if handwritten:                     # E's kernels, e.g. ("dsp",) or ("mve",): the variants the core can run
        for f in (KERNELS / "handwritten").glob("*.h"):
            shutil.copy2(f, model / f.name)
        for name in [f"trm_kernels_{v}.c" for v in handwritten] + ["trm_ops_dsp.c"]:  # + the element-wise kernels
            shutil.copy2(KERNELS / "handwritten" / name, model / name)
            sources.append(f"model/{name}")
    manifest = {
        "schema": "trm-tvm-build", "version": 1, "board": board,
        "artifact": {"path": "stub", "sha256": "0" * 64, "precision": "w8a8"},
        "kernels": "reference", "schedule": "default", "opt": "-O2", "sources": sources,
        "include_dirs": ["model"], "defines": {"TRM_PROFILE_LAYERS": 0}, "arena_bytes": arena_bytes,
        "weight_bytes": {"weights": weight_bytes, "biases": 0, "multipliers": 0, "luts": 0, "other": 0, "padding": 0},
        "io": {"input_bytes": INPUT_BYTES, "input_dtype": "int8", "input_shape": [1, INPUT_BYTES],
               "output_len": OUTPUT_LEN, "output_dtype": "int16", "num_classes": OUTPUT_LEN, "per_token": False},
        "schedule_info": {"n": 2, "T": 2, "N_sup": N_SUP, "calls_per_step": 6},
        "phases": ["prologue", "net", "heads"],
    }
    (path / "build.json").write_text(json.dumps(manifest, indent=2))
    return path


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def golden(x: np.ndarray, q_threshold: int, max_steps: int) -> dict:
    """Python twin of tests/fixtures/stub_model/trm_model.c (C integer division truncates toward zero)."""
    x = [int(v) for v in np.asarray(x, dtype=np.int8).ravel()]
    state = [sum(x[j] * ((i + j) % 7 - 3) for j in range(INPUT_BYTES)) for i in range(OUTPUT_LEN)]
    step, q, logits = 0, 0, [0] * OUTPUT_LEN
    while step < max_steps:
        state = [_trunc_div(state[i] * 3, 4) + x[(step * 31 + i) % INPUT_BYTES] * 16 for i in range(OUTPUT_LEN)]
        step += 1
        q = max(-32768, min(32767, _trunc_div(state[0] - state[1], 8)))
        logits = [max(-32768, min(32767, _trunc_div(v, 4))) for v in state]
        if q >= q_threshold:
            break
    return {"logits": np.array(logits, dtype=np.int16), "pred": int(np.argmax(logits)), "q": q, "steps": step}
