"""Artifact -> Relax: each graph section (prologue, one `net` call, heads) as a Relax function of integer kernel
calls, in destination-passing style. Nothing is dequantised: every tensor is int8/int16/int32 and every op is a
kernel of docs/integer-spec.md.

Kernel calls are `R.call_dps_packed("trm.<op>", args, out)`: the Relax module carries the dataflow and the
tensor types the static memory planner needs; which C function implements a call is the back end's business
(reference C, TVM-generated TIR, hand-written). A kernel that needs arena scratch gets it as a second output
tensor, so the planner gives it a lifetime of exactly one call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from trm_tvm.errors import UserError
from trm_tvm.quant.artifact import Artifact

SECTIONS = ("prologue", "net", "heads")
SUPPORTED = ("patch", "embed", "linear", "head", "add_s8", "add_s32", "mul", "lut", "rmsnorm", "transpose",
             "mean_pool")
# activations that live outside a section (arena state region or caller memory), per section: (inputs, outputs)
BOUNDARY = {"prologue": (("input",), ("x",)), "net": (("x", "y", "z"), ("out",)), "heads": (("y",), ("logits", "q"))}


@dataclass
class Op:
    """One kernel call of a section, with the shapes and dtypes the back ends need."""
    kind: str
    name: str
    inputs: list[str]                 # activation or artifact-tensor names (per-call add: the state names)
    output: str
    node: dict
    in_shapes: list[tuple]
    in_dtypes: list[str]
    out_shape: tuple
    out_dtype: str
    consts: list[str] = field(default_factory=list)   # artifact tensors the kernel reads (weights, tables, ...)
    per_call: bool = False
    scratch: int = 0                  # arena bytes the back end's kernel needs for this call
    attrs: dict = field(default_factory=dict)

    @property
    def numel(self) -> int:
        return int(np.prod(self.out_shape))


def _shape_dtype(art: Artifact, name: str, section: str) -> tuple[tuple, str]:
    if name == "input":
        io = art.header["io"]
        return tuple(io["input_shape"]), io["input_dtype"]
    if name in ("x", "y", "z"):
        return (art.dims.tokens, art.dims.hidden), "int8"
    acts = art.header["activations"]
    if name in acts:
        return tuple(acts[name]["shape"]), acts[name]["dtype"]
    t = art.tensors[name]
    return tuple(t.shape), str(t.dtype)


def section_ops(art: Artifact, section: str) -> list[Op]:
    """The section's nodes as Ops (the per-call input add reads x, y, z: the widest call)."""
    ops = []
    for node in art.graph[section]:
        if node["op"] not in SUPPORTED:
            raise UserError(f"unsupported op {node['op']!r} (node {node.get('name')}) in {art.path}",
                            f"the compiler supports {', '.join(SUPPORTED)}")
        inputs = list(BOUNDARY["net"][0]) if node.get("per_call") and node["op"] == "add_s8" else list(node["inputs"])
        shapes, dtypes = zip(*(_shape_dtype(art, n, section) for n in inputs))
        out_shape, out_dtype = _shape_dtype(art, node["output"], section)
        op = Op(node["op"], node.get("name", node["output"]), inputs, node["output"], node, list(shapes),
                list(dtypes), out_shape, out_dtype, _consts(node), bool(node.get("per_call")))
        if op.kind == "embed":
            op.attrs["vocab"] = int(art.tensors[node["table"]].shape[0])
        if op.kind == "linear":   # every shift 32 (docs/integer-spec.md): the tvm back end drops the shift branch
            op.attrs["shift32"] = bool(np.all(art.tensors[node["shift"]] == 32))
        ops.append(op)
    return ops


def _consts(node: dict) -> list[str]:
    keys = {"linear": ("weight", "bias", "mult", "shift"), "head": ("weight", "bias", "mult", "shift"),
            "rmsnorm": ("mult", "shift"), "lut": ("table",), "embed": ("table",)}.get(node["op"], ())
    return [node[k] for k in keys if isinstance(node.get(k), str)]


def is_activation(art: Artifact, name: str) -> bool:
    return name in ("input", "x", "y", "z") or name in art.header["activations"]


def to_relax(art: Artifact, section: str, ops: list[Op]) -> relax.Function:
    """One Relax function: params = boundary inputs + the constants the section reads, body = the kernel calls."""
    bb = relax.BlockBuilder()
    ins, outs = BOUNDARY[section]
    params: dict[str, relax.Var] = {}

    def var(name: str) -> relax.Var:
        if name not in params:
            shape, dtype = _shape_dtype(art, name, section)
            params[name] = relax.Var(name, relax.TensorType(shape, dtype))
        return params[name]

    for name in ins:
        var(name)
    consts = sorted({n for op in ops for n in op.inputs + op.consts if not is_activation(art, n)})
    for name in consts:
        var(name)
    env: dict[str, relax.Expr] = {}
    with bb.function(section, list(params.values())):
        with bb.dataflow():
            for op in ops:
                args = [env[n] if n in env else var(n) for n in op.inputs + op.consts]
                out_t = relax.TensorType(op.out_shape, op.out_dtype)
                if op.scratch:
                    call = relax.call_dps_packed(f"trm.{op.kind}", args,
                                                 [out_t, relax.TensorType((op.scratch,), "uint8")])
                    pair = bb.emit(call, name_hint=f"{op.output}.with_scratch")
                    env[op.output] = bb.emit(relax.TupleGetItem(pair, 0), name_hint=op.output)
                else:
                    env[op.output] = bb.emit(relax.call_dps_packed(f"trm.{op.kind}", args, out_t),
                                             name_hint=op.output)
            result = env[outs[0]] if len(outs) == 1 else relax.Tuple([env[o] for o in outs])
            gv = bb.emit_output(result)
        bb.emit_func_output(gv)
    return bb.get()[section]


def fold_output_transposes(ops: list[Op]) -> list[Op]:
    """linear -> transpose, where the transpose is the linear's only consumer, becomes one linear that writes its
    output transposed (`attrs["out_trans"]`): the token MLP's down projection writes (L, D) directly."""
    consumers: dict[str, int] = {}
    for op in ops:
        for t in op.inputs:
            consumers[t] = consumers.get(t, 0) + 1
    producer = {op.output: op for op in ops}
    out = []
    for op in ops:
        src = producer.get(op.inputs[0]) if op.kind == "transpose" else None
        if src is not None and src.kind == "linear" and consumers[src.output] == 1 and src in out:
            src.attrs["out_trans"] = True
            src.output, src.out_shape = op.output, op.out_shape
            continue
        out.append(op)
    return out


def import_artifact(art: Artifact, scratch_of, fold_transposes: bool = False
                    ) -> tuple[dict[str, list[Op]], tvm.IRModule]:
    """All three sections: their Ops (with the back end's scratch sizes) and one IRModule of Relax functions.
    `fold_transposes`: the back end has linear kernels with transposed outputs (fold_output_transposes)."""
    if not art.on_device:
        raise UserError(f"artifact {art.path} uses study-only numerics {art.numerics} (act/state bits)",
                        "only int8 activations and an int8 state run on the device")
    sections = {}
    funcs = {}
    for sec in SECTIONS:
        ops = section_ops(art, sec)
        if fold_transposes:
            ops = fold_output_transposes(ops)
        for op in ops:
            op.scratch = int(scratch_of(op))
        sections[sec] = ops
        funcs[sec] = to_relax(art, sec, ops)
    return sections, tvm.IRModule(funcs)
