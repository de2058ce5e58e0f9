"""Self-test and benchmark of the hand-written kernels on the emulated boards (QEMU, semihosting firmware).

    python -m trm_tvm.compile.backends.handwritten_bench --boards cortex-m4,cortex-m55 --out reports/kernels/hw

Self-test: the firmware (project_templates/kernels/handwritten/selftest/) generates random cases from the shared
seeded PRNG (xorshift32; `Prng` mirrors it), runs the hand-written and the ref kernel on each and prints CRC-32s;
`check_selftest` regenerates every case here and compares with trm_tvm.quant.spec (0 LSB). Bench: each kernel at
the model's shapes under QEMU `-icount`; SysTick ticks around one call minus an empty call give **emulated**
executed instructions (exact: the board's SysTick runs on the virtual clock, one instruction = 2^shift ns).
The timing plugin of trm_tvm.measure counts the same calls per instruction class (marks around each call), which
gives the **modeled** cycles of the board's timing model beside them. This firmware is a stand-in until the
bench CLI measures kernels inside the project firmware.
"""
from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np

from trm_tvm import markdown
from trm_tvm.boards import Board, load_board
from trm_tvm.compile.backends import handwritten
from trm_tvm.errors import UserError, atomic_write_text, cli_main
from trm_tvm.jsonio import write_json
from trm_tvm.provenance import figure, fmt
from trm_tvm.quant import spec

SELFTEST_DIR = handwritten.HANDWRITTEN_DIR / "selftest"
REF_SOURCE = handwritten.KERNELS_DIR / "reference" / "trm_kernels_ref.c"
SEED = 0x7E57C0DE
ICOUNT_SHIFT = 7  # 128 ns per instruction: 3.2 (M4) / 4.1 (M55) SysTick ticks each, 2^24 ticks = 5M instructions
# (tokens, n_in, n_out) of the ECG model's linear layers: hidden 48, H 96; L = 16 or 32 tokens; token mixing runs
# on the transpose (48 "tokens" of L features, Ht = 2L)
MODEL_SHAPES = [(16, 48, 96), (16, 96, 48), (48, 16, 32), (48, 32, 16),
                (32, 48, 96), (32, 96, 48), (48, 32, 64), (48, 64, 32)]
PROBE_SHAPE = (32, 64, 128)  # the shape of the earlier probe in /work/shared/notes/anchors.md, for comparison
CFLAGS = ["-O2", "-std=c99", "-ffreestanding", "-fno-tree-loop-distribute-patterns", "-Wall", "-Wextra",
          "-Werror", "-nostdlib", "-Wl,--gc-sections", "-ffunction-sections"]


# -- firmware --------------------------------------------------------------------------------------------------------
def link_script(board: Board) -> str:
    code, data = board.emulator.code, board.emulator.data
    return f"""MEMORY {{ CODE (rx) : ORIGIN = {code.origin:#x}, LENGTH = {code.bytes:#x}
         RAM (rwx) : ORIGIN = {data.origin:#x}, LENGTH = {data.bytes:#x} }}
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > CODE
  .data : {{ __data_start = .; *(.data*) . = ALIGN(4); __data_end = .; }} > RAM AT > CODE
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : {{ __bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end = .; }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


def build_firmware(board: Board, out_dir: Path, bench: bool = False, cases: int = 1000, seed: int = SEED,
                   shapes=MODEL_SHAPES) -> Path:
    """Compile the self-test (or bench) firmware of the board's hand-written variant; returns the ELF."""
    variant = handwritten.variant(board)
    if variant == "ref":
        raise UserError(f"board {board.name} has no hand-written kernels (no DSP or MVE)", "pick a Cortex-M board")
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise UserError("arm-none-eabi-gcc not found", "run `make setup` (installs gcc-arm-none-eabi)")
    out_dir.mkdir(parents=True, exist_ok=True)
    ld = out_dir / "link.ld"
    ld.write_text(link_script(board))
    elf = out_dir / f"kernels_{'bench' if bench else 'selftest'}_{board.name}.elf"
    defines = [f"-DTRM_VARIANT={variant}", f"-DTRM_SEED={seed:#x}u", f"-DTRM_CASES={cases}"]
    if bench:
        defines += ["-DTRM_BENCH", "-DTRM_BENCH_SHAPES=" + ",".join("{%d,%d,%d}" % s for s in shapes)]
    srcs = [SELFTEST_DIR / "startup.c", SELFTEST_DIR / "main.c", handwritten.HANDWRITTEN_DIR /
            handwritten.SOURCES[variant], handwritten.HANDWRITTEN_DIR / handwritten.OPS_SOURCE, REF_SOURCE]
    cmd = [gcc, *board.core.cflags, *CFLAGS, *defines, f"-I{handwritten.KERNELS_DIR}",
           f"-I{handwritten.HANDWRITTEN_DIR}", *map(str, srcs), "-T", str(ld), "-lgcc", "-o", str(elf)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"firmware build failed:\n{' '.join(cmd)}\n{res.stderr}")
    return elf


