"""The `reference` back end: every op is its plain-C kernel of project_templates/kernels/reference/, called with
the trm_kernels.h signatures. `render` is shared with the hand-written back end, which swaps the linear kernels."""
from __future__ import annotations

from pathlib import Path

from trm_tvm.compile.importer import Op

REPO = Path(__file__).resolve().parents[3]
KERNELS_DIR = REPO / "project_templates" / "kernels"
FILES = {"trm_kernels.h": KERNELS_DIR / "trm_kernels.h",
         "trm_kernels_ref.c": KERNELS_DIR / "reference" / "trm_kernels_ref.c"}


def tokens_of(shape) -> int:
    return 1 if len(shape) == 1 else int(shape[0])


def render(op: Op, a: dict, linear_fn: str | None = None) -> str:
    """C statement of one call. `a`: C expressions for 'ins' (list), 'out', the op's constants by role and
    'scratch'; scalars come from the node."""
    n, ins, out = op.node, a["ins"], a["out"]
    if op.kind == "patch":
        return f"trm_patch_s8_ref({ins[0]}, {out}, {n['channels']}, {n['samples']}, {n['patch']});"
    if op.kind == "embed":
        L, D = op.out_shape
        return f"trm_embed_s8_ref({ins[0]}, {a['table']}, {out}, {L}, {D});"
    if op.kind in ("linear", "head"):
        tokens, n_in, n_out = tokens_of(op.in_shapes[0]), n["n_in"], n["n_out"]
        bias = a.get("bias", "NULL")
        if op.kind == "head":
            return (f"trm_head_s8_ref({ins[0]}, {a['weight']}, {bias}, {a['mult']}, {a['shift']}, {out}, "
                    f"{tokens}, {n_in}, {n_out});")
        fn = linear_fn or f"trm_linear_s{n.get('bits', 8)}_ref"
        return (f"{fn}({ins[0]}, {a['weight']}, {bias}, {a['mult']}, {a['shift']}, {out}, {tokens}, {n_in}, "
                f"{n_out}, {a.get('scratch', 'NULL')});")
    if op.kind in ("add_s8", "add_s32"):
        arr = f"{{{', '.join(ins)}}}"
        dt = op.kind[4:]
        s = f"{a['in_shift']}, " if op.kind == "add_s8" else ""
        return (f"{{ const int8_t *const in_[{len(ins)}] = {arr}; "
                f"trm_add_{dt}_ref(in_, {a['m']}, {len(ins)}, {s}{out}, {op.numel}); }}")
    if op.kind == "mul":
        return f"trm_mul_s8_ref({ins[0]}, {ins[1]}, {n['mult']}, {n['shift']}, {out}, {op.numel});"
    if op.kind == "lut":
        return f"trm_lut_s8_ref({ins[0]}, {a['table']}, {out}, {op.numel});"
    if op.kind == "rmsnorm":
        L, D = op.out_shape
        return f"trm_rmsnorm_s32_ref({ins[0]}, {n['eps']}LL, {a['mult']}, {a['shift']}, {out}, {L}, {D});"
    if op.kind == "transpose":
        rows, cols = op.in_shapes[0]
        return f"trm_transpose_s8_ref({ins[0]}, {out}, {rows}, {cols});"
    if op.kind == "mean_pool":
        L, D = op.in_shapes[0]
        return f"trm_mean_pool_s8_ref({ins[0]}, {n['mult']}, {n['shift']}, {out}, {L}, {D});"
    raise ValueError(f"no reference kernel for {op.kind}")


class ReferenceBackend:
    name = "reference"
    schedule = "n/a"

    def scratch(self, op: Op) -> int:
        return 0

    def call(self, op: Op, a: dict) -> str:
        return render(op, a)

    def files(self) -> dict[str, str]:
        """Sources and headers copied into model/ (name -> text)."""
        return {name: path.read_text() for name, path in FILES.items()}

    def headers(self) -> list[str]:
        return ["trm_kernels.h"]

    def defines(self, sections: dict[str, list[Op]]) -> dict[str, int]:
        """C defines the model library needs beyond the driver's own (none here)."""
        return {}
