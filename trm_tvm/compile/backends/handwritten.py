"""The `handwritten` back end: which hand-written C kernels a board gets, their sources and their scratch.

The kernels live in project_templates/kernels/handwritten/ (docs/kernels.md): linear layers in `dsp` variants for
cores with the Arm DSP extension (Cortex-M4/M7/M33) and `mve` variants for Helium (Cortex-M55); the element-wise
ops (add, mul, LUT, RMSNorm) in `dsp` variants on every core with the DSP extension and in `mve` variants on
Helium; the token-mixing transpose in a `dsp` variant on every core with the DSP extension (the M55 too).
The other ops (pooling, heads, ...) use their `ref` kernels (trm_kernels.h), and a board without DSP
gets the reference kernels throughout. The executor calls `kernel(op, board)` and reserves `scratch_bytes(...)` of arena
for each call (the C function `trm_linear_<variant>_scratch_bytes` computes the same number; a test checks it).
`unrolled_defines` gives the build's defines that link only the unrolled linear instances the model calls.
"""
from __future__ import annotations

from pathlib import Path

from trm_tvm.boards import Board

REPO = Path(__file__).resolve().parents[3]
KERNELS_DIR = REPO / "project_templates" / "kernels"
HANDWRITTEN_DIR = KERNELS_DIR / "handwritten"
HEADERS = ["trm_kernels_handwritten.h", "trm_requant.h", "trm_simd.h"]
SOURCES = {"dsp": "trm_kernels_dsp.c", "mve": "trm_kernels_mve.c"}
OPS_SOURCE = "trm_ops_dsp.c"       # the element-wise ops, on every core with the DSP extension
OPS = ("linear_s8", "linear_s4")   # ops with a dsp / mve variant per board
MVE_OPS = ("add_s8", "add_s32", "mul_s8", "lut_s8", "rmsnorm_s32")   # ops with an mve variant
DSP_OPS = MVE_OPS + ("transpose_s8",)                                # ops with a dsp variant; others use ref


def variant(board: Board) -> str:
    """'mve' with Helium, else 'dsp' with the DSP extension, else 'ref'."""
    features = set(board.core.features)
    return "mve" if "mve" in features else ("dsp" if "dsp" in features else "ref")


def kernel(op: str, board: Board) -> str:
    """C function name of `op` ('linear_s8', 'rmsnorm_s32', ...) on this board (mve boards have DSP too)."""
    v = variant(board)
    if (op in OPS and v != "ref") or (op in MVE_OPS and v == "mve"):
        return f"trm_{op}_{v}"
    return f"trm_{op}_{'dsp' if op in DSP_OPS and v != 'ref' else 'ref'}"


def rename_calls(stmt: str, board: Board) -> str:
    """A ref kernel call statement with the board's hand-written element-wise kernels swapped in."""
    for op in DSP_OPS:
        stmt = stmt.replace(f"trm_{op}_ref(", f"{kernel(op, board)}(")
    return stmt


def sources(board: Board) -> list[Path]:
    """C sources to compile into the model library (the ref kernels for the other ops come from the ref back end)."""
    v = variant(board)
    return [HANDWRITTEN_DIR / SOURCES[v], HANDWRITTEN_DIR / OPS_SOURCE] if v in SOURCES else []


def headers(board: Board) -> list[Path]:
    return [HANDWRITTEN_DIR / h for h in HEADERS] if variant(board) in SOURCES else []


def unrolled_defines(linears: list[tuple[str, int]], board: Board) -> dict[str, int]:
    """The build's `defines` that compile only the unrolled linear instances the model calls: TRM_HW_<DTYPE>_KS, bit
    n_in / 16 per k length (16..96, multiples of 16) of that dtype's calls (`linears`: (op, n_in) pairs such as
    ('linear_s8', 64)). Other lengths take the rolled loops; without these defines every instance is compiled
    (the self-test and bench firmware, the host tests)."""
    if variant(board) not in SOURCES:
        return {}
    masks = {"s8": 0, "s4": 0}
    for op, n_in in linears:
        if n_in % 16 == 0 and 16 <= n_in <= 96:
            masks[op.split("_")[1]] |= 1 << (n_in // 16)
    return {f"TRM_HW_{dtype.upper()}_KS": mask for dtype, mask in masks.items()}


def pad16(n: int) -> int:
    return (n + 15) // 16 * 16


def scratch_bytes(op: str, board: Board, tokens: int, n_in: int, n_out: int) -> int:
    """Arena bytes one call of `kernel(op, board)` needs as `scratch` (any alignment; 0: pass NULL)."""
    return linear_scratch_bytes(op.split("_")[1], variant(board), tokens, n_in, n_out) if op in OPS else 0


def linear_scratch_bytes(dtype: str, variant: str, tokens: int, n_in: int, n_out: int) -> int:
    """= trm_linear_<dtype>_<variant>_scratch_bytes in C. dsp: the row loop's 14 words, one int16 weight row and
    its start value, every token's int16 activations (n_in padded to 16). mve: the int32 sums of one row padded to
    whole 4-lane vectors; for int4 at least the 4 x 2 tile's two unpacked rows (n_in = 16..96, multiples of 16).
    +3 to align the start to a word."""
    if variant == "dsp":
        return 2 * pad16(n_in) * (tokens + 1) + 4 * 14 + 4 + 3
    if variant == "mve":
        rows = 2 * n_in if dtype == "s4" and n_in % 16 == 0 and n_in <= 96 else 0
        return max(4 * ((tokens + 3) // 4 * 4), rows) + 3
    return 0
