"""Kernel back ends of the model library: `reference` (plain C from the spec), `tvm` (TIR strategies emitted by
TVM, the default) and `handwritten` (CMSIS-NN-style dsp/mve linear kernels, trm_tvm.compile.backends.handwritten).

A back end answers three questions for the executor generator: how much arena scratch a call needs
(`scratch(op)`), the C statement of a call (`call(op, args)`), and which files go into model/ (`files()`).
"""
from __future__ import annotations

from trm_tvm.boards import Board
from trm_tvm.compile.backends.reference import ReferenceBackend, render
from trm_tvm.compile.importer import Op
from trm_tvm.errors import UserError

KERNELS = ("reference", "tvm", "handwritten")


class HandwrittenBackend(ReferenceBackend):
    """The reference kernels with the board's hand-written kernels (dsp / mve linear, dsp element-wise) swapped in."""
    name = "handwritten"

    def __init__(self, board: Board):
        from trm_tvm.compile.backends import handwritten
        self.hw, self.board = handwritten, board

    def scratch(self, op: Op) -> int:
        if op.kind != "linear":
            return 0
        n = op.node
        return self.hw.scratch_bytes(f"linear_s{n.get('bits', 8)}", self.board, op.in_shapes[0][0], n["n_in"],
                                     n["n_out"])

    def call(self, op: Op, a: dict) -> str:
        fn = self.hw.kernel(f"linear_s{op.node.get('bits', 8)}", self.board) if op.kind == "linear" else None
        return self.hw.rename_calls(render(op, a, fn), self.board)

    def headers(self) -> list[str]:
        return ["trm_kernels.h"] + [p.name for p in self.hw.headers(self.board) if p.name.startswith("trm_kernels")]

    def defines(self, sections: dict[str, list[Op]]) -> dict[str, int]:
        """C defines of the model library: only the linear k lengths the model calls are unrolled."""
        return self.hw.unrolled_defines([(f"linear_s{op.node.get('bits', 8)}", op.node["n_in"])
                                         for ops in sections.values() for op in ops if op.kind == "linear"],
                                        self.board)

    def files(self) -> dict[str, str]:
        files = super().files()
        for path in self.hw.sources(self.board) + self.hw.headers(self.board):
            files[path.name] = path.read_text()
        return files


def get_backend(kernels: str, board: Board, schedule: str = "default"):
    if kernels == "reference":
        return ReferenceBackend()
    if kernels == "tvm":
        from trm_tvm.compile.backends.tvm import TVMBackend
        return TVMBackend(schedule, board.name, dsp="dsp" in board.core.features, mve="mve" in board.core.features)
    if kernels == "handwritten":
        return HandwrittenBackend(board)
    raise UserError(f"unknown kernel back end {kernels!r}", f"use one of {', '.join(KERNELS)}")