def run_qemu(board: Board, elf: Path, icount_shift: int | None = None, timeout: float = 600,
             extra: list[str] = ()) -> str:
    cmd = [*board.emulator.command, "-kernel", str(elf), *extra]
    if icount_shift is not None:
        cmd += ["-icount", f"shift={icount_shift}"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]} not found", "run `make setup` (installs qemu-system-arm)") from None
    text = res.stdout + res.stderr  # QEMU writes the semihosting console to stderr
    if res.returncode != 0 or "done" not in text:
        raise RuntimeError(f"firmware failed (exit {res.returncode}):\n{text[-3000:]}")
    return text


# -- the self-test's cases, regenerated on the host -----------------------------------------------------------------
class Prng:
    """xorshift32 and the case generator of selftest/main.c, step for step."""

    def __init__(self, seed: int):
        self.s = seed & 0xFFFFFFFF

    def next(self) -> int:
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def range(self, lo: int, hi: int) -> int:
        return lo + self.next() % (hi - lo + 1)

    def value(self, extreme: bool, lo: int, hi: int) -> int:
        return (hi if self.next() & 1 else lo) if extreme else self.range(lo, hi)

    def requant(self, n_out: int, base: int):
        mult, shift = np.zeros(n_out, np.int64), np.zeros(n_out, np.int64)
        at32 = self.range(0, 2) == 0
        for o in range(n_out):
            kind = self.range(0, 7)
            if at32 and kind != 0:
                sh = base + self.range(-1, 2)
                m = self.range(1 << 30, 0x7FFFFFFF) >> max(sh - 32, 0)
                mult[o], shift[o] = (-m if kind == 1 else m), 32
            elif kind == 0:
                p = self.range(0, 3)
                mult[o], shift[o] = 1 << p, p + self.range(1, 3)
            else:
                m = self.range(1 << 30, 0x7FFFFFFF)
                mult[o], shift[o] = (-m if kind == 1 else m), self.range(31, 33) if kind == 2 else base + self.range(-1, 2)
        return mult, shift


