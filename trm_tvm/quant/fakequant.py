"""The QAT forward: the golden model's exact integers forward, the float ops' gradients backward.

For every node of the artifact graph the integer result comes from the golden model (quant.spec, bit-exact with the
device) and a float twin of the op runs on the same (dequantised) inputs with the torch parameters:

    real = float_op(real_inputs)
    real = real + (integer_result * scale - real).detach()     # value: the device's; gradient: the float op's

so the loss sees exactly what the device computes (LUT SiLU, integer RMSNorm, fixed-point rounding, saturation),
and the gradient is the straight-through estimate. A library's float fake-quant cannot reproduce those integer
details, and 1-LSB differences grow over the recursion, hence no Brevitas / torchao here: observers are numpy
(quant.ptq) and the straight-through estimator is the line above. Weights enter the float twin fake-quantised
(`w + (w_q * s_w - w).detach()`), so input gradients see the quantised weights.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trm_tvm.quant import spec
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.golden import Golden


def _ste(real: torch.Tensor, exact: np.ndarray, scale: float) -> torch.Tensor:
    target = torch.as_tensor(np.asarray(exact, dtype=np.float64) * scale, dtype=real.dtype)
    return real + (target - real).detach()


class ExactForward:
    """Runs prologue / net calls / heads of `art` on (int, real) pairs; `params` are the torch parameters it was
    built from (names as in the state_dict)."""

    def __init__(self, art: Artifact, params: dict[str, torch.Tensor]):
        self.art, self.params, self.golden = art, params, Golden(art)
        self._wfq: dict[str, torch.Tensor] = {}

    def weight(self, name: str, node: dict) -> torch.Tensor:
        """Fake-quantised weight with a straight-through gradient to the float weight."""
        if name not in self._wfq:
            w = self.params[f"{name}.weight"]
            q = self.golden.weight_int(node)
            s = self.art[f"{name}.weight.scale"]
            self._wfq[name] = _ste(w, q * s[:, None], 1.0)
        return self._wfq[name]

    def _scale(self, node: dict, call: dict | None) -> float:
        if node.get("per_call") and node["op"] == "rmsnorm":
            return call["out_scale"]
        out = node["output"]
        if out == "logits":
            return self.art.header["io"]["logit_scale"]
        if out == "q":
            return self.art.header["halting"]["q_scale"]
        return self.art.header["activations"][out]["scale"]

    def _float_op(self, node: dict, ins: list[torch.Tensor], call: dict | None) -> torch.Tensor:
        op, p = node["op"], self.params
        if op == "patch":
            x = ins[0]
            B = x.shape[0]
            C, S, P = node["channels"], node["samples"], node["patch"]
            return x.reshape(B, C, S // P, P).permute(0, 2, 1, 3).reshape(B, S // P, C * P)
        if op == "embed":
            return p["embed.weight"][ins[0].long()]
        if op in ("linear", "head"):
            bias = p[f"{node['name']}.bias"] if node.get("bias") else None
            return F.linear(ins[0], self.weight(node["name"], node), bias)
        if op in ("add_s8", "add_s32"):
            return sum(ins)
        if op == "mul":
            return ins[0] * ins[1]
        if op == "lut":
            return F.silu(ins[0])
        if op == "rmsnorm":
            r = ins[0]
            eps = self.art.dims.norm_eps
            return r * torch.rsqrt(r.pow(2).mean(-1, keepdim=True) + eps) * p[f"{node['name']}.weight"]
        if op == "transpose":
            return ins[0].transpose(-1, -2)
        if op == "mean_pool":
            return ins[0].mean(dim=-2)
        raise ValueError(f"unknown op {op}")

    def run(self, section: str, env: dict, call: dict | None = None) -> dict:
        """env maps names to (int ndarray, real tensor); returns it with every output of the section added."""
        env = dict(env)
        for node in self.art.graph[section]:
            ints = {k: v[0] for k, v in env.items()}
            out_int = self.golden.node(node, ints, call)
            names = call["inputs"] if node.get("per_call") and node["op"] == "add_s8" else node["inputs"]
            ins = [env[n][1] if n in env else self._const(n) for n in names]
            real = self._float_op(node, ins, call)
            env[node["output"]] = (out_int, _ste(real, out_int, self._scale(node, call)))
        return env

    def _const(self, name: str) -> torch.Tensor:
        """Constant inputs (pos): the float parameter, straight through to its quantised value in the int path."""
        return self.params[name]

    # -- pieces -------------------------------------------------------------------------------------------------------
    def prologue(self, inp: np.ndarray, inp_real: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        return self.run("prologue", {"input": (inp, inp_real)})["x"]

    def initial_state(self, x: tuple[np.ndarray, torch.Tensor]):
        """(y, z) pairs from y_init / z_init; the real parts carry gradients to the float init vectors."""
        y0, z0 = self.golden.initial_state(x[0])
        sy, sz = self.art.header["state_init_scales"]["y"], self.art.header["state_init_scales"]["z"]
        yr = _ste(self.params["y_init"].expand(x[1].shape), y0, sy)
        zr = _ste(self.params["z_init"].expand(x[1].shape), z0, sz)
        return (y0, yr), (z0, zr)

    def supervision_step(self, x, y, z, grad_cycles: int = 1):
        """T cycles; only the last `grad_cycles` build a graph (the rest run the golden model alone, as in
        training). Returns (y, z, logits, q) pairs."""
        calls = self.art.calls
        per_cycle = self.art.dims.n + 1
        first_grad = len(calls) - grad_cycles * per_cycle
        for i, call in enumerate(calls):
            if i < first_grad:
                out_int = self.golden.net_call(i, x[0], y[0], z[0])
                out = (out_int, torch.as_tensor(out_int * call["out_scale"], dtype=x[1].dtype))
            else:
                out = self.run("net", {"x": x, "y": y, "z": z}, call)["out"]
            if call["update"] == "z":
                z = out
            else:
                y = out
        env = self.run("heads", {"y": y})
        lg, q = env["logits"], env["q"]
        return y, z, lg, (q[0][..., 0], q[1][..., 0])
