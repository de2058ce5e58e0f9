"""What TVM 0.27's LLVM emits for a GAP9 inner loop (read from the assembly; nothing here runs CORE-V code)."""
from __future__ import annotations

from trm_tvm.gap9 import corev_probe


def test_corev_gives_post_increment_loads_but_no_simd_dot_product():
    plain = corev_probe.inner_loop(corev_probe.PLAIN_MATTR)
    corev = corev_probe.inner_loop(corev_probe.COREV_MATTR)
    assert plain["lb"] == 2 and plain["addi"] >= 1                 # loads + pointer bumps
    assert corev["cv.lb"] == 2 and corev["addi"] == 0              # post-increment loads replace the bumps
    assert sum(corev.values()) < sum(plain.values())
    # no SIMD sum-of-dot-products and no MAC from plain TIR: the cycle model's 4x2 loop needs the cv intrinsics
    assert not any(op.startswith(("cv.sdot", "cv.dot", "cv.mac")) for op in corev)
    assert corev["mul"] == 1 and corev["add"] == 1
