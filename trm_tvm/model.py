"""The Tiny Recursive Model (TRM, arXiv 2510.04871), MLP-mixer variant, sized for microcontrollers.

One `net` (a few post-norm mixer blocks) is called over and over:

    x = embed(input) + pos                          # once per inference (the prologue)
    y, z = y_init, z_init                           # fixed random vectors, broadcast over the L tokens
    for each of N_sup supervision steps:            # (y, z) detached between steps
        for each of T cycles (first T-1 without grad):
            n times:  z = net(x + y + z)            # latent recursion
            once:     y = net(y + z)                # answer update
        logits = head(mean_t y)  (Sudoku: head(y[t]) per token);  q = halt(mean_t y)
        stop when sigmoid(q) >= halt_threshold (inference) -- trained with BCE on "prediction correct"

Parameter names are a contract with the quantiser (see /docs/integer-spec.md): they map 1:1 to the integer graph.
`model.mixer: attention` swaps the token-mixing MLP for self-attention with RoPE (on top of the learned `pos`): a
study-only variant (docs/model.md) that the quantiser refuses.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from trm_tvm.config import ModelConfig
from trm_tvm.errors import UserError


@dataclass
class Shape:
    """What the task feeds the model: series [C][S] cut into L patches of P samples, or L tokens of V symbols."""
    tokens: int                # L
    classes: int               # per sequence, or per token when per_token
    channels: int = 0          # series: C (0 for token input)
    patch: int = 0             # series: P
    vocab: int = 0             # token input: V (0 for series)
    per_token: bool = False    # Sudoku: one prediction per token


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    """down(silu(gate(v)) * up(v)), no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(v)) * self.up(v))


