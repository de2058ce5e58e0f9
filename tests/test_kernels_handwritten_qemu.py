"""The hand-written kernels on the emulated boards: bit-exact on 1000 cases generated on the device.

The self-test firmware (project_templates/kernels/handwritten/selftest/) draws every case from the shared seeded
PRNG on the device -- shapes 1-7 tokens x 1-70 inputs x 1-20 outputs (odd sizes, every blocking tail), extreme
inputs, rounding ties, negative multipliers, buffers offset 0-3 bytes -- runs the board's hand-written kernel
(dsp on the Cortex-M4, mve on the Cortex-M55) and its ref twin, s8 and packed s4, and prints the CRC-32 of each
output. The host regenerates every case with the mirrored PRNG and compares with trm_tvm.quant.spec: 0 LSB.
"""
import pytest

from trm_tvm.boards import load_board
from trm_tvm.compile.backends import handwritten_bench as hb

CASES = 1000


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["cortex-m4", "cortex-m55"])
def test_selftest_bit_exact_on_device(board, tmp_path):
    b = load_board(board)
    out = hb.run_qemu(b, hb.build_firmware(b, tmp_path, cases=CASES), timeout=300)
    res = hb.check_selftest(out, CASES)
    assert res["mismatches"] == [], res["mismatches"][:10]
    assert res["saturated_outputs"] > 1000  # the saturation edges were exercised

