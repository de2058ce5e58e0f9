"""The functional GAP9 build on 9 QEMU harts: the compat checker catches racy kernels, and the cluster-parallel
tiled linear kernel is bit-exact (0 LSB) against trm_tvm.quant.spec with sizes that are not multiples of the tile
or of the 8 cores, in parallel and in the shuffled sequential fallback."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trm_tvm.gap9 import functional, selftest
from trm_tvm.gap9.tiling import LinearTiling, plan_linear

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("gap9")]


def _build_run(tmp: Path, name: str, defines: dict) -> functional.RunResult:
    inc = tmp / name
    inc.mkdir()
    elf = functional.build(inc / "fw.elf", [selftest.SELFTEST, selftest.LINEAR], [inc], defines)
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
    [r] = selftest.run_linear_cases([t], tmp_path, seed=tokens * 1000 + n_out, checks=2, sequential=seq)
    assert r.rc == 0 and r.l1_peak == t.l1_bytes, "planner and kernel disagree on the L1 budget"
    assert r.ok, r.error                      # clean compat run, output 0 LSB against the spec


def test_one_firmware_checks_many_schedules_each_on_its_own(tmp_path):
    """A tuning batch: several tilings of one layer in one firmware; the one the kernel refuses is the only one
    that fails, and every other case has its own L1 peak and 0-LSB output."""
    ok = [LinearTiling(60, 1000, 64, 8, 60, w, s, d, p) for w, s, d, p in
          ((8, False, True, False), (16, True, False, True), (8, True, False, False))]
    too_big = LinearTiling(60, 1000, 64, 8, 60, 60, False, True)
    assert too_big.l1_bytes > functional.L1_BYTES
    res = selftest.run_linear_cases([ok[0], too_big, *ok[1:]], tmp_path)
    assert [r.ok for r in res] == [True, False, True, True], [r.error for r in res]
    assert res[1].rc == -1 and [r.l1_peak for r in res[2:]] == [t.l1_bytes for t in ok[1:]]


def test_planner_tiles_fit_l1_and_run_bit_exact(tmp_path):
    """A layer too big for one L1 tile: the planner splits it, the kernel stays inside the budget and exact."""
    budget = 24 * 1024
    t = plan_linear(tokens=24, n_in=300, n_out=181, wbits=8, l1_budget=budget)
    assert t.l1_bytes <= budget and t.n_tiles > 1 and t.tile_out % 8 == 0
    [r] = selftest.run_linear_cases([t], tmp_path, seed=3)
    assert r.ok and r.l1_peak == t.l1_bytes <= budget, r.error


def test_kernel_refuses_tiles_that_overflow_l1(tmp_path):
    t = LinearTiling(60, 1000, 64, 8, 60, 60, False, True)    # 60000 + 2 x 60000 B of tiles > 128 kB
    assert t.l1_bytes > functional.L1_BYTES and t.dma_ok()
    [r] = selftest.run_linear_cases([t], tmp_path, seed=1)
    assert r.rc == -1 and not r.ok and "refused" in r.error   # TRM_CL_E_L1: refused, nothing computed


def test_a_wrong_output_or_l1_peak_is_a_failed_case():
    t = LinearTiling(2, 4, 3, 8, 2, 3)
    expect = np.arange(6, dtype=np.int8).reshape(2, 3)
    log = f"CASE 0000\nL1PEAK {t.l1_bytes:08x}\nRC 0\nOUT 000102030405\n" \
          f"CASE 0001\nL1PEAK {t.l1_bytes:08x}\nRC 0\nOUT 000102030415\n" \
          f"CASE 0002\nL1PEAK {t.l1_bytes + 8:08x}\nRC 0\nOUT 000102030405\n"
    a, b, c, d = selftest.parse_cases(log, [t, t, t, t], expect)
    assert a.ok and "differs" in b.error and "L1 peak" in c.error and "no output" in d.error


def test_cases_are_also_checked_with_the_tir_kernels(tmp_path, monkeypatch):
    """With tir=True every tiling also runs with the per-core kernels generated from the TIR strategy; a tiling
    whose generated kernels are wrong (here: one share kernel missing) fails although the loop passes."""
    from trm_tvm.gap9 import tir_kernels

    tok = [LinearTiling(13, 37, 29, w, 13, 16, True, True, p) for w, p in ((8, False), (8, True))]
    ch = LinearTiling(13, 37, 29, 8, 13, 16, False, True)
    res = selftest.run_linear_cases([tok[0], ch, tok[1]], tmp_path / "a", tir=True)
    assert all(r.ok for r in res), [r.error for r in res]
    s4 = LinearTiling(13, 37, 29, 4, 5, 29, True, False)
    real = tir_kernels.share_shapes
    monkeypatch.setattr(tir_kernels, "share_shapes", lambda t, cores: set(sorted(real(t, cores))[1:]))
    [r] = selftest.run_linear_cases([s4], tmp_path / "b", tir=True)
    assert not r.ok and "TIR-generated" in r.error and "refused" in r.error
