"""The TIR linear kernels that use Arm intrinsics on the emulated boards, against the integer spec, 0 LSB: the
`dsp` form (__sxtb16/__smlad, the default schedule) on the Cortex-M4 and the Helium `mve` form (VMLADAVA,
VCTP-predicated tails) on the Cortex-M55. >= 1000 random vectors per kernel (saturation, rounding ties, extreme
inputs), generated on the host, compiled into a semihosting firmware with the real instructions, outputs
printed back and compared with trm_tvm.quant.spec."""
import subprocess

import numpy as np
import pytest

from kernel_cases import int8, pack_s4, requant_params, rmsnorm_case
from oracle import O
from trm_tvm.boards import load_board
from trm_tvm.compile import strategies
from trm_tvm.compile.backends import handwritten_bench as hb
from trm_tvm.compile.backends.tvm import c_param_type
from trm_tvm.compile.kernel_abi import KERNELS_DIR
from trm_tvm.compile.lower_c import to_c
from trm_tvm.compile.strategies.eltwise import EltShape
from trm_tvm.compile.strategies.linear import LinearShape, uses_dsp, uses_mve
from trm_tvm.compile.strategies.rmsnorm import RMSNormShape

pytestmark = pytest.mark.qemu
SHAPES = [LinearShape(4, 32, 12, 8, bias=True), LinearShape(6, 8, 4, 8, out_trans=True),
          LinearShape(2, 48, 5, 8, "int16", True), LinearShape(4, 32, 12, 4, bias=True), LinearShape(3, 16, 8, 4)]
# odd tokens (not multiples of the 4-token tile), n_in tails of 1..15 k, int4 with an odd n_in, the int16 head
MVE_SHAPES = [LinearShape(5, 37, 7, 8, bias=True), LinearShape(7, 50, 9, 4, bias=True, out_trans=True),
              LinearShape(3, 16, 8, 4), LinearShape(2, 33, 5, 8, "int16", True), LinearShape(4, 32, 12, 8),
              LinearShape(9, 21, 6, 4), LinearShape(8, 48, 10, 4, out_trans=True)]  # last two: 4-token rq4
ELT_MVE_SHAPES = [EltShape("lut", (37,)), EltShape("mul", (33,)), EltShape("add_s8", (37,), 3),
                  EltShape("add_s8", (26,), 2), EltShape("add_s32", (37,), 2), RMSNormShape(3, 48)]
CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}


