"""The TRM forward in numpy floats: the FP reference of the quantised model and what calibration observes.

Parameters are the torch state_dict of trm_tvm.model.TRM as numpy arrays (names in /work/coord CONTRACTS /
docs/artifact.md). The structure mirrors docs/integer-spec.md node for node, and `tap(name, value, call)` sees every
activation under the name the integer graph gives it, so observers calibrate exactly the tensors that get a scale.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from trm_tvm.errors import UserError

Params = dict[str, np.ndarray]
Tap = Optional[Callable[[str, np.ndarray, Optional[int]], None]]   # (graph name, value, call index or None)


@dataclass(frozen=True)
class Dims:
    """Everything about a TRM's shape that the integer graph depends on."""
    tokens: int                 # L
    hidden: int                 # D
    classes: int
    input_kind: str = "series"  # series | tokens
    channels: int = 1           # series: C
    patch: int = 16             # series: P (samples = tokens * patch)
    vocab: int = 0              # tokens: V
    per_token: bool = False
    layers: int = 2
    ffn_tok: int = 0            # Ht (0: round(2 * L))
    ffn_ch: int = 0             # H (0: round(2 * D))
    n: int = 2
    T: int = 2
    N_sup: int = 4
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.ffn_tok == 0:
            object.__setattr__(self, "ffn_tok", round(2 * self.tokens))
        if self.ffn_ch == 0:
            object.__setattr__(self, "ffn_ch", round(2 * self.hidden))
        if self.input_kind not in ("series", "tokens"):
            raise ValueError(f"input_kind must be series or tokens, got {self.input_kind!r}")

    @property
    def samples(self) -> int:
        return self.tokens * self.patch

    @property
    def calls_per_step(self) -> int:
        return self.T * (self.n + 1)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, self.samples) if self.input_kind == "series" else (self.tokens,)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_model(cls, model_cfg, shape) -> "Dims":
        """From trm_tvm.config.ModelConfig and trm_tvm.model.Shape."""
        if model_cfg.mixer != "mlp":
            raise UserError(f"model.mixer {model_cfg.mixer!r} is a study-only variant with no integer graph",
                            "quantise a model trained with model.mixer: mlp")
        return cls(tokens=shape.tokens, hidden=model_cfg.hidden, classes=shape.classes,
                   input_kind="tokens" if shape.vocab else "series", channels=shape.channels or 1,
                   patch=shape.patch or 1, vocab=shape.vocab, per_token=shape.per_token, layers=model_cfg.layers,
                   ffn_tok=round(model_cfg.expansion * shape.tokens), ffn_ch=round(model_cfg.expansion * model_cfg.hidden),
                   n=model_cfg.n, T=model_cfg.T, N_sup=model_cfg.N_sup, norm_eps=model_cfg.norm_eps)


def call_updates(dims: Dims) -> list[str]:
    """The update ('z' or 'y') of each of the T*(n+1) net calls of one supervision step, in order."""
    return (["z"] * dims.n + ["y"]) * dims.T


def silu(v: np.ndarray) -> np.ndarray:
    return v / (1.0 + np.exp(-v))