def selftest_case(rng: Prng):
    """One case: (a, w8, w4, bias, (mult8, shift8), (mult4, shift4))."""
    tokens = rng.range(1, 9)
    n_in = rng.range(1, 100) if rng.range(0, 2) else 16 * rng.range(1, 100 // 16)
    n_out = rng.range(1, 20)
    extreme = rng.range(0, 7) == 0
    a = np.array([rng.value(extreme, -128, 127) for _ in range(tokens * n_in)], np.int64).reshape(tokens, n_in)
    w8 = np.array([rng.value(extreme, -128, 127) for _ in range(n_out * n_in)], np.int64).reshape(n_out, n_in)
    w4 = np.array([rng.value(extreme, -8, 7) for _ in range(n_out * n_in)], np.int64).reshape(n_out, n_in)
    bias = np.array([rng.range(-(1 << 20), 1 << 20) for _ in range(n_out)], np.int64)
    q8 = rng.requant(n_out, 34 + n_in.bit_length() // 2)
    q4 = rng.requant(n_out, 31 + n_in.bit_length() // 2)
    return a, w8, w4, bias, q8, q4


def check_selftest(output: str, cases: int, seed: int = SEED) -> dict:
    """Compare every case line with the spec; returns counts and the first mismatches."""
    lines = [ln.split() for ln in output.splitlines() if ln.startswith("C ")]
    if len(lines) != cases:
        raise AssertionError(f"expected {cases} case lines, got {len(lines)}")
    rng = Prng(seed)
    bad, saturated = [], 0
    for i, fields in enumerate(lines):
        a, w8, w4, bias, (m8, s8), (m4, s4) = selftest_case(rng)
        want8 = spec.linear_s8(a, w8, bias, m8, s8)
        want4 = spec.linear_s4(a, spec.pack_s4(w4), a.shape[1], bias, m4, s4)
        saturated += int(np.isin(want8, [-128, 127]).sum() + np.isin(want4, [-128, 127]).sum())
        crc8, crc4 = zlib.crc32(want8.tobytes()), zlib.crc32(want4.tobytes())
        got = [int(x, 16) for x in fields[1:]]
        expect = [i, crc8, crc8, crc4, crc4]
        for name, g, e in zip(["index", "s8_hw", "s8_ref", "s4_hw", "s4_ref"], got, expect):
            if g != e:
                bad.append(f"case {i} {name} shape {a.shape}x{w8.shape}")
    return {"cases": cases, "mismatches": bad, "saturated_outputs": saturated}


OPS_SEED = 0x0B5EED  # TRM_OPS_SEED of selftest/main.c
MODEL_TRANSPOSES = [(16, 48), (48, 16), (32, 48), (48, 32)]   # (rows, cols) of the ECG model's token mixing


def ops_case(rng: Prng, i: int):
    """One element-wise case of selftest/main.c (ops_case), draw for draw; returns the spec's outputs in the order
    of the O line: add_s8, add_s32, mul, lut, rmsnorm, transpose (its output buffer's bytes: the offset's sentinels
    before it, the transposed matrix, 4 sentinels after)."""
    n, n_in, extreme = rng.range(1, 70), rng.range(2, 3), rng.range(0, 7) == 0
    x = [np.array([rng.value(extreme, -128, 127) for _ in range(n)], np.int64) for _ in range(3)]
    m = np.array([rng.range(0, (1 << 15) - 1) for _ in range(3)], np.int64)
    s = rng.range(1, 30)
    (mult,), (shift,) = rng.requant(1, 38 + rng.range(-1, 2))
    table = np.array([rng.range(-128, 127) for _ in range(256)], np.int64).astype(np.int8)
    vec, tokens = rng.range(0, 1), rng.range(1, 3)
    dim = 4 * rng.range(1, 60 // 4) if vec else rng.range(1, 60)
    mag = rng.range(0, 24)
    r = np.array([rng.range(-(1 << mag) + 1, (1 << mag) - 1) for _ in range(tokens * dim)], np.int64)
    eps = 0 if rng.range(0, 2) == 0 else rng.range(0, 1 << 20)
    if vec:
        mult_r, shift_r = np.zeros(dim, np.int64), np.zeros(dim, np.int64)
        for k in range(dim):
            mk = rng.range(1 << 30, 0x7FFFFFFF)
            mult_r[k] = mk if rng.range(0, 1) else -mk
            shift_r[k] = rng.range(33, 44)
    else:
        mult_r, shift_r = rng.requant(dim, 36 + rng.range(0, 6))
    model_shape, which = rng.range(0, 7) == 0, rng.range(0, 3)
    rows, cols = MODEL_TRANSPOSES[which] if model_shape else (rng.range(1, 48), rng.range(1, 48))
    out_off = rng.range(0, 3)
    t = np.array([rng.value(extreme, -128, 127) for _ in range(rows * cols)], np.int64).astype(np.int8)
    sentinels = bytes([0x5A])
    t_out = sentinels * out_off + spec.transpose_s8(t.reshape(rows, cols)).tobytes() + sentinels * 4
    return [spec.add_s8(x[:n_in], m[:n_in], s).astype(np.int8), spec.add_s32(x[:n_in], m[:n_in]).astype(np.int32),
            spec.mul_s8(x[0], x[1], mult, shift).astype(np.int8), spec.lut_s8(x[0], table),
            spec.rmsnorm_s32(r.reshape(tokens, dim), eps, mult_r, shift_r).astype(np.int8),
            np.frombuffer(t_out, np.uint8)]


OPS = ("add_s8", "add_s32", "mul_s8", "lut_s8", "rmsnorm_s32", "transpose_s8")


def check_ops_selftest(output: str, cases: int, seed: int = SEED) -> dict:
    """The element-wise O lines: the board's hand-written kernel's (dsp, or mve for add/mul/LUT/RMSNorm on Helium;
    the transpose is dsp on both) and the ref twin's CRC of each op against the spec's."""
    lines = [ln.split() for ln in output.splitlines() if ln.startswith("O ")]
    if len(lines) != cases:
        raise AssertionError(f"expected {cases} op case lines, got {len(lines)}")
    rng = Prng(seed ^ OPS_SEED)
    bad, saturated = [], 0
    for i, fields in enumerate(lines):
        want = ops_case(rng, i)
        saturated += sum(int(np.isin(w, [-128, 127]).sum()) for w in want if w.dtype == np.int8)
        crcs = [zlib.crc32(w.tobytes()) for w in want]
        got = [int(x, 16) for x in fields[1:]]
        if len(got) != 1 + 2 * len(OPS):
            raise AssertionError(f"op case {i}: {len(got)} fields, expected {1 + 2 * len(OPS)}")
        if got[0] != i:
            bad.append(f"case {i}: line {got[0]}")
        for k, name in enumerate(OPS):
            for j, variant in enumerate(("hw", "ref")):
                if got[1 + len(OPS) * j + k] != crcs[k]:
                    bad.append(f"case {i} {name}_{variant}")
    return {"cases": cases, "mismatches": bad, "saturated_outputs": saturated}


# -- bench -----------------------------------------------------------------------------------------------------------
MARKS = ("trm_bench_begin", "trm_bench_end")
# every row's real multiplier is 2^-10 (selftest/main.c); the hand-written kernels run it in both encodings: the
# spec's (M in [2^30, 2^31)) and the one with sh fixed at 32, which the dsp kernels requantise with one SMMULR
MULTIPLIERS = {False: "M=2^30, sh=40", True: "M=2^22, sh=32"}


def bench_board(board: Board, work: Path, shapes=MODEL_SHAPES) -> list[dict]:
    """Each kernel once at each shape (requantisation and widening included), minus an empty call of the same
    signature: emulated instructions from the timing plugin (cross-checked against SysTick under -icount) and
    modeled cycles from the board's timing model. Operands live in RAM (the model keeps weights in flash)."""
    from trm_tvm.measure import timing

    elf = build_firmware(board, work, bench=True, shapes=shapes)
    run = timing.prepare_plugin(elf, board, work / "plugin", marks=MARKS)
    out = run_qemu(board, elf, icount_shift=ICOUNT_SHIFT, extra=run.qemu_args)
    calls = [timing.total(c) for c in timing.intervals(run.snapshots(), *MARKS)]
    lines = [ln.split() for ln in out.splitlines() if ln.startswith("B ")]
    if len(calls) != len(lines):
        raise RuntimeError(f"{len(lines)} measured calls but {len(calls)} plugin intervals")
    ticks_per_insn = board.emulator.systick_hz * (1 << ICOUNT_SHIFT) / 1e9
    rows, empty = [], {}
    for (_, name, t, k, o, ticks), row in zip(lines, calls):
        shape, ticks = (int(t, 16), int(k, 16), int(o, 16)), int(ticks, 16)
        if name == "empty":
            empty[shape] = row, ticks
            continue
        kernel_row = {c: row[c] - empty[shape][0].get(c, 0) for c in row}
        n = kernel_row["insns"]
        systick_n = (ticks - empty[shape][1]) / ticks_per_insn
        if abs(systick_n - n) > 2 + 1e-5 * n:  # the two instruments disagree: report neither
            raise RuntimeError(f"{name} {shape}: plugin {n} vs SysTick {systick_n:.1f} instructions")
        macs = math.prod(shape)
        cyc = timing.cycles(kernel_row, board)
        dtype, impl, *sh32 = name.split("_")  # s8_hw, s8_hw_s32 (the same multipliers encoded at sh = 32), s8_ref
        kernel = f"trm_linear_{dtype}_{handwritten.variant(board) if impl == 'hw' else 'ref'}"
        rows.append({"board": board.name, "kernel": kernel + (" (sh=32)" if sh32 else ""),
                     "multipliers": MULTIPLIERS[bool(sh32)], "tokens": shape[0], "n_in": shape[1],
                     "n_out": shape[2], "macs": macs,
                     "instructions": timing.instructions(kernel_row),
                     "instructions_per_mac": figure(n / macs, "instructions/MAC", "emulated",
                                                    "QEMU TCG plugin trm_insn_classes, one call"),
                     "cycles": cyc,
                     "cycles_per_mac": figure(cyc["value"] / macs, "cycles/MAC", "modeled", cyc["source"])})
    return rows


def table(rows: list[dict]) -> str:
    probe = lambda r: " (probe)" if (r["tokens"], r["n_in"], r["n_out"]) == PROBE_SHAPE else ""  # noqa: E731
    return markdown.table(
        ["board", "kernel", "multipliers", "tokens x n_in x n_out", "MACs", "instructions", "instructions/MAC",
         "cycles/MAC"],
        [[r["board"], r["kernel"], r["multipliers"], f"{r['tokens']}x{r['n_in']}x{r['n_out']}{probe(r)}", r["macs"],
          fmt(r["instructions"]), fmt(r["instructions_per_mac"]), fmt(r["cycles_per_mac"])] for r in rows]) + "\n"


HEADER = """# Hand-written linear kernels at the model's shapes

One call per kernel and shape, requantisation and operand widening included, minus an empty call of the same
signature. **emulated**: instructions executed on QEMU, counted by the trm_tvm.measure TCG plugin and checked
against SysTick under `-icount`. **modeled**: cycles from the board's `timing_model` (boards/*.yaml) applied to
the per-class counts, with code fetched from flash (wait states per the board) and operands in RAM.
Shapes: tokens x n_in x n_out of the ECG model (hidden 48, H 96, L 16 or 32; token mixing runs on the transpose:
48 rows of L features, Ht = 2L); (probe) is the shape of the earlier probe quoted below. Every row's multiplier is
2^-10, encoded as the spec's quantiser does (M=2^30, sh=40) and, for the hand-written kernels, also with the shift
fixed at 32 (M=2^22, sh=32; kernel marked "(sh=32)"): the same real multiplier and outputs, requantised with one
SMMULR instead of SMMLA + ASR on the DSP cores.

"""
ANCHORS = """
Published / earlier figures to compare with (not measured here):
- Cortex-M4 SMLAD peak: 2 MAC/cycle (0.5 cycle/MAC) (published, Arm).
- Earlier probe on emulated Cortex-M4, 32x64x128, gcc -O2 (/work/shared/notes/anchors.md): plain C 5.17 / 5.52,
  2x2-blocked SMLAD intrinsics 1.52 / 1.62, hand assembly 6t x 1o 0.85 / 0.88 instructions/MAC (core / with a
  single-rounding requantisation); Cortex-M55 MVE 0.72.
"""


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trm_tvm.compile.backends.handwritten_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", default="cortex-m4,cortex-m55")
    p.add_argument("--out", required=True, help="report directory (bench.json, bench.md)")
    p.add_argument("--selftest", type=int, default=0, metavar="N", help="also run the on-device self-test, N cases")
    args = p.parse_args(argv)
    out = Path(args.out)
    rows, selftests = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.boards.split(","):
            board = load_board(name)
            work = Path(tmp) / name
            rows += bench_board(board, work, MODEL_SHAPES + [PROBE_SHAPE])
            if args.selftest:
                elf = build_firmware(board, work, cases=args.selftest)
                text = run_qemu(board, elf)
                selftests[name] = check_selftest(text, args.selftest)
                selftests[name + " element-wise"] = check_ops_selftest(text, args.selftest)
    write_json(out / "bench.json", {"rows": rows, "selftest": selftests})
    atomic_write_text(out / "bench.md", HEADER + table(rows) + ANCHORS)
    print(table(rows))
    for name, res in selftests.items():
        print(f"{name}: self-test {res['cases']} cases, {len(res['mismatches'])} mismatches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
