"""The `tvm` back end: every op is a TIR kernel from trm_tvm.compile.strategies, specialised to its shapes,
scheduled at one level (naive | default | tuned) and emitted as plain C by TVM's C code generator
(trm_tvm.compile.lower_c). Only argmax of the logits stays in the shared reference C."""
from __future__ import annotations

from tvm import tirx

from trm_tvm.compile import strategies
from trm_tvm.compile.backends.reference import FILES, KERNELS_DIR, tokens_of
from trm_tvm.compile.importer import Op
from trm_tvm.compile.lower_c import to_c
from trm_tvm.compile.strategies.eltwise import EltShape
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.compile.strategies.rmsnorm import RMSNormShape

ACLE_H = KERNELS_DIR / "tvm" / "trm_acle.h"
CTYPE = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}


def c_param_type(p) -> str:
    """C type of a PrimFunc parameter: a typed pointer for a buffer, the scalar type otherwise."""
    if isinstance(p.ty, tirx.BufferType):
        return f"{CTYPE[str(p.dtype)]} *"
    return CTYPE[str(p.ty.dtype)]


def shape_of(op: Op):
    """The strategy shape (and so the specialised kernel) of one call."""
    n = op.node
    if op.kind in ("linear", "head"):
        return LinearShape(tokens_of(op.in_shapes[0]), n["n_in"], n["n_out"], n.get("bits", 8),
                           "int16" if op.kind == "head" else "int8", bool(n.get("bias")),
                           out_trans=bool(op.attrs.get("out_trans")), sh32=bool(op.attrs.get("shift32")))
    if op.kind == "rmsnorm":
        return RMSNormShape(*op.out_shape)
    if op.kind in ("add_s8", "add_s32", "mul", "lut"):
        return EltShape(op.kind, (op.numel,), len(op.inputs))
    if op.kind in ("mean_pool", "transpose"):
        return EltShape(op.kind, tuple(op.in_shapes[0]))
    if op.kind == "patch":
        return EltShape("patch", (n["channels"], n["samples"], n["patch"]))
    if op.kind == "embed":
        return EltShape("embed", (*op.out_shape, op.attrs["vocab"]))
    raise ValueError(op.kind)


class TVMBackend:
    name = "tvm"
    folds_transposes = True          # linear kernels can write their output transposed (token mixing)

    def __init__(self, schedule: str = "default", board: str | None = None, dsp: bool = False, mve: bool = False):
        self.schedule, self.board, self.dsp, self.mve = schedule, board, dsp, mve
        self.kernels: dict = {}          # C name -> (PrimFunc, [param dtypes])

    def _knobs(self, shape):
        family = strategies.family_of(shape)
        if self.schedule == "tuned" and family == "linear":   # the tuning database (trm_tvm/tune, docs/tuning.md)
            from trm_tvm.tune.database import tuned_knobs
            default = strategies.with_mve(family, strategies.knobs_for(family, "default"), self.mve)
            knobs = tuned_knobs(self.board, shape, default)
        else:
            knobs = strategies.knobs_for(family, "default" if self.schedule == "tuned" else self.schedule, self.board)
            if self.schedule != "naive":
                knobs = strategies.with_mve(family, knobs, self.mve)
        if "dsp" in knobs and not self.dsp:
            knobs["dsp"] = False          # the core has no SMLAD/SXTB16
        return knobs

    def scratch(self, op: Op) -> int:
        shape = shape_of(op)
        return strategies.FAMILIES[strategies.family_of(shape)].scratch_bytes(shape, self._knobs(shape))

    def call(self, op: Op, a: dict) -> str:
        shape = shape_of(op)
        name = strategies.kernel_name(shape, None)
        if name not in self.kernels:
            self.kernels[name] = strategies.build(shape, self._knobs(shape))[1]
        func = self.kernels[name]
        args = self._args(op, a)
        if self.scratch(op):
            args.append(a["scratch"])
        assert len(args) == len(func.params), (name, args)
        rendered = []
        for p, expr in zip(func.params, args):
            rendered.append(f"({c_param_type(p)}){expr}")
        return f"{name}({', '.join(rendered)});"

    @staticmethod
    def _args(op: Op, a: dict) -> list[str]:
        n, ins, out = op.node, a["ins"], a["out"]
        if op.kind in ("linear", "head"):
            shift = [] if op.attrs.get("shift32") else [a["shift"]]      # the sh32 kernels take none
            return [ins[0], a["weight"]] + ([a["bias"]] if "bias" in a else []) + [a["mult"], *shift, out]
        if op.kind == "add_s8":
            return [*ins, a["m"], a["in_shift"], out]
        if op.kind == "add_s32":
            return [*ins, a["m"], out]
        if op.kind == "mul":
            return [ins[0], ins[1], str(n["mult"]), str(n["shift"]), out]
        if op.kind in ("lut", "embed"):
            return [ins[0], a["table"], out]
        if op.kind == "rmsnorm":
            return [ins[0], f"{n['eps']}LL", a["mult"], a["shift"], out]
        if op.kind == "mean_pool":
            return [ins[0], str(n["mult"]), str(n["shift"]), out]
        return [ins[0], out]                           # transpose, patch

    def files(self) -> dict[str, str]:
        """The generated kernels (one C file, produced by TVM) plus the shared reference file for argmax."""
        files = {name: path.read_text() for name, path in FILES.items()}
        files["trm_kernels_tvm.c"] = to_c(self.kernels)
        if '#include "trm_acle.h"' in files["trm_kernels_tvm.c"]:
            files["trm_acle.h"] = ACLE_H.read_text()
        return files

    def headers(self) -> list[str]:
        return ["trm_kernels.h"]

    def defines(self, sections: dict[str, list[Op]]) -> dict[str, int]:
        """C defines the model library needs beyond the driver's own (none here)."""
        return {}
