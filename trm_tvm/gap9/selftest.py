"""The cluster linear kernel's self-test on the functional build: several schedules of one layer in ONE firmware.

    results = run_linear_cases([tiling, ...], work_dir)      # one build, one QEMU boot (9 harts)

Every case runs `trm_linear_cl` (project_templates/gap9/kernels) on the same seeded random operands with its own
tiling, under the compat checker (races, DMA ordering, per-core write-sets); the host compares each output with
the integer spec (trm_tvm.quant.spec) and the kernel's L1 peak with the planner's figure. A case is `ok` only when
the run is clean, the kernel accepted the tiling, the output is 0 LSB and the L1 peak is the planned one.
The tuner (trm_tvm.gap9.tune) uses it to reject candidates (each also with the per-core kernels generated from
the TIR strategy); tests/test_gap9_compat.py to test the kernel.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm_tvm.gap9 import functional
from trm_tvm.gap9.codegen import c_array, c_defines
from trm_tvm.gap9.tiling import LinearTiling, pack_linear
from trm_tvm.quant import spec

SELFTEST = functional.TEMPLATE / "selftest" / "selftest.c"
LINEAR = functional.TEMPLATE / "kernels" / "trm_linear_cl.c"
CORES = 8                        # cluster harts of the functional build (qemu -smp 9: FC + 8)


@dataclass
class CaseResult:
    tiling: LinearTiling
    rc: int | None = None            # trm_linear_cl's return code (0 ok, -1 L1 refused, -2 bad args)
    l1_peak: int | None = None
    output: np.ndarray | None = None
    error: str | None = None         # why the case is not ok (None when ok)

    @property
    def ok(self) -> bool:
        return self.error is None


def linear_operands(tokens: int, n_in: int, n_out: int, wbits: int, seed: int) -> dict:
    """Seeded random operands of a linear layer (device layout) and the spec's output."""
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if wbits == 4 else (-128, 128)
    a = rng.integers(-128, 128, (tokens, n_in), dtype=np.int8)
    w = rng.integers(lo, hi, (n_out, n_in), dtype=np.int8)
    bias = rng.integers(-2000, 2000, n_out, dtype=np.int32)
    mult = rng.integers(2 ** 30, 2 ** 31 - 1, n_out, dtype=np.int32)
    shift = rng.integers(36, 42, n_out, dtype=np.int32)
    w_dev = spec.pack_s4(w) if wbits == 4 else w
    expect = (spec.linear_s4(a, w_dev, n_in, bias, mult, shift) if wbits == 4
              else spec.linear_s8(a, w, bias, mult, shift))
    return {"in": a, "w": w_dev, "bias": bias, "mult": mult, "shift": shift, "expect": expect}


def selftest_header(ops: dict, tilings: list[LinearTiling], tir: list[bool]) -> str:
    """selftest_data.h: the operands, and one st_cases entry per tiling (`tir[i]`: with the generated kernels, which
    may read the weights in another layout: `st_w_tir`)."""
    from trm_tvm.gap9 import tir_kernels

    t0 = tilings[0]
    defs = {"ST_TOKENS": t0.tokens, "ST_N_IN": t0.n_in, "ST_N_OUT": t0.n_out, "ST_WBITS": t0.wbits}
    arrays = [("st_in", ops["in"]), ("st_w", ops["w"]), ("st_bias", ops["bias"]), ("st_mult", ops["mult"]),
              ("st_shift", ops["shift"])]
    w_tir, w_tir_name = ops["w"], "st_w"
    if any(tir) and tir_kernels.in_word_layout(t0.n_in, t0.wbits):
        w_tir, w_tir_name = tir_kernels.s4_word_layout(ops["w"], t0.n_in), "st_w_tir"
        arrays.append((w_tir_name, w_tir))
    cases = []
    for i, t in enumerate(tilings):
        w, wname = (w_tir, w_tir_name) if tir[i] else (ops["w"], "st_w")
        if t.packed:
            arrays.append((f"st_packed{i}", pack_linear(t, w, ops["bias"], ops["mult"], ops["shift"])))
        share = tir_kernels.dispatcher_name(t.n_in, t.wbits) if tir[i] else "0"
        cases.append(f"{{{t.tile_tokens}, {t.tile_out}, {int(t.split_tokens)}, {int(t.double_buffer)}, "
                     f"{f'st_packed{i}' if t.packed else '0'}, {share}, {wname}}}")
    return ("#include <stdint.h>\n#include \"trm_gap9_tir.h\"\n" + c_defines(defs)
            + "".join(c_array(n, v) for n, v in arrays)
            + "static const st_case_t st_cases[] = {\n  " + ",\n  ".join(cases) + "\n};\n")


