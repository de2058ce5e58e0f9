"""The golden model: executes an artifact's integer graph with trm_tvm.quant.spec, integers only, bit for bit.

Every C back end must reproduce its logits, predictions, q values and steps with 0 LSB difference. It is an
interpreter over the artifact's node lists (so it checks the graph the compiler imports, not a private copy of the
model), vectorised over a leading batch axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trm_tvm.quant import spec
from trm_tvm.quant.artifact import Artifact


@dataclass
class GoldenResult:
    logits: np.ndarray          # (B, K) or (B, L, K) int16: the logits of the step each sample stopped at
    pred: np.ndarray            # (B,) or (B, L): argmax, ties to the lowest index
    steps: np.ndarray           # (B,) supervision steps used (1-based)
    q: np.ndarray               # (B, S) q after each step; INT32_MIN where not computed (stopped, not all_steps)
    step_logits: np.ndarray | None = None   # (B, S, ...) every step's logits when all_steps
    states: np.ndarray | None = None        # (B, S, calls, 2, L, D): (y, z) after every call when keep_states


class Golden:
    def __init__(self, art: Artifact):
        self.art = art
        self.act_bits = art.numerics["act_bits"]
        self.state_bits = art.numerics["state_bits"]
        self._weights: dict[str, np.ndarray] = {}

    # -- one node ----------------------------------------------------------------------------------------------------
    def weight_int(self, node: dict) -> np.ndarray:
        """Weights as int64 [out][in] (int4 unpacked once)."""
        name = node["weight"]
        if name not in self._weights:
            w = self.art[name]
            if node.get("bits", 8) == 4:
                w = spec.unpack_s4(w, node["n_in"])
            self._weights[name] = w.astype(np.int64)
        return self._weights[name]

    def _value(self, name: str, env: dict) -> np.ndarray:
        return env[name] if name in env else self.art[name]

    def node(self, node: dict, env: dict, call: dict | None) -> np.ndarray:
        op, art, ab = node["op"], self.art, self.act_bits
        if node.get("per_call"):
            if op == "add_s8":
                return spec.add_s8([env[s] for s in call["inputs"]], call["in_mult"], call["in_shift"], ab,
                                   wide=self.state_bits > 8)
            return spec.rmsnorm_s32(env[node["inputs"][0]], node["eps"], art[call["out_mult"]],
                                    art[call["out_shift"]], self.state_bits)
        ins = [self._value(s, env) for s in node["inputs"]]
        if op == "patch":
            return spec.patch_s8(ins[0], node["patch"])
        if op == "embed":
            return spec.embed_s8(ins[0], art[node["table"]])
        if op in ("linear", "head"):
            bias = art[node["bias"]] if node.get("bias") else 0
            bits = 16 if op == "head" else ab
            return spec.linear_s8(ins[0], self.weight_int(node), bias, art[node["mult"]], art[node["shift"]], bits)
        if op == "add_s8":
            return spec.add_s8(ins, node["mult"], node["shift"], ab)
        if op == "add_s32":
            return spec.add_s32(ins, node["mult"])
        if op == "mul":
            return spec.mul_s8(ins[0], ins[1], node["mult"], node["shift"], ab)
        if op == "lut":
            return spec.lut_s8(ins[0], art[node["table"]])
        if op == "rmsnorm":
            return spec.rmsnorm_s32(ins[0], node["eps"], art[node["mult"]], art[node["shift"]], ab)
        if op == "transpose":
            return spec.transpose_s8(ins[0])
        if op == "mean_pool":
            return spec.mean_pool_s8(ins[0], node["mult"], node["shift"], ab)
        raise ValueError(f"unknown op {op}")

    def run(self, section: str, env: dict, call: dict | None = None) -> dict:
        """Run one graph section ('prologue', 'net', 'heads') over env; returns env with every output added."""
        env = dict(env)
        for node in self.art.graph[section]:
            env[node["output"]] = self.node(node, env, call)
        return env

    # -- the pieces the device runs ----------------------------------------------------------------------------------
    def prologue(self, inp: np.ndarray) -> np.ndarray:
        """Input (B, C, S) int8 or (B, L) digits -> x (B, L, D)."""
        return self.run("prologue", {"input": np.asarray(inp)})["x"]

    def initial_state(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.broadcast_to(self.art["y_init"], x.shape).astype(np.int64),
                np.broadcast_to(self.art["z_init"], x.shape).astype(np.int64))

    def net_call(self, index: int, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Net call `index` of the schedule: returns the new z (z-update) or y (y-update)."""
        call = self.art.calls[index]
        return self.run("net", {"x": x, "y": y, "z": z}, call)["out"]

    def supervision_step(self, x, y, z, states: list | None = None):
        """T*(n+1) net calls then the heads: (y, z, logits, q)."""
        for i, call in enumerate(self.art.calls):
            out = self.net_call(i, x, y, z)
            if call["update"] == "z":
                z = out
            else:
                y = out
            if states is not None:
                states.append(np.stack([y, z], axis=1))
        logits, q = self.heads(y)
        return y, z, logits, q

    def heads(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        env = self.run("heads", {"y": y})
        return env["logits"], env["q"][..., 0].astype(np.int64)

    # -- a whole inference -------------------------------------------------------------------------------------------
    def infer(self, inp: np.ndarray, q_thr: int | None = None, max_steps: int | None = None,
              all_steps: bool = False, keep_states: bool = False) -> GoldenResult:
        """Halting at int q_thr (default: the artifact's), at most max_steps (default N_sup).

        Fixed compute with k steps: q_thr = INT32_MAX, max_steps = k. all_steps keeps running stopped samples
        (their result is still the step they stopped at) and returns every step's logits; keep_states also returns
        (y, z) after every net call (implies all_steps).
        """
        art = self.art
        q_thr = art.header["halting"]["q_thr"] if q_thr is None else int(q_thr)
        S = max_steps or art.schedule["N_sup"]
        if not 1 <= S <= art.schedule["N_sup"]:
            raise ValueError(f"max_steps must be in [1, {art.schedule['N_sup']}], got {S}")
        all_steps = all_steps or keep_states
        x = self.prologue(inp)
        B = x.shape[0]
        y, z = self.initial_state(x)
        out_shape = tuple(art.header["io"]["output_shape"])
        logits = np.zeros((B, *out_shape), np.int16)
        q_all = np.full((B, S), spec.INT32_MIN, np.int64)
        steps = np.zeros(B, np.int64)
        step_logits = np.zeros((B, S, *out_shape), np.int16) if all_steps else None
        states_all = [] if keep_states else None
        active = np.arange(B)                      # samples still computed
        for k in range(1, S + 1):
            states = [] if keep_states else None
            y, z, lg, q = self.supervision_step(x, y, z, states)
            q_all[active, k - 1] = q
            running = steps[active] == 0
            stop = running & (spec.halt_decision(q, q_thr) | (k == S))
            done = active[stop]
            logits[done] = lg[stop]
            steps[done] = k
            if all_steps:
                step_logits[active, k - 1] = lg
                if keep_states:
                    states_all.append(np.stack(states, axis=1))
            else:
                keep = ~stop
                active, x, y, z = active[keep], x[keep], y[keep], z[keep]
                if not active.size:
                    break
        states_arr = np.stack(states_all, axis=1).astype(np.int16) if keep_states else None
        return GoldenResult(logits, spec.argmax_s16(logits), steps, q_all, step_logits, states_arr)


def infer(art: Artifact, inp: np.ndarray, **kw) -> GoldenResult:
    """Shorthand: Golden(art).infer(inp, **kw)."""
    return Golden(art).infer(inp, **kw)
