"""The functional GAP9 build on 9 QEMU harts: the compat checker catches racy kernels, and the cluster-parallel
tiled linear kernel is bit-exact (0 LSB) against trm_tvm.quant.spec with sizes that are not multiples of the tile
or of the 8 cores, in parallel and in the shuffled sequential fallback."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from trm_tvm.gap9 import functional
from trm_tvm.gap9.codegen import c_array, c_defines
from trm_tvm.gap9.tiling import LinearTiling, pack_linear, plan_linear
from trm_tvm.quant import spec

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("gap9")]
SELFTEST = functional.TEMPLATE / "selftest" / "selftest.c"
LINEAR = functional.TEMPLATE / "kernels" / "trm_linear_cl.c"


def _build_run(tmp: Path, name: str, defines: dict, data_h: str | None = None) -> functional.RunResult:
    inc = tmp / name
    inc.mkdir()
    if data_h is not None:
        (inc / "selftest_data.h").write_text(data_h)
    elf = functional.build(inc / "fw.elf", [SELFTEST, LINEAR], [inc], defines)
    return functional.run(elf, timeout_s=120)


@pytest.mark.parametrize("sequential", [0, 1])
@pytest.mark.parametrize("bug,expected", [
    (1, "two cores write the same L1 byte"),
    (2, "another core"),                       # read/write in one phase: whichever side declares second reports
    (3, "another core"),                       # DMA load vs readers: caught at issue or at the later read
    (4, "under an in-flight DMA load"),
])
def test_racy_kernel_is_caught(tmp_path, bug, expected, sequential):
    r = _build_run(tmp_path, f"race{bug}", {"TRM_SELFTEST_RACE": bug, "TRM_COMPAT_SEQUENTIAL": sequential,
                                            "TRM_COMPAT_CHECKS": 2})
    assert r.exit_code == 3, r.output
    assert r.compat_error and expected in r.compat_error, r.output


@pytest.mark.parametrize("sequential", [0, 1])
def test_correct_two_stage_kernel_passes(tmp_path, sequential):
    r = _build_run(tmp_path, "race0", {"TRM_SELFTEST_RACE": 0, "TRM_COMPAT_SEQUENTIAL": sequential,
                                       "TRM_COMPAT_CHECKS": 2})
    assert r.exit_code == 0 and "RACE-RESULT-OK" in r.output and r.compat_error is None, r.output


def _linear_case(t: LinearTiling, seed: int):
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if t.wbits == 4 else (-128, 128)
    a = rng.integers(-128, 128, (t.tokens, t.n_in), dtype=np.int8)
    w = rng.integers(lo, hi, (t.n_out, t.n_in), dtype=np.int8)
    bias = rng.integers(-2000, 2000, t.n_out, dtype=np.int32)
    mult = rng.integers(2 ** 30, 2 ** 31 - 1, t.n_out, dtype=np.int32)
    shift = rng.integers(36, 42, t.n_out, dtype=np.int32)
    w_dev = spec.pack_s4(w) if t.wbits == 4 else w
    expect = (spec.linear_s4(a, w_dev, t.n_in, bias, mult, shift) if t.wbits == 4
              else spec.linear_s8(a, w, bias, mult, shift))
    defs = {"ST_TOKENS": t.tokens, "ST_N_IN": t.n_in, "ST_N_OUT": t.n_out, "ST_WBITS": t.wbits,
            "ST_TILE_TOKENS": t.tile_tokens, "ST_TILE_OUT": t.tile_out,
            "ST_SPLIT_TOKENS": int(t.split_tokens), "ST_DOUBLE_BUFFER": int(t.double_buffer),
            "ST_PACKED": int(t.packed)}
    arrays = [("st_in", a), ("st_w", w_dev), ("st_bias", bias), ("st_mult", mult), ("st_shift", shift)]
    if t.packed:
        arrays.append(("st_packed", pack_linear(t, w_dev, bias, mult, shift)))
    h = "#include <stdint.h>\n" + c_defines(defs) + "".join(c_array(n, v) for n, v in arrays)
    return h, expect


def _parse(out: str) -> tuple[int, int, np.ndarray]:
    peak = int(re.search(r"L1PEAK ([0-9a-f]+)", out).group(1), 16)
    rc = int(re.search(r"RC (-?\d+)", out).group(1))
    hexes = "".join(re.findall(r"^OUT ([0-9a-f]+)$", out, re.M))
    return peak, rc, np.frombuffer(bytes.fromhex(hexes), dtype=np.int8)


CASES = [  # tokens, n_in, n_out, wbits, tile_tokens, tile_out, split_tokens, double_buffer, sequential, packed
    (13, 37, 29, 8, 5, 7, False, True, 0, True),   # ragged tiles, packed weight tiles (one DMA per tile)
    (13, 37, 29, 4, 13, 11, True, False, 1, True),  # packed int4, odd n_in, single buffering, sequential
    (13, 37, 29, 8, 5, 7, False, True, 0),     # ragged tiles in both axes, 7 channels over 8 cores
    (13, 37, 29, 8, 5, 7, True, True, 1),      # split by token, shuffled sequential fallback
    (13, 37, 29, 4, 13, 11, False, False, 0),  # packed int4, odd n_in, single buffering
    (9, 20, 5, 8, 9, 5, True, True, 0),        # fewer outputs than cores; split by token
    (16, 48, 96, 4, 16, 40, False, True, 1),   # int4 sequential, tile 40 = 5 per core, last tile 16
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}-{c[2]}-w{c[3]}-t{c[4]}x{c[5]}-"
                                              f"{'tok' if c[6] else 'ch'}-db{int(c[7])}-seq{c[8]}"
                                              f"{'-packed' if c[9:] and c[9] else ''}" for c in CASES])
def test_tiled_parallel_linear_is_bit_exact(tmp_path, case):
    tokens, n_in, n_out, wbits, tt, to, split, db, seq = case[:9]
    t = LinearTiling(tokens, n_in, n_out, wbits, tt, to, split, db, packed=bool(case[9:] and case[9]))
    h, expect = _linear_case(t, seed=tokens * 1000 + n_out)
    r = _build_run(tmp_path, "lin", {"TRM_SELFTEST_LINEAR": 1, "TRM_COMPAT_SEQUENTIAL": seq,
                                     "TRM_COMPAT_CHECKS": 2, "TRM_COMPAT_SEED": 7}, h)
    assert r.exit_code == 0 and r.compat_error is None, r.output
    peak, rc, got = _parse(r.output)
    assert rc == 0
    assert peak == t.l1_bytes, "planner and kernel disagree on the L1 budget"
    np.testing.assert_array_equal(got.reshape(expect.shape), expect)   # 0 LSB


def test_planner_tiles_fit_l1_and_run_bit_exact(tmp_path):
    """A layer too big for one L1 tile: the planner splits it, the kernel stays inside the budget and exact."""
    budget = 24 * 1024
    t = plan_linear(tokens=24, n_in=300, n_out=181, wbits=8, l1_budget=budget)
    assert t.l1_bytes <= budget and t.n_tiles > 1 and t.tile_out % 8 == 0
    h, expect = _linear_case(t, seed=3)
    r = _build_run(tmp_path, "plan", {"TRM_SELFTEST_LINEAR": 1, "TRM_COMPAT_CHECKS": 1}, h)
    assert r.exit_code == 0 and r.compat_error is None, r.output
    peak, rc, got = _parse(r.output)
    assert rc == 0 and peak == t.l1_bytes <= budget
    np.testing.assert_array_equal(got.reshape(expect.shape), expect)


def test_kernel_refuses_tiles_that_overflow_l1(tmp_path):
    t = LinearTiling(60, 1000, 64, 8, 60, 60, False, True)    # 60000 + 2 x 60000 B of tiles > 128 kB
    assert t.l1_bytes > functional.L1_BYTES and t.dma_ok()
    h, _ = _linear_case(t, seed=1)
    r = _build_run(tmp_path, "over", {"TRM_SELFTEST_LINEAR": 1}, h)
    assert r.exit_code == 0 and _parse(r.output)[1] == -1     # TRM_CL_E_L1: refused, nothing computed
