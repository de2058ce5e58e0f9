"""Mixed precision: per-layer sensitivity to 4-bit weights, then a greedy assignment that meets a flash budget.

Sensitivity of a layer = golden accuracy (on held-out train samples, never the test set) with only that layer's
weights at 4 bits. The assignment drops layers to 4 bits in order of least accuracy lost per byte saved until the
weight bytes fit the budget; evaluating every prefix of that order gives the accuracy-vs-bytes front.
Activation scales do not depend on weight bits, so one calibration serves every configuration (ptq.build).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from trm_tvm.quant.evaluation import correct, golden_run
from trm_tvm.quant.float_ref import Dims
from trm_tvm.quant.ptq import QuantConfig, Scales, build


def candidate_layers(dims: Dims) -> list[str]:
    """Float weights that may drop to 4 bits (the heads stay 8-bit: the int16 head kernel is s8 only)."""
    names = ["embed.weight"] if dims.input_kind == "series" else []
    for i in range(dims.layers):
        for mix in ("tok", "ch"):
            names += [f"net.layers.{i}.{mix}.{p}.weight" for p in ("gate", "up", "down")]
    return names


def weight_layers(dims: Dims) -> list[str]:
    """Every weight tensor on the device: the candidates, the heads and (tokens) the embedding table."""
    fixed = ["head.weight", "halt.weight"] + (["embed.weight"] if dims.input_kind == "tokens" else [])
    return candidate_layers(dims) + fixed


def layer_bytes(params: dict, name: str, bits: int) -> int:
    n_out, n_in = params[name].shape
    return n_out * (n_in if bits == 8 else (n_in + 1) // 2)


def weight_bytes(params: dict, qc: QuantConfig, dims: Dims) -> int:
    """Device weight bytes under qc's bit assignment (packed int4 rows padded to whole bytes)."""
    return sum(layer_bytes(params, n, qc.bits_for(n)) for n in weight_layers(dims))


def with_bits(qc: QuantConfig, four: list[str], name: str) -> QuantConfig:
    return dataclasses.replace(qc, name=name, weight_bits={"default": 8, **{n: 4 for n in four}})


def accuracy(params, dims, scales: Scales, qc: QuantConfig, x, y, halt_threshold: float) -> float:
    art = build(params, dims, scales, qc, halt_threshold)
    return float(np.mean(correct(golden_run(art, x)["pred"], y)))


def sensitivity(params, dims, scales, qc, x, y, halt_threshold, log=print) -> dict[str, float]:
    """Accuracy with only that layer at 4 bits, per candidate layer (plus 'none': all 8-bit)."""
    out = {"none": accuracy(params, dims, scales, with_bits(qc, [], "w8"), x, y, halt_threshold)}
    for name in candidate_layers(dims):
        out[name] = accuracy(params, dims, scales, with_bits(qc, [name], f"{name}@4"), x, y, halt_threshold)
        log(f"sensitivity {name}: {100 * out[name]:.2f} % (all 8-bit {100 * out['none']:.2f} %)")
    return out


def greedy_order(params, dims, sens: dict[str, float]) -> list[str]:
    """Layers in the order they drop to 4 bits: least accuracy lost per byte saved first."""
    def cost(name):
        saved = layer_bytes(params, name, 8) - layer_bytes(params, name, 4)
        return (sens["none"] - sens[name]) / saved
    return sorted(candidate_layers(dims), key=cost)


def front(params, dims, scales, qc, order, x, y, halt_threshold) -> list[dict]:
    """Accuracy and weight bytes after dropping each prefix of `order` to 4 bits (0 .. all layers)."""
    pts = []
    for k in range(len(order) + 1):
        q = with_bits(qc, order[:k], f"mixed{k}")
        pts.append({"four_bit": order[:k], "weight_bytes": weight_bytes(params, q, dims),
                    "accuracy": accuracy(params, dims, scales, q, x, y, halt_threshold)})
    return pts


def assign(params, dims, order: list[str], qc: QuantConfig, budget_bytes: int) -> QuantConfig:
    """The shortest prefix of `order` at 4 bits whose device weight bytes fit the budget."""
    for k in range(len(order) + 1):
        q = with_bits(qc, order[:k], "mixed")
        if weight_bytes(params, q, dims) <= budget_bytes:
            return q
    need = weight_bytes(params, with_bits(qc, order, "mixed"), dims)
    raise ValueError(f"even every layer at 4 bits needs {need} weight bytes > budget {budget_bytes}")
