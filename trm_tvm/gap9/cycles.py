"""The GAP9 cycle and energy model (**modeled**; frozen -- docs/gap9.md "Cycle model" -- change it only with a new
version number and a new calibration line, never to make one result look better).

Version 2 (v1 + the row-parallel kernels; linear layers and the calibration unchanged). A linear layer runs as
trm_linear_cl does: tiles of `tile_tokens x tile_out`, each split over the cores;
its time is, per tile, the slowest core's inner-loop cycles + two barriers + the DMA time not hidden by double
buffering, plus one fork per layer. The inner loop is a register-blocked SIMD matmul (`InnerLoop`): per 4 int8
lanes (8 int4 lanes) of the reduction, `block_tokens + block_out` word loads and `block_tokens * block_out`
sum-of-dot-product instructions, one cycle each (single-issue RI5CY-class core, post-increment loads, zero-overhead
hardware loops, no TCDM bank conflicts assumed). RMSNorm, adds, mul, LUT and transposes run as trm_rows_cl /
trm_transpose_cl do: the slowest core's rows in chunks, each chunk's DMA exposed (no double buffering) with the
DMA bandwidth shared by all cores, plus the per-element cost of the reference kernel. Patch, embed, pooling and
heads run on the cluster master at a per-element estimate. Energy = cycles x the board's energy per
cycle at its named operating point; latency = cycles / that point's clock.

Every constant is either from boards/gap9.yaml (with its source) or a named estimate below. The calibration point
is PULP-NN's published 15.5 int8 MAC/cycle on 8 cores (`pulpnn_check`); if the model missed it by more than 30 %,
`CALIBRATED` would be False and every figure would say "uncalibrated".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from trm_tvm.gap9.board import Gap9Board
from trm_tvm.gap9.tiling import LinearTiling, RowsTiling, TransposeTiling, row_bytes
from trm_tvm.provenance import figure

MODEL_VERSION = 2
MODEL_SOURCE = f"trm_tvm/gap9/cycles.py v{MODEL_VERSION} + boards/gap9.yaml"
CALIBRATION_TOLERANCE = 0.30
PULPNN_PUBLISHED_MACS_PER_CYCLE = 15.5          # boards/gap9.yaml gap9.published (ref_pulpnn)


@dataclass(frozen=True)
class InnerLoop:
    """A register-blocked matmul inner loop and its per-output epilogue (all estimates, see docs/gap9.md)."""
    name: str
    block_tokens: int = 2            # output pixels/tokens per block (PULP-NN 4x2: 2)
    block_out: int = 4               # output channels per block (PULP-NN 4x2: 4)
    requant_cycles: int = 12         # per output: int64 rq (mul, mulh, add, 64-bit shift), clip, store

    def block_setup_cycles(self) -> int:
        """Accumulator init + one pointer per operand row + hardware-loop setup (4)."""
        return 4 + self.block_tokens * self.block_out + self.block_tokens + self.block_out


TRM_LOOP = InnerLoop("trm 2x4, per-channel int64 requant")
PULPNN_LOOP = InnerLoop("PULP-NN 4x2, shift-and-clip requant", requant_cycles=3)   # srai, p.clip, sb

# Per-element costs of the ops that run on the cluster master core (estimates: instruction counts of the plain C
# reference kernels on a single-issue core, operands in L2 without extra latency).
ELEMENT_CYCLES = {"add_s8": (2, 3), "add_s32": (1, 3), "mul": 12, "lut": 4, "transpose": 4, "patch": 4,
                  "embed": 2, "mean_pool": 2}
RMSNORM_CYCLES = {"per_element": 20, "per_token": 400}     # isqrt + 64-by-32 division per token
HEAD_CYCLES = {"per_mac": 3, "per_output": 14}
IM2COL_CYCLES_PER_WORD = 2                                  # lw + sw
DMA_2D_LINE_CYCLES = 1                                      # per 2D line (MATCH's OVERHEAD_2D_TRANSFER)


def matmul_core_cycles(tokens: int, outs: int, n_in: int, wbits: int, loop: InnerLoop) -> int:
    """One core's cycles for `tokens x outs` outputs of a length-`n_in` reduction, held in L1."""
    if tokens <= 0 or outs <= 0:
        return 0
    lanes = 8 if wbits == 4 else 4
    iters, left = divmod(n_in, lanes)
    bt, bo = loop.block_tokens, loop.block_out
    if wbits == 4:   # one weight word = 8 int4 lanes, unpacked to two int8 words (2 instructions per word)
        per_iter = 2 * bt + bo + 2 * bo + 2 * bt * bo
    else:
        per_iter = bt + bo + bt * bo
    per_block = loop.block_setup_cycles() + iters * per_iter + left * (bt + bo + bt * bo)   # leftover: scalar lb/mac
    blocks = math.ceil(tokens / bt) * math.ceil(outs / bo)
    return blocks * per_block + tokens * outs * loop.requant_cycles


def dma_cycles(nbytes: int, transfers: int, board: Gap9Board) -> int:
    return 0 if nbytes == 0 else math.ceil(nbytes / board.dma_bytes_per_cycle) + transfers * board.dma_setup_cycles


