"""Post-training quantisation: float parameters + calibration inputs + a recipe -> an Artifact.

One code path for trained checkpoints and random-weight fixtures:
1. observe: run float_ref on the calibration inputs, collecting every graph activation (and the state per call);
2. choose scales: activations symmetric at act_bits (observer: minmax | percentile | mse), weights symmetric per
   output channel or per tensor at 8 or 4 bits (minmax | mse);
3. build the integer graph of docs/integer-spec.md with every multiplier, LUT and bias derived from those scales.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trm_tvm.quant import spec
from trm_tvm.quant.artifact import FORMAT, VERSION, Artifact, validate
from trm_tvm.quant.float_ref import Dims, Params, call_updates, forward

LOGIT_HEADROOM = 2.0          # int16 logits / q keep 2x the calibrated range (16 bits are plenty)


@dataclass
class QuantConfig:
    """A recipe (qat/*.yaml). weight_bits: one int, or {pattern: bits} over float weight names with 'default'."""
    name: str = "w8a8"
    method: str = "ptq"                      # ptq | qat
    weight_bits: Any = 8
    act_bits: int = 8                        # 8 on the device; 4 is the study-only W4A4
    state_bits: int = 8                      # 8 on the device; 4 (W4A4) and 16 (wide state) are study-only
    per_channel: bool = True
    weight_observer: str = "minmax"          # minmax | mse
    act_observer: str = "percentile"         # minmax | percentile | mse
    percentile: float = 99.99
    state_scale_mode: str = "shared"         # shared | per_step
    linear_multipliers: str = "normalised"   # normalised | shift32: the (M, sh) encoding of `linear` nodes
    calib_samples: int = 256
    calib_batch: int = 64
    seed: int = 0
    qat: dict = field(default_factory=dict)  # QAT-only settings (later work)

    def bits_for(self, weight: str) -> int:
        """Weight bits of one float weight; heads stay at 8 bits (the int16 head kernel is s8 only)."""
        if weight.startswith(("head.", "halt.")):
            return 8
        if isinstance(self.weight_bits, int):
            return self.weight_bits
        for pattern, bits in self.weight_bits.items():
            if pattern != "default" and fnmatch.fnmatch(weight, pattern):
                return int(bits)
        return int(self.weight_bits.get("default", 8))

    def check(self) -> None:
        bits = [self.weight_bits] if isinstance(self.weight_bits, int) else list(self.weight_bits.values())
        problems = [
            (all(b in (4, 8) for b in bits), f"weight_bits must be 4 or 8, got {self.weight_bits}"),
            (self.act_bits in (4, 8), f"act_bits must be 4 or 8, got {self.act_bits}"),
            (self.state_bits in (4, 8, 16), f"state_bits must be 4, 8 or 16, got {self.state_bits}"),
            (self.weight_observer in ("minmax", "mse"), f"weight_observer {self.weight_observer!r} not minmax|mse"),
            (self.act_observer in ("minmax", "percentile", "mse"),
             f"act_observer {self.act_observer!r} not minmax|percentile|mse"),
            (self.state_scale_mode in ("shared", "per_step"),
             f"state_scale_mode {self.state_scale_mode!r} not shared|per_step"),
            (self.method in ("ptq", "qat"), f"method {self.method!r} not ptq|qat"),
            (self.linear_multipliers in spec.LINEAR_MULTIPLIER_ENCODINGS,
             f"linear_multipliers {self.linear_multipliers!r} not {'|'.join(spec.LINEAR_MULTIPLIER_ENCODINGS)}"),
            (0 < self.percentile <= 100, "percentile must be in (0, 100]"),
        ]
        for ok, msg in problems:
            if not ok:
                raise ValueError(msg)


# -- observers -----------------------------------------------------------------------------------------------------
class Observer:
    """Absolute values of one activation: running max plus a bounded random sample for percentile / MSE."""

    def __init__(self, rng: np.random.Generator, keep: int = 1 << 16):
        self.absmax = 0.0
        self.samples: list[np.ndarray] = []
        self.kept = 0
        self.keep = keep
        self.rng = rng

    def add(self, v: np.ndarray) -> None:
        a = np.abs(np.asarray(v, dtype=np.float64)).ravel()
        if not a.size:
            return
        self.absmax = max(self.absmax, float(a.max()))
        take = min(a.size, max(self.keep // 8, 1))
        self.samples.append(self.rng.choice(a, take, replace=False) if take < a.size else a)
        self.kept += take
        if self.kept > 2 * self.keep:
            allv = np.concatenate(self.samples)
            self.samples = [self.rng.choice(allv, self.keep, replace=False)]
            self.kept = self.keep

    def clip(self, method: str, bits: int, percentile: float) -> float:
        if method == "minmax" or not self.samples:
            return self.absmax
        v = np.concatenate(self.samples)
        if method == "percentile":
            return float(np.percentile(v, percentile))
        return float(mse_clip(v[None, :], bits)[0])


def mse_clip(abs_rows: np.ndarray, bits: int) -> np.ndarray:
    """Per row of |values| (R, N): the clipping value among 40 fractions of the row's max that minimises the
    symmetric quantisation MSE (0 for an all-zero row)."""
    qmax = 2 ** (bits - 1) - 1
    absmax = abs_rows.max(axis=1)
    cands = absmax[:, None] * np.linspace(0.2, 1.0, 40)[None, :]                 # (R, 40)
    s = np.where(cands > 0, cands, 1.0)[:, :, None] / qmax
    v = abs_rows[:, None, :]
    err = ((np.clip(np.floor(v / s + 0.5), 0, qmax) * s - v) ** 2).mean(axis=2)  # (R, 40)
    return cands[np.arange(len(cands)), err.argmin(axis=1)]


def act_scale(clip: float, bits: int) -> float:
    """Symmetric scale; an all-zero activation gets an arbitrary positive scale."""
    return (clip if clip > 0 else 1.0) / (2 ** (bits - 1) - 1)


def quantise_weight(w: np.ndarray, bits: int, per_channel: bool, observer: str) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric weights in [-(2^(b-1)-1), 2^(b-1)-1] -> (int8 values [out][in], float scale per output row)."""
    qmax = 2 ** (bits - 1) - 1
    rows = np.abs(w) if per_channel else np.abs(w).reshape(1, -1)
    if observer == "mse":
        clip = mse_clip(rows, bits)
    else:
        clip = rows.max(axis=1)
    s = np.where(clip > 0, clip, 1.0) / qmax
    s = np.broadcast_to(s, (w.shape[0],)).copy()
    q = np.clip(np.floor(w / s[:, None] + 0.5), -qmax, qmax).astype(np.int8)
    return q, s


# -- observation ---------------------------------------------------------------------------------------------------
def observe(params: Params, dims: Dims, inputs: np.ndarray, batch: int, seed: int = 0) -> dict:
    """Observers for every graph activation ('state', call) per call; 'input' for series inputs."""
    rng = np.random.default_rng(seed)
    obs: dict = {}

    def tap(name, value, call):
        key = (name, call) if name == "state" else name
        if key not in obs:
            obs[key] = Observer(rng)
        obs[key].add(value)

    for i in range(0, len(inputs), batch):
        chunk = inputs[i:i + batch]
        if dims.input_kind == "series":
            tap("input", chunk, None)
        forward(params, dims, np.asarray(chunk, dtype=np.float64), tap=tap)
    return obs


# -- the graph builder -----------------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, qc: QuantConfig, dims: Dims):
        self.qc, self.dims = qc, dims
        self.tensors: dict[str, np.ndarray] = {}
        self.table: dict[str, dict] = {}
        self.acts: dict[str, dict] = {}

    def tensor(self, name: str, value: np.ndarray, kind: str) -> str:
        self.tensors[name] = value
        self.table[name] = {"dtype": str(value.dtype), "shape": list(value.shape), "kind": kind}
        return name

    def act(self, name: str, shape: tuple, dtype: str, scale: float | None) -> str:
        self.acts[name] = {"shape": list(shape), "dtype": dtype, "scale": scale}
        return name

    def linear(self, op: str, name: str, inp: str, out: str, w: np.ndarray, bias: np.ndarray | None,
               s_in: float, s_out: float, rows_shape: tuple, out_dtype: str) -> dict:
        """A linear / head node: quantised weights (packed when 4-bit), int32 bias, per-channel (M, sh) -- the
        recipe's `linear_multipliers` encoding for `linear` nodes; heads (int16 logits, one row per supervision
        step) always normalised: 16-bit outputs want the full 31-bit multiplier, and their rq costs next to nothing."""
        bits = self.qc.bits_for(f"{name}.weight")
        q, s_w = quantise_weight(w, bits, self.qc.per_channel, self.qc.weight_observer)
        n_out, n_in = w.shape
        wq = spec.pack_s4(q) if bits == 4 else q
        node = {"op": op, "name": name, "inputs": [inp], "output": out,
                "weight": self.tensor(f"{name}.weight", wq, "weights"), "bits": bits, "n_in": n_in, "n_out": n_out}
        self.tensor(f"{name}.weight.scale", s_w.astype(np.float64), "study")
        row_abs = 128 * np.abs(q.astype(np.int64)).sum(axis=1)
        node["bias"] = None
        b_int = np.zeros(n_out, np.int64)
        if bias is not None:
            limit = spec.INT32_MAX - row_abs
            b_int = np.clip(np.floor(bias / (s_in * s_w) + 0.5), -limit, limit).astype(np.int64)
            node["bias"] = self.tensor(f"{name}.bias", b_int.astype(np.int32), "biases")
        m = s_in * s_w / s_out
        encode = spec.LINEAR_MULTIPLIER_ENCODINGS[self.qc.linear_multipliers if op == "linear" else "normalised"]
        M, sh = encode(m)
        worst = (np.abs(b_int) + row_abs) * np.abs(spec.decode_multiplier(M, sh))
        if worst.max() >= 2 ** 31:
            raise ValueError(f"{name}: multiplier {m.max():g} could overflow int32 in rq (quantiser bug)")
        node["mult"] = self.tensor(f"{name}.mult", M, "multipliers")
        node["shift"] = self.tensor(f"{name}.shift", sh, "multipliers")
        self.act(out, (*rows_shape, n_out), out_dtype, s_out)
        return node


def _clip(obs: dict, key, qc: QuantConfig, bits: int) -> float:
    return obs[key].clip(qc.act_observer, bits, qc.percentile)


@dataclass
class Scales:
    """Every calibrated activation scale; everything else in an artifact follows from these and the weights."""
    act: dict[str, float]         # graph activation name -> scale
    input: float | None           # series input (int8 whatever act_bits is)
    state: list[float]            # output (state) scale of each call position
    init: dict[str, float]        # y_init / z_init scales (= the last y- / z-call's)
    logit: float
    q: float


def calibrate(params: Params, dims: Dims, calib_inputs: np.ndarray, qc: QuantConfig) -> Scales:
    """Observe the float model on `calib_inputs` (float series (B, C, S) or digits (B, L)) and pick the scales."""
    obs = observe(params, dims, calib_inputs, qc.calib_batch, qc.seed)
    ab, sb = qc.act_bits, qc.state_bits
    act = {k: act_scale(_clip(obs, k, qc, ab), ab) for k in obs if not isinstance(k, tuple) and k != "input"}
    s_in = act_scale(_clip(obs, "input", qc, 8), 8) if dims.input_kind == "series" else None
    # state scales per call position; y_init / z_init must fit the scale the last y / z call leaves
    updates = call_updates(dims)
    qmax_s = 2 ** (sb - 1) - 1
    inits = {"y": float(np.abs(params["y_init"]).max()), "z": float(np.abs(params["z_init"]).max())}
    last_call = {u: max(i for i, x in enumerate(updates) if x == u) for u in set(updates)}
    clips = [max([_clip(obs, ("state", i), qc, sb)] + [inits[u] for u in last_call if last_call[u] == i])
             for i in range(len(updates))]
    if qc.state_scale_mode == "shared":
        state = [max(*clips, *inits.values()) / qmax_s] * len(updates)
    else:
        state = [(c if c > 0 else 1.0) / qmax_s for c in clips]
    init = {u: state[last_call[u]] if u in last_call else (inits[u] or 1.0) / qmax_s for u in ("y", "z")}
    return Scales(act, s_in, state, init,
                  logit=LOGIT_HEADROOM * max(obs["logits"].absmax, 1e-6) / (2 ** 15 - 1),
                  q=LOGIT_HEADROOM * max(obs["q"].absmax, 1e-3) / (2 ** 15 - 1))


def scales_of(art: Artifact) -> Scales:
    """The scales an artifact was built with (to rebuild it from changed weights, e.g. during QAT)."""
    h = art.header
    return Scales({k: v["scale"] for k, v in h["activations"].items() if v["scale"] is not None},
                  h["io"]["input_scale"], [c["out_scale"] for c in h["schedule"]["calls"]],
                  dict(h["state_init_scales"]), h["io"]["logit_scale"], h["halting"]["q_scale"])


def quantise(params: Params, dims: Dims, calib_inputs: np.ndarray, qc: QuantConfig, halt_threshold: float = 0.5,
             provenance: dict | None = None) -> Artifact:
    """PTQ: calibrate on `calib_inputs`, then build the artifact."""
    qc.check()
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return build(params, dims, calibrate(params, dims, calib_inputs, qc), qc, halt_threshold, provenance)


def build(params: Params, dims: Dims, scales: Scales, qc: QuantConfig, halt_threshold: float = 0.5,
          provenance: dict | None = None) -> Artifact:
    """The integer graph, tensors and schedule from float weights and fixed activation scales."""
    ab, sb = qc.act_bits, qc.state_bits
    a_t, s_t = "int8", "int8" if sb <= 8 else "int16"
    scale = dict(scales.act)
    b = _Builder(qc, dims)
    L, D = dims.tokens, dims.hidden
    updates = call_updates(dims)

    # -- prologue
    prologue = []
    if dims.input_kind == "series":
        s_in = scales.input
        C, S, P = dims.channels, dims.samples, dims.patch
        prologue.append({"op": "patch", "name": "patch", "inputs": ["input"], "output": "patches",
                         "channels": C, "samples": S, "patch": P})
        b.act("patches", (L, C * P), "int8", s_in)
        prologue.append(b.linear("linear", "embed", "patches", "e", params["embed.weight"], params["embed.bias"],
                                 s_in, scale["e"], (L,), a_t))
    else:
        s_in = None
        table = params["embed.weight"]
        s_e = act_scale(float(np.abs(table).max()), ab)
        scale["e"] = s_e
        q = spec.sat(np.floor(table / s_e + 0.5), ab).astype(np.int8)
        prologue.append({"op": "embed", "name": "embed", "inputs": ["input"], "output": "e",
                         "table": b.tensor("embed.weight", q, "weights")})
        b.act("e", (L, D), a_t, s_e)
    s_pos = act_scale(float(np.abs(params["pos"]).max()), 8)
    b.tensor("pos", spec.sat8(np.floor(params["pos"] / s_pos + 0.5)), "other")
    m, sh = spec.add_multipliers([scale["e"], s_pos], scale["x"])
    prologue.append({"op": "add_s8", "name": "x", "inputs": ["e", "pos"], "output": "x",
                     "mult": m.tolist(), "shift": sh})
    b.act("x", (L, D), a_t, scale["x"])

    # -- y_init / z_init at the scale the last y / z call leaves
    state_scale, init_scale = scales.state, scales.init
    for u in ("y", "z"):
        v = np.floor(params[f"{u}_init"] / init_scale[u] + 0.5)
        b.tensor(f"{u}_init", spec.sat(v, sb), "other")

    # -- one net call
    net = [{"op": "add_s8", "name": "in", "per_call": True, "output": "h0"}]
    b.act("h0", (L, D), a_t, scale["h0"])
    h = "h0"
    for i in range(dims.layers):
        pre, li = f"net.layers.{i}", f"l{i}"
        last = i == dims.layers - 1
        net.append({"op": "transpose", "name": f"{li}.tok.in", "inputs": [h], "output": f"{li}.hT"})
        b.act(f"{li}.hT", (D, L), a_t, scale[h])
        t = _swiglu(b, net, params, scale, f"{pre}.tok", f"{li}.tok", f"{li}.hT", (D,), qc)
        net.append({"op": "transpose", "name": f"{li}.tok.back", "inputs": [t], "output": f"{li}.t"})
        b.act(f"{li}.t", (L, D), a_t, scale[t])
        h = _residual_norm(b, net, params, scale, f"{pre}.norm1", f"{li}.r1", [h, f"{li}.t"], f"{li}.h1", dims)
        c = _swiglu(b, net, params, scale, f"{pre}.ch", f"{li}.ch", h, (L,), qc)
        out = "out" if last else f"{li}.h2"
        h = _residual_norm(b, net, params, scale, f"{pre}.norm2", f"{li}.r2", [h, c], out, dims,
                           per_call=last)
    b.act("out", (L, D), s_t, None)     # scale per call: schedule.calls[i].out_scale

    # -- the schedule
    gamma = params[f"net.layers.{dims.layers - 1}.norm2.weight"]
    out_sets = {}
    for i in range(len(updates)):
        key = "state" if qc.state_scale_mode == "shared" else f"state.{i}"
        if key not in out_sets:
            M, sh_ = spec.rmsnorm_multipliers(gamma, D, state_scale[i])
            out_sets[key] = (b.tensor(f"{key}.mult", M, "multipliers"), b.tensor(f"{key}.shift", sh_, "multipliers"))
    cur = {"x": scale["x"], "y": init_scale["y"], "z": init_scale["z"]}
    wide_add = (spec.WIDE_ADD_MULT_LIMIT, 38) if sb == 16 else ()     # study-only 16-bit state keeps precision
    calls = []
    for i, u in enumerate(updates):
        ins = ["x", "y", "z"] if u == "z" else ["y", "z"]
        in_scales = [cur[s] for s in ins]
        m, sh = spec.add_multipliers(in_scales, scale["h0"], *wide_add)
        key = "state" if qc.state_scale_mode == "shared" else f"state.{i}"
        calls.append({"update": u, "inputs": ins, "in_mult": m.tolist(), "in_shift": sh, "in_scales": in_scales,
                      "out_mult": out_sets[key][0], "out_shift": out_sets[key][1], "out_scale": state_scale[i]})
        cur[u] = state_scale[i]

    # -- heads (after every supervision step, on the y the last y-call left)
    s_y = cur["y"]
    heads = []
    M, sh = spec.encode_multiplier(s_y / (L * scale["p"]))
    heads.append({"op": "mean_pool", "name": "pool", "inputs": ["y"], "output": "p",
                  "mult": int(M), "shift": int(sh)})
    b.act("p", (D,), a_t, scale["p"])
    s_logit, s_q = scales.logit, scales.q
    head_in, s_head_in, rows = ("y", s_y, (L,)) if dims.per_token else ("p", scale["p"], ())
    heads.append(b.linear("head", "head", head_in, "logits", params["head.weight"], params["head.bias"],
                          s_head_in, s_logit, rows, "int16"))
    heads.append(b.linear("head", "halt", "p", "q", params["halt.weight"], params["halt.bias"],
                          scale["p"], s_q, (), "int16"))

    header = {
        "format": FORMAT, "version": VERSION, "precision": qc.name,
        "dims": dims.to_dict(),
        "numerics": {"act_bits": ab, "state_bits": sb, "linear_multipliers": qc.linear_multipliers},
        "io": {"input_kind": dims.input_kind, "input_shape": list(dims.input_shape),
               "input_dtype": "int8" if dims.input_kind == "series" else "uint8", "input_scale": s_in,
               "classes": dims.classes, "per_token": dims.per_token,
               "output_shape": [L, dims.classes] if dims.per_token else [dims.classes],
               "output_dtype": "int16", "logit_scale": s_logit},
        "graph": {"prologue": prologue, "net": net, "heads": heads},
        "schedule": {"n": dims.n, "T": dims.T, "N_sup": dims.N_sup, "state_scale_mode": qc.state_scale_mode,
                     "calls": calls},
        "state_init_scales": init_scale,
        "halting": {"threshold": float(halt_threshold), "q_scale": s_q,
                    "q_thr": spec.q_threshold(halt_threshold, s_q)},
        "activations": b.acts,
        "tensors": b.table,
        "provenance": {"recipe": _recipe_dict(qc), **(provenance or {})},
    }
    art = Artifact(header, b.tensors)
    validate(art)
    return art


def _recipe_dict(qc: QuantConfig) -> dict:
    return dataclasses.asdict(qc)


def _swiglu(b: _Builder, net: list, params: Params, scale: dict, pre: str, name: str, inp: str, rows: tuple,
            qc: QuantConfig) -> str:
    """gate, up, lut(silu), mul, down; returns the output activation's name."""
    ab = qc.act_bits
    s_h = scale[inp] if inp in scale else b.acts[inp]["scale"]
    g, u, a, p, out = (f"{name}.{k}" for k in ("g", "u", "a", "p", "out"))
    net.append(b.linear("linear", f"{pre}.gate", inp, g, params[f"{pre}.gate.weight"], None, s_h, scale[g], rows, "int8"))
    net.append(b.linear("linear", f"{pre}.up", inp, u, params[f"{pre}.up.weight"], None, s_h, scale[u], rows, "int8"))
    table = b.tensor(f"{pre}.silu", spec.silu_lut(scale[g], scale[a], ab), "luts")
    net.append({"op": "lut", "name": f"{pre}.silu", "inputs": [g], "output": a, "table": table})
    b.act(a, b.acts[g]["shape"], "int8", scale[a])
    M, sh = spec.encode_multiplier(scale[a] * scale[u] / scale[p])
    net.append({"op": "mul", "name": f"{pre}.mul", "inputs": [a, u], "output": p, "mult": int(M), "shift": int(sh)})
    b.act(p, b.acts[g]["shape"], "int8", scale[p])
    net.append(b.linear("linear", f"{pre}.down", p, out, params[f"{pre}.down.weight"], None, scale[p], scale[out],
                        rows, "int8"))
    return out


def _residual_norm(b: _Builder, net: list, params: Params, scale: dict, norm: str, r: str, ins: list[str], out: str,
                   dims: Dims, per_call: bool = False) -> str:
    """add_s32 residual, then RMSNorm; the last norm of a call is per_call (its output scale is the state's)."""
    in_scales = [b.acts[x]["scale"] for x in ins]
    m, s_r = spec.residual_multipliers(in_scales)
    net.append({"op": "add_s32", "name": f"{norm}.residual", "inputs": ins, "output": r, "mult": m.tolist()})
    b.act(r, (dims.tokens, dims.hidden), "int32", s_r)
    node = {"op": "rmsnorm", "name": norm, "inputs": [r], "output": out,
            "eps": spec.eps_int(dims.norm_eps, dims.hidden, s_r)}
    if per_call:
        node["per_call"] = True
    else:
        M, sh = spec.rmsnorm_multipliers(params[f"{norm}.weight"], dims.hidden, scale[out])
        node["mult"] = b.tensor(f"{norm}.mult", M, "multipliers")
        node["shift"] = b.tensor(f"{norm}.shift", sh, "multipliers")
        b.act(out, (dims.tokens, dims.hidden), "int8", scale[out])
    net.append(node)
    return out