def parse_cases(output: str, tilings: list[LinearTiling], expect: np.ndarray) -> list[CaseResult]:
    results = [CaseResult(t, error="no output for this case (the run stopped before it)") for t in tilings]
    for m in re.finditer(r"^CASE ([0-9a-f]+)\nL1PEAK ([0-9a-f]+)\nRC (-?\d+)\n((?:OUT [0-9a-f]+\n)*)", output, re.M):
        r = results[int(m.group(1), 16)]
        r.l1_peak, r.rc = int(m.group(2), 16), int(m.group(3))
        hexes = "".join(line[4:] for line in m.group(4).splitlines())
        r.output = np.frombuffer(bytes.fromhex(hexes), dtype=np.int8)
        if r.rc != 0:
            r.error = f"the kernel refused the tiling (rc {r.rc})"
        elif r.output.size != expect.size or not np.array_equal(r.output.reshape(expect.shape), expect):
            r.error = "output differs from the integer spec"
        elif r.l1_peak != r.tiling.l1_bytes:
            r.error = f"L1 peak {r.l1_peak} B != planned {r.tiling.l1_bytes} B"
        else:
            r.error = None
    return results


def run_linear_cases(tilings: list[LinearTiling], work: Path, seed: int = 1, checks: int = 1,
                     sequential: int = 0, timeout_s: float = 120.0, tir: bool = False) -> list[CaseResult]:
    """Build one firmware holding every tiling of one layer shape, run it once, check each case. With `tir`, each
    tiling runs a second time with the per-core kernels generated from the TIR strategy (trm_tvm.gap9.tir_kernels),
    and its result is ok only if both runs are."""
    shapes = {(t.tokens, t.n_in, t.n_out, t.wbits) for t in tilings}
    if len(shapes) != 1:
        raise ValueError(f"one firmware tests one layer shape, got {sorted(shapes)}")
    extra = list(range(len(tilings))) if tir else []
    cases, with_tir = list(tilings) + [tilings[i] for i in extra], [False] * len(tilings) + [True] * len(extra)
    ops = linear_operands(*shapes.pop(), seed=seed)
    results = _run_cases(cases, with_tir, ops, work, checks, sequential, timeout_s)
    for j, i in enumerate(extra):
        r = results[len(tilings) + j]
        if results[i].ok and not r.ok:
            results[i].error = f"with the TIR-generated kernels: {r.error}"
    return results[:len(tilings)]


def _run_cases(cases, with_tir, ops, work, checks, sequential, timeout_s) -> list[CaseResult]:
    from trm_tvm.gap9 import tir_kernels

    work.mkdir(parents=True, exist_ok=True)
    tir_c, tir_h = tir_kernels.source([t for t, w in zip(cases, with_tir) if w], CORES)
    (work / "trm_gap9_tir.c").write_text(tir_c)
    (work / "trm_gap9_tir.h").write_text(tir_h)
    (work / "selftest_data.h").write_text(selftest_header(ops, cases, with_tir))
    elf = functional.build(work / "fw.elf", [SELFTEST, LINEAR, work / "trm_gap9_tir.c"], [work],
                           {"TRM_SELFTEST_LINEAR": 1, "TRM_COMPAT_CHECKS": checks,
                            "TRM_COMPAT_SEQUENTIAL": sequential, "TRM_COMPAT_SEED": 7})
    run = functional.run(elf, timeout_s=timeout_s)
    results = parse_cases(run.output, cases, ops["expect"])
    done = sum(r.output is not None for r in results)
    if run.exit_code != 0 and done < len(cases):
        # a compat error stops the firmware: the case that was running is the culprit, the later ones run again
        results[done].error = run.compat_error or f"functional run exit {run.exit_code}"
        if done + 1 < len(cases):
            results[done + 1:] = _run_cases(cases[done + 1:], with_tir[done + 1:], ops, work, checks, sequential,
                                            timeout_s)
    elif run.exit_code != 0:
        for r in results:
            r.error = r.error or run.compat_error or f"functional run exit {run.exit_code}"
    return results