@dataclass
class LayerCycles:
    compute: int = 0          # slowest core, summed over tiles
    dma_exposed: int = 0      # DMA not hidden behind compute
    sync: int = 0             # fork + barriers
    macs: int = 0

    @property
    def total(self) -> int:
        return self.compute + self.dma_exposed + self.sync


def linear_cycles(t: LinearTiling, board: Gap9Board, loop: InnerLoop = TRM_LOOP) -> LayerCycles:
    """The tile loop of trm_linear_cl.c, tile by tile (phase A DMA, barrier, compute, barrier, output DMA)."""
    cores, rb = board.workers, row_bytes(t.n_in, t.wbits)
    n_to = math.ceil(t.n_out / t.tile_out)
    tiles = [(tt, to) for tt in range(math.ceil(t.tokens / t.tile_tokens)) for to in range(n_to)]
    dims = [(min(t.tile_tokens, t.tokens - tt * t.tile_tokens), min(t.tile_out, t.n_out - to * t.tile_out))
            for tt, to in tiles]
    r = LayerCycles(sync=board.fork_cycles + 2 * board.barrier_cycles * len(tiles), macs=t.tokens * t.n_in * t.n_out)
    compute = []
    for tt_n, to_n in dims:
        share = (math.ceil(tt_n / cores), to_n) if t.split_tokens else (tt_n, math.ceil(to_n / cores))
        compute.append(matmul_core_cycles(*share, t.n_in, t.wbits, loop))
    w_dma = [dma_cycles(t.packed_tile_bytes, 1, board) if t.packed else dma_cycles(to_n * rb + 12 * to_n, 4, board)
             for _, to_n in dims]
    out_dma = [dma_cycles(tt_n * to_n, 1, board) for tt_n, to_n in dims]
    for i, ((tt, to), (tt_n, _)) in enumerate(zip(tiles, dims)):
        exposed = dma_cycles(tt_n * t.n_in, 1, board) if to == 0 else 0        # input rows: loaded and waited
        if not t.double_buffer:
            exposed += w_dma[i] + out_dma[i]
        elif i == 0:
            exposed += w_dma[0]
        else:   # W(i) and out(i-1) moved while tile i-1 computed
            exposed += max(0, w_dma[i] + out_dma[i - 1] - compute[i - 1])
        r.dma_exposed += exposed
    if t.double_buffer:
        r.dma_exposed += out_dma[-1]
    r.compute = sum(compute)
    return r


# -- the calibration point ------------------------------------------------------------------------------------------
# PULP-NN's int8 convolution on 8 cores: im2col of two output pixels per core step, then the 4x2 MatMul over the
# receptive field, output rows split over the cores (github.com/pulp-platform/pulp-nn, README "Parallelism").
# The paper's exact benchmark layer was not retrieved in this session: we use a 3x3, 32 -> 64 channel layer on a
# 16x16 output (an assumption, stated wherever the check is shown). Data in L1, as in PULP-NN's kernel benchmarks.
PULPNN_LAYER = {"out_h": 16, "out_w": 16, "c_in": 32, "c_out": 64, "k": 3}


def pulpnn_conv_cycles(board: Gap9Board, layer: dict = PULPNN_LAYER) -> tuple[int, int]:
    """(cycles, MACs) of the PULP-NN-shape convolution under this model."""
    k_red = layer["k"] * layer["k"] * layer["c_in"]
    rows_per_core = math.ceil(layer["out_h"] / board.workers)
    pixels = rows_per_core * layer["out_w"]
    im2col = math.ceil(pixels / 2) * 2 * math.ceil(k_red / 4) * IM2COL_CYCLES_PER_WORD
    core = im2col + matmul_core_cycles(pixels, layer["c_out"], k_red, 8, PULPNN_LOOP)
    macs = layer["out_h"] * layer["out_w"] * layer["c_out"] * k_red
    return core + board.fork_cycles + board.barrier_cycles, macs


@dataclass(frozen=True)
class Calibration:
    modeled_macs_per_cycle: float
    published_macs_per_cycle: float
    relative_error: float

    @property
    def calibrated(self) -> bool:
        return abs(self.relative_error) <= CALIBRATION_TOLERANCE


def pulpnn_check(board: Gap9Board) -> Calibration:
    cycles, macs = pulpnn_conv_cycles(board)
    m = macs / cycles
    return Calibration(m, PULPNN_PUBLISHED_MACS_PER_CYCLE, m / PULPNN_PUBLISHED_MACS_PER_CYCLE - 1)


# -- a whole model ----------------------------------------------------------------------------------------------------
def element_cycles(op: str, n: int, n_in: int, tokens: int) -> int:
    """Single-core cycles of a reference kernel over n elements (tokens: rows, for RMSNorm's per-token work)."""
    if op == "rmsnorm":
        return n * RMSNORM_CYCLES["per_element"] + tokens * RMSNORM_CYCLES["per_token"]
    if op in ("add_s8", "add_s32"):
        base, per_in = ELEMENT_CYCLES[op]
        return n * (base + per_in * n_in)
    return n * ELEMENT_CYCLES[op]


