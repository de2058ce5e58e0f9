"""Random-weight artifacts of any size, made by the same code path as PTQ (for tests and the compile/board work
before any model is trained): standard-init float parameters -> calibration on random inputs -> quantise."""
from __future__ import annotations

from typing import Any

import numpy as np

from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.float_ref import Dims, random_inputs, random_params
from trm_tvm.quant.ptq import QuantConfig, quantise


def random_dims(hidden: int = 16, tokens: int = 8, classes: int = 5, input_kind: str = "series", n: int = 2,
                T: int = 2, N_sup: int = 4, channels: int = 1, patch: int = 8, vocab: int = 10, layers: int = 2,
                per_token: bool | None = None, expansion: float = 2.0) -> Dims:
    return Dims(tokens=tokens, hidden=hidden, classes=classes, input_kind=input_kind, channels=channels,
                patch=patch if input_kind == "series" else 1, vocab=vocab if input_kind == "tokens" else 0,
                per_token=(input_kind == "tokens") if per_token is None else per_token, layers=layers,
                ffn_tok=round(expansion * tokens), ffn_ch=round(expansion * hidden), n=n, T=T, N_sup=N_sup)


def random_artifact(hidden: int = 16, tokens: int = 8, classes: int = 5, input_kind: str = "series", n: int = 2,
                    T: int = 2, N_sup: int = 4, bits: Any = 8, state_scale_mode: str = "shared", seed: int = 0,
                    act_bits: int = 8, state_bits: int = 8, per_channel: bool = True, halt_threshold: float = 0.5,
                    calib: int = 32, **dims_kw) -> tuple[Artifact, dict[str, np.ndarray], Dims]:
    """(artifact, float params, dims). bits: one int or {float weight name pattern: bits, 'default': bits}."""
    dims = random_dims(hidden, tokens, classes, input_kind, n, T, N_sup, **dims_kw)
    params = random_params(dims, seed)
    qc = QuantConfig(name="random", weight_bits=bits, act_bits=act_bits, state_bits=state_bits,
                     per_channel=per_channel, act_observer="minmax", state_scale_mode=state_scale_mode,
                     calib_batch=calib, seed=seed)
    art = quantise(params, dims, random_inputs(dims, calib, seed + 1), qc, halt_threshold,
                   provenance={"source": {"random_seed": seed}, "calibration": {"data": "random", "samples": calib}})
    return art, params, dims


def golden_inputs(art: Artifact, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(float inputs, device inputs) of the artifact's kind: series quantised at io.input_scale, or digits."""
    from trm_tvm.quant.spec import quantize_input

    inp = random_inputs(art.dims, batch, seed)
    if art.dims.input_kind == "tokens":
        return inp, inp.astype(np.uint8)
    return inp, quantize_input(inp, art.header["io"]["input_scale"])