def cases(s: LinearShape, rng):
    for _ in range(-(-1000 // s.tokens)):
        extreme = rng.random() < 0.1
        a, w = int8(rng, (s.tokens, s.n_in), extreme), int8(rng, (s.n_out, s.n_in), extreme)
        if s.wbits == 4:  # the int4 range, extremes -8 / 7
            w = np.clip(w, -8, 7) if extreme else rng.integers(-8, 8, size=w.shape).astype(np.int8)
        bias = rng.integers(-(1 << 20), 1 << 20, size=s.n_out).astype(np.int32) if s.bias else None
        mult, sh = requant_params(rng, s.n_out, 50.0 * (8 if s.wbits == 4 else 70) * np.sqrt(s.n_in))
        if s.out_dtype == "int16":
            sh = np.maximum(sh - 8, 1).astype(np.int32)
        yield a, w, bias, mult, sh


def c_array(name, ctype, rows) -> str:
    body = ",\n".join("{" + ",".join(str(int(v)) for v in np.asarray(r).ravel()) + "}" for r in rows)
    return f"static const {ctype} {name}[{len(rows)}][{np.asarray(rows[0]).size}] __attribute__((aligned(4))) = {{\n{body}}};"


def firmware_main(name: str, s: LinearShape, cs: list, scratch: int = 0) -> str:
    a, w, bias, mult, sh = zip(*cs)
    wrows = [pack_s4(x) for x in w] if s.wbits == 4 else w
    arrays = [c_array("A", "int8_t", a), c_array("W", "uint8_t" if s.wbits == 4 else "int8_t", wrows),
              c_array("M", "int32_t", mult),
              c_array("S", "int32_t", sh)] + ([c_array("B", "int32_t", bias)] if s.bias else [])
    n_out, ot = s.tokens * s.n_out, CTYPE[s.out_dtype]
    call = f"{name}((int32_t *)A[c], (int32_t *)W[c], {'(int32_t *)B[c], ' if s.bias else ''}(int32_t *)M[c], " \
           f"(int32_t *)S[c], out{', scratch' if scratch else ''});"
    return "\n".join(["#include <stdint.h>", "void trm_puts(const char *s);",
                      f"void {name}(int32_t *, int32_t *, {'int32_t *, ' if s.bias else ''}int32_t *, int32_t *, "
                      f"{ot} *{', int32_t *' if scratch else ''});", *arrays, f"static {ot} out[{n_out}];",
                      f"static int32_t scratch[{max(scratch // 4, 1)}];", "static char line[16];", """
static void hex(uint32_t v) {
  for (int i = 0; i < 8; i++) line[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
  line[8] = ' '; line[9] = 0; trm_puts(line);
}
int main(void) {""", f"  for (int c = 0; c < {len(cs)}; c++) {{", f"    {call}",
                      f"    for (int i = 0; i < {n_out}; i++) hex((uint32_t)(int32_t)out[i]);", '    trm_puts("\\n");',
                      "  }", '  trm_puts("done\\n");', "  return 0;", "}"])


def run_on_qemu(board, kernel_c: str, main_c: str, tmp_path) -> list[list[str]]:
    """Cross-compile the kernel with a test main for the board, run it on QEMU; one list of hex words per case."""
    (tmp_path / "kernel.c").write_text(kernel_c)
    (tmp_path / "main.c").write_text(main_c)
    (tmp_path / "link.ld").write_text(hb.link_script(board))
    cmd = ["arm-none-eabi-gcc", *board.core.cflags, *hb.CFLAGS, "-Wno-unused-variable", f"-I{KERNELS_DIR / 'tvm'}",
           str(hb.SELFTEST_DIR / "startup.c"), str(tmp_path / "main.c"), str(tmp_path / "kernel.c"),
           "-T", str(tmp_path / "link.ld"), "-lgcc", "-o", str(tmp_path / "fw.elf")]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    text = hb.run_qemu(board, tmp_path / "fw.elf", timeout=300)
    return [ln.split() for ln in text.splitlines() if ln.strip() and ln.strip() != "done"]


def run_bit_exact(board_name: str, shape: LinearShape, knobs: dict, tmp_path) -> str:
    board = load_board(board_name)
    name, func, scratch = strategies.build(shape, knobs)
    src = to_c({name: func})
    cs = list(cases(shape, np.random.default_rng(31)))
    lines = run_on_qemu(board, src, firmware_main(name, shape, cs, scratch), tmp_path)
    assert len(lines) == len(cs)
    bits = 16 if shape.out_dtype == "int16" else 8
    saturated = 0
    for (a, w, bias, mult, sh), got_hex in zip(cs, lines):
        want = O.linear(a, w, bias, mult, sh, out_bits=bits)
        got = np.array([np.int32(np.uint32(int(h, 16))) for h in got_hex]).reshape(
            (shape.n_out, shape.tokens) if shape.out_trans else (shape.tokens, shape.n_out))
        np.testing.assert_array_equal(got.T if shape.out_trans else got, want)
        saturated += int((np.abs(want.astype(np.int64)) >= (1 << (bits - 1)) - 1).sum())
    assert len(cs) * shape.tokens >= 1000 and saturated > 0
    return src


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.key)
def test_dsp_linear_bit_exact_on_qemu_m4(shape, tmp_path):
    knobs = {**strategies.knobs_for("linear", "default"), "widen": False}   # both operands widened per 4 MACs
    assert uses_dsp(shape, knobs)
    src = run_bit_exact("cortex-m4", shape, knobs, tmp_path)
    assert "__smlad(__sxtb16(" in src if shape.wbits == 8 else "__smlad(trm_pkhtb(" in src


# odd tokens and n_out (not multiples of the 2 x 4 tile), bias, int16 head, out_trans, int4 with n_in % 16 == 8
WIDEN_SHAPES = [LinearShape(5, 36, 7, 8, bias=True), LinearShape(7, 24, 9, 4, bias=True, out_trans=True),
                LinearShape(3, 20, 5, 8, "int16", True), LinearShape(9, 8, 6, 4)]


@pytest.mark.parametrize("shape", WIDEN_SHAPES, ids=lambda s: s.key)
def test_dsp_widen_linear_bit_exact_on_qemu_m4(shape, tmp_path):
    """The dsp form with the activations widened once per call into scratch (knob widen, the tuned tile 2 x 4)."""
    knobs = {**strategies.knobs_for("linear", "default"), "widen": True, "tile_o": 2, "tile_t": 4, "unroll_k": 2}
    assert uses_dsp(shape, knobs) and strategies.build(shape, knobs)[2] == 2 * shape.tokens * shape.n_in
    src = run_bit_exact("cortex-m4", shape, knobs, tmp_path)
    assert "__smlad(aw[" in src


@pytest.mark.parametrize("shape", MVE_SHAPES, ids=lambda s: s.key)
def test_mve_linear_bit_exact_on_qemu_m55(shape, tmp_path):
    knobs = strategies.with_mve("linear", strategies.knobs_for("linear", "default"), True)
    assert uses_mve(shape, knobs)
    src = run_bit_exact("cortex-m55", shape, knobs, tmp_path)
    assert f"trm_mve_dot_s{shape.wbits}(" in src
    assert (f"trm_mve_dot_s{shape.wbits}_tail(" in src) == (shape.n_in % 16 > 0)
    assert ("trm_mve_rq4_s8(" in src) == (shape.tokens % 4 == 0 and shape.out_dtype == "int8")


def generic_main(name: str, func, cs: list) -> str:
    """A firmware running `name` on every case (one value per parameter, the last one the output buffer) and
    printing each output element in hex."""
    types = [c_param_type(p) for p in func.params]          # "int8_t *" for a buffer, "int32_t" for a scalar
    decls, args = [], []
    for j, t in enumerate(types[:-1]):
        decls.append(c_array(f"P{j}", t.rstrip(" *"), [np.atleast_1d(np.asarray(c[j])) for c in cs]))
        args.append(f"({t})P{j}[c]" if t.endswith("*") else f"P{j}[c][0]")
    odt, n_out = types[-1].rstrip(" *"), int(np.asarray(cs[0][-1]).size)
    return "\n".join(["#include <stdint.h>", "void trm_puts(const char *s);",
                      f"void {name}({', '.join(types)});", *decls, f"static {odt} out[{n_out}];",
                      "static char line[16];", """
static void hex(uint32_t v) {
  for (int i = 0; i < 8; i++) line[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
  line[8] = ' '; line[9] = 0; trm_puts(line);
}
int main(void) {""", f"  for (int c = 0; c < {len(cs)}; c++) {{", f"    {name}({', '.join(args)}, out);",
                      f"    for (int i = 0; i < {n_out}; i++) hex((uint32_t)(int32_t)out[i]);", '    trm_puts("\\n");',
                      "  }", '  trm_puts("done\\n");', "  return 0;", "}"])


def eltwise_cases(shape, rng, n: int):
    """(args without the output, expected output) per case, as tests/test_compile_kernels.py draws them, with
    shifts where the Helium lanes apply (mul, rmsnorm: 33..56) and elsewhere."""
    for case in range(n):
        if isinstance(shape, RMSNormShape):
            r, eps, mult, sh = rmsnorm_case(rng, dims=(shape.tokens, shape.dim))
            if case % 2:
                sh = rng.integers(33, 57, size=shape.dim).astype(np.int32)
                mult = rng.integers(-(1 << 31) + 1, 1 << 31, size=shape.dim).astype(np.int32)
            yield [r.astype(np.int32), np.int64(eps), mult, sh], O.rmsnorm(r, eps, mult, sh)
        elif shape.op == "mul":
            a, b = int8(rng, shape.dims, case % 5 == 0), int8(rng, shape.dims)
            sh = 17 + case % 46
            mult = int(rng.integers(-(1 << 31) + 1, 1 << 31)) >> max(0, 31 - sh)
            yield [a, b, np.int32(mult), np.int32(sh)], O.mul(a, b, mult, sh)
        elif shape.op == "lut":
            a, table = int8(rng, shape.dims, case % 5 == 0), int8(rng, 256)
            yield [a, table], table[a.astype(np.int64) + 128]
        else:
            ins = [int8(rng, shape.dims, case % 5 == 0) for _ in range(shape.n_in)]
            m = rng.integers(0, 1 << 15, size=shape.n_in).astype(np.int32)
            s = int(rng.integers(1, 20))
            yield ins + [m] + ([np.int32(s)] if shape.op == "add_s8" else []), \
                O.add(ins, m, s if shape.op == "add_s8" else None)


@pytest.mark.parametrize("shape", ELT_MVE_SHAPES, ids=lambda s: s.key)
def test_mve_eltwise_bit_exact_on_qemu_m55(shape, tmp_path):
    """The Helium forms of lut / mul / add / RMSNorm (odd lengths: vector body + scalar tail) on the emulated
    Cortex-M55 against the spec, >= 1000 outputs per kernel."""
    board = load_board("cortex-m55")
    family = strategies.family_of(shape)
    knobs = strategies.with_mve(family, strategies.knobs_for(family, "default"), True)
    name, func, _ = strategies.build(shape, knobs)
    src = to_c({name: func})
    assert "trm_mve_" in src
    n = 60 if isinstance(shape, RMSNormShape) else 40
    cs = list(eltwise_cases(shape, np.random.default_rng(41), n))
    lines = run_on_qemu(board, src, generic_main(name, func, [args + [want] for args, want in cs]), tmp_path)
    assert len(lines) == len(cs)
    for (_, want), got_hex in zip(cs, lines):
        got = np.array([np.int32(np.uint32(int(h, 16))) for h in got_hex]).reshape(want.shape)
        np.testing.assert_array_equal(got, want)
    assert sum(want.size for _, want in cs) >= 1000