class Attention(nn.Module):
    """Study-only token mixing (the paper's default for large grids): multi-head self-attention, rotary positions
    (RoPE) on queries and keys, no biases, not causal."""

    def __init__(self, tokens: int, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        head_dim = dim // heads
        freqs = 10000.0 ** (-torch.arange(0, head_dim, 2).float() / head_dim)
        angles = torch.outer(torch.arange(tokens).float(), freqs)            # (L, head_dim / 2)
        self.register_buffer("cos", angles.cos(), persistent=False)          # recomputed, never saved
        self.register_buffer("sin", angles.sin(), persistent=False)

    def rope(self, t: torch.Tensor) -> torch.Tensor:
        """Rotate each (i, i + head_dim/2) pair of t (B, heads, L, head_dim) by its token's angle."""
        a, b = t.chunk(2, dim=-1)
        return torch.cat([a * self.cos - b * self.sin, a * self.sin + b * self.cos], dim=-1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:          # h: (B, L, D)
        B, L, D = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(self.rope(q), self.rope(k), v)
        return self.out(o.transpose(1, 2).reshape(B, L, D))


class MixerBlock(nn.Module):
    """Post-norm: h = norm1(h + tok(h^T)^T); h = norm2(h + ch(h)). With mixer attention: norm1(h + attn(h))."""

    def __init__(self, tokens: int, dim: int, expansion: float, eps: float, mixer: str = "mlp", heads: int = 2):
        super().__init__()
        self.mixer = mixer
        if mixer == "mlp":
            self.tok = SwiGLU(tokens, round(expansion * tokens))
        else:
            self.attn = Attention(tokens, dim, heads)
        self.norm1 = RMSNorm(dim, eps)
        self.ch = SwiGLU(dim, round(expansion * dim))
        self.norm2 = RMSNorm(dim, eps)

    def mix_tokens(self, h: torch.Tensor) -> torch.Tensor:
        if self.mixer == "attention":
            return self.attn(h)
        return self.tok(h.transpose(1, 2)).transpose(1, 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:          # h: (B, L, D)
        h = self.norm1(h + self.mix_tokens(h))
        return self.norm2(h + self.ch(h))


class Net(nn.Module):
    """One `net` call: sum the inputs, then the blocks. The same weights serve z- and y-updates."""

    def __init__(self, tokens: int, dim: int, expansion: float, layers: int, eps: float, mixer: str = "mlp",
                 heads: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(MixerBlock(tokens, dim, expansion, eps, mixer, heads) for _ in range(layers))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        h = sum(inputs)
        for layer in self.layers:
            h = layer(h)
        return h


@dataclass
class StepOutput:
    """What one supervision step leaves: the new state and its heads."""
    y: torch.Tensor            # (B, L, D)
    z: torch.Tensor            # (B, L, D)
    logits: torch.Tensor       # (B, classes) or (B, L, classes)
    q: torch.Tensor            # (B,) halting logit


class TRM(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: Shape):
        super().__init__()
        self.cfg, self.shape = cfg, shape
        L, D = shape.tokens, cfg.hidden
        if shape.vocab:
            self.embed = nn.Embedding(shape.vocab, D)
        else:
            self.embed = nn.Linear(shape.channels * shape.patch, D)
        self.pos = nn.Parameter(torch.randn(L, D) * 0.02)
        # Fixed random starting state, as the paper's code (persistent buffers, never trained): with T >= 2 the
        # first cycle runs without grad, so they could not learn anyway, and the baseline (T = 1) gets the same
        # rule. Buffers keep their state_dict names, which the quantiser reads.
        self.register_buffer("y_init", torch.randn(D))
        self.register_buffer("z_init", torch.randn(D))
        self.net = Net(L, D, cfg.expansion, cfg.layers, cfg.norm_eps, cfg.mixer, cfg.heads)
        self.head = nn.Linear(D, shape.classes)
        self.halt = nn.Linear(D, 1)
        nn.init.zeros_(self.halt.weight)
        nn.init.constant_(self.halt.bias, -3.0)   # start by never halting; the BCE target teaches when to

    # -- pieces the quantiser observes one by one --------------------------------------------------------------
    def embed_input(self, inp: torch.Tensor) -> torch.Tensor:
        """Prologue. Series inp (B, C, S) -> patches (B, L, C*P), feature index c*P + i; tokens inp (B, L) long."""
        if self.shape.vocab:
            return self.embed(inp) + self.pos
        B, C, S = inp.shape
        P = self.shape.patch
        patches = inp.reshape(B, C, S // P, P).permute(0, 2, 1, 3).reshape(B, S // P, C * P)
        return self.embed(patches) + self.pos

    def initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.y_init.expand_as(x), self.z_init.expand_as(x)

    def net_call(self, *inputs: torch.Tensor) -> torch.Tensor:
        """One `net` call: z-update net_call(x, y, z) or y-update net_call(y, z)."""
        return self.net(*inputs)

    def cycle(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """n latent updates z = net(x, y, z), then one answer update y = net(y, z)."""
        for _ in range(self.cfg.n):
            z = self.net_call(x, y, z)
        y = self.net_call(y, z)
        return y, z

    def heads(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = y.mean(dim=1)
        logits = self.head(y) if self.shape.per_token else self.head(p)
        return logits, self.halt(p).squeeze(-1)

    def supervision_step(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> StepOutput:
        """T cycles, the first T-1 without gradients (the paper's 1-step gradient over the last cycle)."""
        with torch.no_grad():
            for _ in range(self.cfg.T - 1):
                y, z = self.cycle(x, y, z)
        y, z = self.cycle(x, y, z)
        logits, q = self.heads(y)
        return StepOutput(y, z, logits, q)

    # -- whole inference -----------------------------------------------------------------------------------------
    def forward(self, inp: torch.Tensor, n_sup: int | None = None) -> list[StepOutput]:
        """All supervision steps (fixed compute); each step starts from the previous one's detached (y, z)."""
        x = self.embed_input(inp)
        y, z = self.initial_state(x)
        steps = []
        for _ in range(n_sup or self.cfg.N_sup):
            out = self.supervision_step(x, y, z)
            steps.append(out)
            y, z = out.y.detach(), out.z.detach()
        return steps

    # -- sizes ---------------------------------------------------------------------------------------------------
    def num_params(self) -> int:
        """Every stored value (the state_dict): trained weights plus the fixed y_init / z_init a device also holds."""
        return sum(v.numel() for v in self.state_dict().values())

    def macs(self) -> dict[str, int]:
        """Multiply-accumulates of the linear layers (elementwise ops, norms and pooling not counted)."""
        L, D, s = self.shape.tokens, self.cfg.hidden, self.shape
        net = sum(_token_mixing_macs(b, L, D) + _swiglu_macs(b.ch, rows=L) for b in self.net.layers)
        prologue = 0 if s.vocab else L * s.channels * s.patch * D
        head = (L if s.per_token else 1) * D * s.classes + D
        calls = self.cfg.T * (self.cfg.n + 1)
        step = calls * net + head
        return {"net_call": net, "prologue": prologue, "head": head, "net_calls_per_step": calls,
                "per_step": step, "fixed_inference": prologue + self.cfg.N_sup * step}


def _swiglu_macs(mlp: SwiGLU, rows: int) -> int:
    return rows * sum(m.in_features * m.out_features for m in (mlp.gate, mlp.up, mlp.down))


def _token_mixing_macs(block: MixerBlock, L: int, D: int) -> int:
    if block.mixer == "attention":
        return L * 4 * D * D + 2 * L * L * D          # q, k, v, out projections; scores and weighted sum
    return _swiglu_macs(block.tok, rows=D)


class EMA:
    """Exponential moving average of the weights; the EMA copy is what gets evaluated and shipped."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - self.decay)


# -- checkpoints: one .pt with the EMA weights, the config, the task shape and metadata ------------------------------
CHECKPOINT_FORMAT = "trm-tvm-checkpoint/1"


def checkpoint_dict(model: TRM, config: dict, meta: dict, baseline: TRM | None = None) -> dict:
    ckpt = {"format": CHECKPOINT_FORMAT, "config": config, "shape": vars(model.shape).copy(),
            "model": model.state_dict(), "meta": _plain(meta)}
    if baseline is not None:
        ckpt["baseline"] = {"model_config": vars(baseline.cfg).copy(), "model": baseline.state_dict()}
    return ckpt


def _plain(obj):
    """Metadata as plain Python types (numpy scalars -> numbers) so the file loads with weights_only=True."""
    import json
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def load_checkpoint(path) -> tuple[TRM, "Config", dict]:
    """(model in eval mode with EMA weights, its Config, the whole checkpoint dict); bad files are UserErrors."""
    from pathlib import Path

    from trm_tvm.config import Config, from_dict, validate

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist", "train one with python -m trm_tvm.train")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated / foreign files
        raise UserError(f"checkpoint {path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                        "it is corrupted or not a trm-tvm checkpoint; retrain or re-copy it")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} file",
                        "pass a model.pt written by python -m trm_tvm.train")
    cfg = validate(from_dict(Config, ckpt["config"]))
    model = TRM(cfg.model, Shape(**ckpt["shape"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise UserError(f"checkpoint {path} does not match its config ({str(e).splitlines()[0][:120]})",
                        "retrain it; the weights and config.model disagree")
    return model.eval(), cfg, ckpt


def load_baseline(ckpt: dict) -> TRM | None:
    """The same-size non-recursive baseline stored beside the TRM in a checkpoint, if it was trained."""
    if "baseline" not in ckpt:
        return None
    b = ckpt["baseline"]
    model = TRM(ModelConfig(**b["model_config"]), Shape(**ckpt["shape"]))
    model.load_state_dict(b["model"])
    return model.eval()