def rmsnorm(h: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    return h / np.sqrt((h * h).mean(-1, keepdims=True) + eps) * gamma


def _noop(name, value, call=None):
    pass


def swiglu(params: Params, prefix: str, v: np.ndarray, name: str, tap, call) -> np.ndarray:
    g = v @ params[f"{prefix}.gate.weight"].T
    u = v @ params[f"{prefix}.up.weight"].T
    a = silu(g)
    p = a * u
    for key, val in (("g", g), ("u", u), ("a", a), ("p", p)):
        tap(f"{name}.{key}", val, call)
    out = p @ params[f"{prefix}.down.weight"].T
    tap(f"{name}.out", out, call)
    return out


def net(params: Params, dims: Dims, inputs: list[np.ndarray], tap: Tap = None, call: int | None = None) -> np.ndarray:
    """One net call on (B, L, D) inputs: h0 = sum, then post-norm mixer blocks."""
    tap = tap or _noop
    h = sum(inputs)
    tap("h0", h, call)
    for i in range(dims.layers):
        pre = f"net.layers.{i}"
        t = swiglu(params, f"{pre}.tok", np.swapaxes(h, -1, -2), f"l{i}.tok", tap, call)
        h = rmsnorm(h + np.swapaxes(t, -1, -2), params[f"{pre}.norm1.weight"], dims.norm_eps)
        tap(f"l{i}.h1", h, call)
        c = swiglu(params, f"{pre}.ch", h, f"l{i}.ch", tap, call)
        h = rmsnorm(h + c, params[f"{pre}.norm2.weight"], dims.norm_eps)
        tap(f"l{i}.h2", h, call)
    return h


def prologue(params: Params, dims: Dims, inp: np.ndarray, tap: Tap = None) -> np.ndarray:
    """Series (B, C, S) float or tokens (B, L) int -> x (B, L, D)."""
    tap = tap or _noop
    if dims.input_kind == "tokens":
        e = params["embed.weight"][np.asarray(inp, dtype=np.int64)]
    else:
        B = inp.shape[0]
        patches = inp.reshape(B, dims.channels, dims.tokens, dims.patch).transpose(0, 2, 1, 3)
        patches = patches.reshape(B, dims.tokens, dims.channels * dims.patch)
        e = patches @ params["embed.weight"].T + params["embed.bias"]
    tap("e", e, None)
    x = e + params["pos"]
    tap("x", x, None)
    return x


def heads(params: Params, dims: Dims, y: np.ndarray, tap: Tap = None) -> tuple[np.ndarray, np.ndarray]:
    """logits (B, K) or (B, L, K) and the halting logit q (B,)."""
    tap = tap or _noop
    p = y.mean(axis=-2)
    tap("p", p, None)
    logits = (y if dims.per_token else p) @ params["head.weight"].T + params["head.bias"]
    q = (p @ params["halt.weight"].T + params["halt.bias"])[..., 0]
    tap("logits", logits, None)
    tap("q", q, None)
    return logits, q


@dataclass
class FloatResult:
    logits: np.ndarray          # (B, N_sup, K) or (B, N_sup, L, K): every supervision step's logits
    q: np.ndarray               # (B, N_sup)
    states: list[tuple[np.ndarray, np.ndarray]] | None = None   # (y, z) after every call, if asked


def forward(params: Params, dims: Dims, inp: np.ndarray, n_sup: int | None = None, tap: Tap = None,
            keep_states: bool = False) -> FloatResult:
    """Fixed compute over all supervision steps (halting is a post-hoc choice of step from q)."""
    tap = tap or _noop
    x = prologue(params, dims, inp, tap)
    y = np.broadcast_to(params["y_init"], x.shape)
    z = np.broadcast_to(params["z_init"], x.shape)
    logits, qs, states = [], [], []
    for _ in range(n_sup or dims.N_sup):
        for call, update in enumerate(call_updates(dims)):
            if update == "z":
                z = net(params, dims, [x, y, z], tap, call)
                tap("state", z, call)
            else:
                y = net(params, dims, [y, z], tap, call)
                tap("state", y, call)
            if keep_states:
                states.append((y, z))
        lg, q = heads(params, dims, y, tap)
        logits.append(lg)
        qs.append(q)
    return FloatResult(np.stack(logits, 1), np.stack(qs, 1), states if keep_states else None)


def halted_step(q: np.ndarray, threshold: float) -> np.ndarray:
    """0-based index of the step where float halting stops: first sigmoid(q) >= threshold, else the last."""
    stop = 1.0 / (1.0 + np.exp(-q)) >= threshold
    stop[:, -1] = True
    return np.argmax(stop, axis=1)


def random_params(dims: Dims, seed: int = 0) -> Params:
    """Standard-init float parameters (torch's default Linear init, gammas around 1) with the contract's names."""
    rng = np.random.default_rng(seed)
    L, D, H, Ht, K = dims.tokens, dims.hidden, dims.ffn_ch, dims.ffn_tok, dims.classes

    def lin(o, i):
        b = 1.0 / np.sqrt(i)
        return rng.uniform(-b, b, (o, i))

    p: Params = {}
    if dims.input_kind == "tokens":
        p["embed.weight"] = rng.normal(0, 1, (dims.vocab, D))
    else:
        fan_in = dims.channels * dims.patch
        p["embed.weight"] = lin(D, fan_in)
        p["embed.bias"] = rng.uniform(-1, 1, D) / np.sqrt(fan_in)
    p["pos"] = rng.normal(0, 0.02, (L, D))
    p["y_init"] = rng.normal(0, 1, D)
    p["z_init"] = rng.normal(0, 1, D)
    for i in range(dims.layers):
        pre = f"net.layers.{i}"
        for mix, dim, hid in (("tok", L, Ht), ("ch", D, H)):
            p[f"{pre}.{mix}.gate.weight"] = lin(hid, dim)
            p[f"{pre}.{mix}.up.weight"] = lin(hid, dim)
            p[f"{pre}.{mix}.down.weight"] = lin(dim, hid)
        p[f"{pre}.norm1.weight"] = rng.uniform(0.7, 1.3, D)
        p[f"{pre}.norm2.weight"] = rng.uniform(0.7, 1.3, D)
    p["head.weight"] = lin(K, D)
    p["head.bias"] = rng.uniform(-1, 1, K) / np.sqrt(D)
    p["halt.weight"] = lin(1, D)
    p["halt.bias"] = np.zeros(1)
    return p


def random_inputs(dims: Dims, batch: int, seed: int = 0) -> np.ndarray:
    """Inputs of the right kind: N(0, 1) series or uniform digits (for calibration of random-weight models)."""
    rng = np.random.default_rng(seed)
    if dims.input_kind == "tokens":
        return rng.integers(0, dims.vocab, (batch, dims.tokens))
    return rng.normal(0, 1, (batch, *dims.input_shape))
