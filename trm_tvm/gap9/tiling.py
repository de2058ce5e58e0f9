"""L1 tiling planner for the GAP9 cluster kernels.

The planner and the C kernel (project_templates/gap9/kernels/trm_linear_cl.c, `trm_linear_cl_l1_bytes`) compute
the same L1 budget, so a plan the planner accepts is exactly what the kernel allocates; a layer whose smallest
tile does not fit is refused with one line instead of emitting a tile that overflows L1.
"""
from __future__ import annotations

from dataclasses import dataclass

from trm_tvm.errors import UserError

MAX_DMA_BYTES = 65535     # pi_cl_dma_copy_t.size is 16 bits (PMSIS cl_dma.h)


def _r8(n: int) -> int:
    return (n + 7) // 8 * 8


def row_bytes(n_in: int, wbits: int) -> int:
    """Bytes of one weight row: int8, or packed int4 (two per byte, docs/integer-spec.md)."""
    return (n_in + 1) // 2 if wbits == 4 else n_in


@dataclass(frozen=True)
class LinearTiling:
    tokens: int
    n_in: int
    n_out: int
    wbits: int
    tile_tokens: int
    tile_out: int
    split_tokens: bool = False     # False: a tile's output channels are split over the cores; True: its tokens
    double_buffer: bool = True
    packed: bool = False           # weights + bias/mult/shift of a tile laid out contiguously: one DMA per tile

    @property
    def buffers(self) -> int:
        return 2 if self.double_buffer else 1

    @property
    def l1_bytes(self) -> int:
        """Mirror of trm_linear_cl_l1_bytes(): input tile + per buffer (weights, bias/mult/shift, output tile)."""
        rb = row_bytes(self.n_in, self.wbits)
        return (_r8(self.tile_tokens * self.n_in) + self.buffers * _r8(self.tile_out * rb)
                + self.buffers * _r8(12 * self.tile_out) + self.buffers * _r8(self.tile_tokens * self.tile_out))

    @property
    def n_tiles(self) -> int:
        return -(-self.tokens // self.tile_tokens) * -(-self.n_out // self.tile_out)

    @property
    def packed_tile_bytes(self) -> int:
        """One tile of the packed layout: weights padded to 8 bytes, then bias, mult, shift (tile_out each)."""
        return _r8(self.tile_out * row_bytes(self.n_in, self.wbits)) + 12 * self.tile_out

    def dma_ok(self) -> bool:
        rb = row_bytes(self.n_in, self.wbits)
        weights = self.packed_tile_bytes if self.packed else self.tile_out * rb
        return max(weights, self.tile_tokens * self.n_in, self.tile_tokens * self.tile_out) <= MAX_DMA_BYTES

    def c_args(self) -> dict[str, int]:
        """The tiling fields of trm_linear_cl_args_t."""
        return {"tile_tokens": self.tile_tokens, "tile_out": self.tile_out,
                "split_tokens": int(self.split_tokens), "double_buffer": int(self.double_buffer)}


def pack_linear(t: LinearTiling, w, bias, mult, shift):
    """The `packed` L2 layout of trm_linear_cl for tiling `t`: per output tile, its weight rows (padded to 8 bytes),
    then bias, mult, shift as int32 little-endian, each `tile_out` long (the last tile zero-padded). `w` is the device
    weight array ([n_out][row bytes], int8 or packed int4); bias may be None."""
    import numpy as np

    rb = row_bytes(t.n_in, t.wbits)
    n_to = -(-t.n_out // t.tile_out)
    out = np.zeros((n_to, t.packed_tile_bytes), np.uint8)
    wb = np.ascontiguousarray(w).view(np.uint8).reshape(t.n_out, rb)
    zero = np.zeros(t.n_out, np.int32)
    for j in range(n_to):
        o0, o1 = j * t.tile_out, min(t.n_out, (j + 1) * t.tile_out)
        out[j, :(o1 - o0) * rb] = wb[o0:o1].reshape(-1)
        at = _r8(t.tile_out * rb)
        for arr in (zero if bias is None else bias, mult, shift):
            seg = np.zeros(t.tile_out, "<i4")
            seg[:o1 - o0] = np.asarray(arr, np.int64)[o0:o1]
            out[j, at:at + 4 * t.tile_out] = seg.view(np.uint8)
            at += 4 * t.tile_out
    return out.reshape(-1)


def plan_linear(tokens: int, n_in: int, n_out: int, wbits: int, l1_budget: int, cores: int = 8,
                split_tokens: bool = False, double_buffer: bool = True) -> LinearTiling:
    """The default schedule: all tokens in one tile if possible, then the widest output tile that fits L1
    (a multiple of `cores` when wider than `cores`, so every core gets the same number of channels)."""
    for tile_tokens in range(tokens, 0, -1):
        for tile_out in range(n_out, 0, -1):
            if cores < tile_out < n_out and tile_out % cores:
                continue
            t = LinearTiling(tokens, n_in, n_out, wbits, tile_tokens, tile_out, split_tokens, double_buffer)
            if t.l1_bytes <= l1_budget and t.dma_ok():
                return t
    smallest = LinearTiling(tokens, n_in, n_out, wbits, 1, 1, split_tokens, double_buffer)
    raise UserError(f"linear layer {tokens}x{n_in}->{n_out} (w{wbits}) does not fit GAP9 L1: even a 1x1 tile "
                    f"needs {smallest.l1_bytes} B of {l1_budget} B",
                    "use a smaller hidden size or expansion for the GAP9 target")


# -- row-parallel ops and transpose (trm_rows_cl.c) -------------------------------------------------------------------
ROWS_OPS = ("add_s8", "add_s32", "mul", "lut", "rmsnorm")


@dataclass(frozen=True)
class RowsTiling:
    """One private L1 slice per core; each core moves its rows through it `chunk_rows` at a time."""
    op: str
    rows: int
    cols: int
    n_in: int            # int8 operands (0 for rmsnorm, whose operand is int32)
    chunk_rows: int
    cores: int = 8

    @property
    def out_bytes(self) -> int:
        return 4 if self.op == "add_s32" else 1

    @property
    def slice_bytes(self) -> int:
        """Mirror of trm_rows_cl_slice_bytes()."""
        chunk = self.chunk_rows * self.cols
        const = 256 if self.op == "lut" else _r8(8 * self.cols) if self.op == "rmsnorm" else 0
        return (const + self.n_in * _r8(chunk) + (_r8(4 * chunk) if self.op == "rmsnorm" else 0)
                + _r8(self.out_bytes * chunk))

    @property
    def l1_bytes(self) -> int:
        return self.cores * self.slice_bytes


@dataclass(frozen=True)
class TransposeTiling:
    rows: int
    cols: int
    chunk_cols: int
    cores: int = 8

    @property
    def l1_bytes(self) -> int:
        return self.cores * 2 * _r8(self.rows * self.chunk_cols)


def plan_rows(op: str, rows: int, cols: int, n_in: int, l1_budget: int, cores: int = 8) -> RowsTiling:
    """The largest chunk (at most a core's share of rows) whose slices fit L1 and whose DMAs fit 16 bits."""
    n_in = 0 if op == "rmsnorm" else n_in
    for chunk in range(-(-rows // cores), 0, -1):
        t = RowsTiling(op, rows, cols, n_in, chunk, cores)
        if t.l1_bytes <= l1_budget and 4 * chunk * cols <= MAX_DMA_BYTES:
            return t
    raise UserError(f"{op} over rows of {cols} does not fit GAP9 L1 ({RowsTiling(op, rows, cols, n_in, 1, cores).l1_bytes}"
                    f" B for one row per core, budget {l1_budget} B)", "use a smaller hidden size for the GAP9 target")


def plan_transpose(rows: int, cols: int, l1_budget: int, cores: int = 8) -> TransposeTiling:
    for chunk in range(-(-cols // cores), 0, -1):
        t = TransposeTiling(rows, cols, chunk, cores)
        if t.l1_bytes <= l1_budget and rows * chunk <= MAX_DMA_BYTES:
            return t
    raise UserError(f"transpose of {rows}x{cols} does not fit GAP9 L1 (budget {l1_budget} B)",
                    "use fewer tokens for the GAP9 target")
