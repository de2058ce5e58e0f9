"""The frozen GAP9 cycle/energy model (v1): a hand-computed case, the PULP-NN calibration check, provenance labels."""
from __future__ import annotations

import dataclasses

import pytest

from trm_tvm.gap9 import cycles
from trm_tvm.gap9.board import load_gap9
from trm_tvm.gap9.tiling import LinearTiling, plan_linear
from trm_tvm.quant.fixtures import random_artifact


@pytest.fixture(scope="module")
def board():
    return load_gap9()


def test_linear_layer_hand_computed(board):
    """4 tokens x 10 inputs -> 16 outputs, tiles of 4 x 8 (2 tiles), split by channel, double buffered.
    Per tile each core has 4 tokens x ceil(8/8) = 1 channel: blocks = ceil(4/2) * ceil(1/4) = 2.
    Per block: setup 4 + 2*4 + 2 + 4 = 18; 10 = 2 SIMD iterations of (2 + 4 loads + 8 sdotp = 14) + 2 leftover
    elements x 14 -> 18 + 28 + 28 = 74. Tile: 2 x 74 + 4 outputs x 12 requant = 196; 2 tiles: 392.
    DMA (8 B/cycle + 550 per transfer): weights+params per tile 8*10 + 12*8 = 176 B in 4 transfers = 22 + 2200 =
    2222; input 40 B = 5 + 550 = 555; output 32 B = 4 + 550 = 554. Exposed: tile 0: 555 + 2222; tile 1:
    max(0, 2222 + 554 - 196) = 2580; last output 554 -> 5911. Sync: fork 300 + 2 barriers x 50 x 2 tiles = 500."""
    r = cycles.linear_cycles(LinearTiling(4, 10, 16, 8, 4, 8, False, True), board)
    assert (r.compute, r.dma_exposed, r.sync, r.total, r.macs) == (392, 5911, 500, 6803, 640)


def test_single_buffering_exposes_every_transfer(board):
    t = LinearTiling(4, 10, 16, 8, 4, 8, False, False)
    r = cycles.linear_cycles(t, board)
    assert r.dma_exposed == 555 + 2 * (2222 + 554)
    assert r.total > cycles.linear_cycles(dataclasses.replace(t, double_buffer=True), board).total


def test_int4_costs_unpacking_but_moves_half_the_weight_bytes(board):
    t8 = plan_linear(32, 64, 128, 8, board.l1_budget)
    t4 = plan_linear(32, 64, 128, 4, board.l1_budget)
    assert cycles.linear_cycles(t4, board).compute > cycles.linear_cycles(t8, board).compute * 0.5
    assert cycles.matmul_core_cycles(2, 4, 8, 4, cycles.TRM_LOOP) == 18 + 1 * (4 + 4 + 8 + 16) + 8 * 12


def test_pulpnn_calibration_within_30_percent(board):
    """PULP-NN-shape conv (3x3, 32->64, 16x16 output; data in L1), 8 cores: per core 32 pixels = 256 blocks of
    2x4, each 18 + 72 x 14 + 8 x 3 = 1050 cycles; im2col 16 x 2 x 72 words x 2 = 4608; + fork 300 + barrier 50
    = 273758 cycles for 4718592 MACs = 17.24 MAC/cycle vs 15.5 published: +11 %."""
    cyc, macs = cycles.pulpnn_conv_cycles(board)
    assert (cyc, macs) == (273758, 4718592)
    cal = cycles.pulpnn_check(board)
    assert cal.calibrated and abs(cal.relative_error - 0.112) < 0.001


def test_figures_are_modeled_and_say_uncalibrated_when_the_check_fails(board):
    f = cycles.figures(370_000, board)
    assert all(v["provenance"] == "modeled" for v in f.values())
    assert f["latency_ms"]["value"] == pytest.approx(1.0) and f["energy_uj"]["value"] == pytest.approx(53.835)
    assert "UNCALIBRATED" not in f["cycles"]["source"] and "estimate" in f["energy_uj"]["source"]
    off = dataclasses.replace(board, fork_cycles=200_000)          # a board file that breaks the calibration
    assert "UNCALIBRATED" in cycles.figures(1, off)["cycles"]["source"]


def test_model_cycles_follow_the_schedule(board):
    art, _, _ = random_artifact(hidden=16, tokens=8, layers=2, n=2, T=2, N_sup=3)
    from trm_tvm.gap9.project import _NetEmitter

    em = _NetEmitter(art, board)
    for s in ("prologue", "net", "heads"):
        em.section(s)
    mc = cycles.model_cycles(art, em.plans, board)
    assert mc.net_calls_per_step == 6
    assert mc.inference_cycles(3) == mc.phases["prologue"] + 3 * (6 * mc.phases["net"] + mc.phases["heads"])
    assert mc.macs["net"] == 2 * (3 * 8 * 16 * 16 + 3 * 8 * 16 * 32)   # 2 layers x (token MLP + channel MLP)


def test_row_parallel_op_hand_computed(board):
    """LUT over 16 rows x 48 in chunks of 2 rows: each core has 2 rows = 1 chunk of 96 elements; 8 cores share
    the DMA (1 B/cycle each). Table 256 B: 256 + 550; chunk in 96 + 550, out 96 + 550; compute 96 x 4; fork 300."""
    from trm_tvm.gap9.tiling import RowsTiling

    r = cycles.rows_cycles(RowsTiling("lut", 16, 48, 1, 2), board, 1)
    assert (r.dma_exposed, r.compute, r.sync, r.total) == (806 + 1292, 384, 300, 2782)


def test_packed_weight_tiles_move_in_one_transfer(board):
    """The hand-computed case with packed tiles: weights + params of a tile are one 176-byte DMA (22 + 550 = 572
    instead of 2222). Exposed: 555 + 572; max(0, 572 + 554 - 196) = 930; last output 554 -> 2611; total 3503."""
    r = cycles.linear_cycles(LinearTiling(4, 10, 16, 8, 4, 8, False, True, packed=True), board)
    assert (r.compute, r.dma_exposed, r.sync, r.total) == (392, 2611, 500, 3503)