def rows_cycles(t: RowsTiling, board: Gap9Board, n_in: int) -> LayerCycles:
    """trm_rows_cl: the slowest core's chunks; each chunk loads its operands and stores its result, waited at once.
    All cores move data at the same time: a core sees 1/cores of the DMA bandwidth."""
    share = -(-t.rows // board.workers)
    in_bytes = 4 if t.op == "rmsnorm" else n_in
    transfers_in = 1 if t.op == "rmsnorm" else n_in
    bw = board.dma_bytes_per_cycle / board.workers
    r = LayerCycles(sync=board.fork_cycles)
    if t.op in ("lut", "rmsnorm"):   # constants once per core
        const = 256 if t.op == "lut" else 8 * t.cols
        r.dma_exposed += math.ceil(const / bw) + (1 if t.op == "lut" else 2) * board.dma_setup_cycles
    for start in range(0, share, t.chunk_rows):
        n = min(t.chunk_rows, share - start) * t.cols
        r.dma_exposed += (math.ceil(n * in_bytes / bw) + transfers_in * board.dma_setup_cycles
                          + math.ceil(n * t.out_bytes / bw) + board.dma_setup_cycles)
        r.compute += element_cycles(t.op, n, n_in, n // t.cols)
    return r


def transpose_cycles(t: TransposeTiling, board: Gap9Board) -> LayerCycles:
    share = -(-t.cols // board.workers)
    bw = board.dma_bytes_per_cycle / board.workers
    r = LayerCycles(sync=board.fork_cycles)
    for start in range(0, share, t.chunk_cols):
        n = min(t.chunk_cols, share - start) * t.rows
        r.dma_exposed += (2 * math.ceil(n / bw) + 2 * board.dma_setup_cycles + t.rows * DMA_2D_LINE_CYCLES)
        r.compute += n * ELEMENT_CYCLES["transpose"]
    return r


def node_cycles(node: dict, shapes: dict, plans: dict, board: Gap9Board) -> LayerCycles:
    """Cycles of one artifact node as the generated project runs it."""
    op, plan = node["op"], plans.get(node["name"])
    if op == "linear":
        return linear_cycles(plan, board)
    if isinstance(plan, RowsTiling):
        n_in = 3 if node.get("per_call") and op == "add_s8" else len(node.get("inputs", []))
        return rows_cycles(plan, board, n_in)
    if isinstance(plan, TransposeTiling):
        return transpose_cycles(plan, board)
    n = math.prod(shapes[node["output"]])
    if op == "head":
        rows = n // node["n_out"]
        macs = rows * node["n_in"] * node["n_out"]
        return LayerCycles(compute=macs * HEAD_CYCLES["per_mac"] + n * HEAD_CYCLES["per_output"], macs=macs)
    if op == "mean_pool":
        return LayerCycles(compute=math.prod(shapes[node["inputs"][0]]) * ELEMENT_CYCLES["mean_pool"] + 12 * n)
    return LayerCycles(compute=element_cycles(op, n, len(node.get("inputs", [])), math.prod(shapes[node["output"]][:-1])))


@dataclass
class ModelCycles:
    phases: dict[str, int] = field(default_factory=dict)     # cycles of one prologue / one net call / one heads
    net_calls_per_step: int = 0
    macs: dict[str, int] = field(default_factory=dict)

    def inference_cycles(self, steps: int) -> int:
        return self.phases["prologue"] + steps * (self.net_calls_per_step * self.phases["net"] + self.phases["heads"])


def model_cycles(art, plans: dict, board: Gap9Board) -> ModelCycles:
    """Per-phase cycles of the generated project for this artifact (one cluster task per section run)."""
    shapes = {k: tuple(v["shape"]) for k, v in art.header["activations"].items()}
    for s in ("x", "y", "z"):
        shapes[s] = (art.dims.tokens, art.dims.hidden)
    shapes["out"] = (art.dims.tokens, art.dims.hidden)
    mc = ModelCycles(net_calls_per_step=len(art.calls))
    for section in ("prologue", "net", "heads"):
        layers = [node_cycles(n, shapes, plans, board) for n in art.graph[section]]
        # one cluster task per section run: dispatch from the FC costs one fork (estimate, boards/gap9.yaml)
        mc.phases[section] = board.fork_cycles + sum(lc.total for lc in layers)
        mc.macs[section] = sum(lc.macs for lc in layers)
    return mc


def figures(cycles: int, board: Gap9Board) -> dict:
    """Cycles, latency and energy as provenance figures; 'uncalibrated' is added to the source when it applies."""
    cal = pulpnn_check(board)
    tag = "" if cal.calibrated else ", UNCALIBRATED"
    src = f"{MODEL_SOURCE} (PULP-NN check {cal.relative_error:+.0%}{tag})"
    energy_src = src + (", energy per cycle is an estimate" if board.energy_estimate else "")
    return {"cycles": figure(cycles, "cycles", "modeled", src),
            "latency_ms": figure(cycles / board.clock_hz * 1e3, "ms", "modeled", src),
            "energy_uj": figure(cycles * board.pj_per_cycle * 1e-6, "uJ", "modeled", energy_src)}
