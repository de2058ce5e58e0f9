"""What TVM 0.27's bundled LLVM (22) emits for GAP9-style inner loops (riscv32 + CORE-V extensions).

No emulator here runs CORE-V code, so this only reads the assembly (exact static data):
- `inner_loop`: a plain TIR int8 dot product. With +xcvmem the loads become post-increment `cv.lb`, but the product
  stays `mul` + `add` -- no `cv.mac`, no SIMD `cv.sdotsp`, no hardware loop.
- `simd_kernel_loop`: the per-core kernel of trm_tvm.gap9.tir_kernels (the SIMD form: `trm_cv_sdotsp4` per word in
  a 2x4 register block). LLVM 22 has no intrinsic for the CORE-V SIMD dot product (its CORE-V intrinsics cover
  ALU, bit manipulation, MAC and elw only; `llvm_has_intrinsic` checks), so the extern is mapped to the
  instruction itself as inline assembly in TVM's LLVM IR (`extern_to_inline_asm`) before LLVM compiles it: the
  loads, pointer updates, register allocation and loop around it are LLVM's.
`report()` puts the generated loop beside the frozen cycle model's assumption (trm_tvm.gap9.cycles, unchanged).
"""
from __future__ import annotations

import os
import re
import tempfile
from collections import Counter

COREV_MATTR = ["+m", "+c", "+xcvsimd", "+xcvmac", "+xcvmem", "+xcvalu"]
PLAIN_MATTR = ["+m", "+c"]
SDOTSP_INSTR = "cv.sdotsp.b"
SDOTSP_INTRINSIC = "llvm.riscv.cv.simd.sdotsp.b"     # the name an LLVM intrinsic for it would have (absent in 22)
PROBE_SHARE = (2, 48, 96)    # rows x n_in x channels: a core's token-split share of the ECG models' widest layer
SOURCE = "exact static: TVM 0.27 / LLVM 22 assembly for riscv32 " + ",".join(COREV_MATTR)


def _target(mattr: list[str]):
    import tvm

    return tvm.target.Target({"kind": "llvm", "mtriple": "riscv32-unknown-elf", "mattr": mattr})


def loop_ops(asm: str, containing: str | None = None) -> Counter:
    """Mnemonics of the smallest loop (a block that branches back to its own label) of `asm`, among those
    holding `containing` if given."""
    best = None
    for label in re.findall(r"^(\.LBB\d+_\d+):", asm, re.M):
        block = asm.split(label + ":", 1)[1]
        end = re.search(rf"\b(bne|blt|bltu|bge|bgeu|bnez|beq|beqz)\b[^\n]*{re.escape(label)}\b", block)
        if not end:
            continue
        ops = Counter(ln.split()[0] for ln in block[:end.end()].splitlines()
                      if ln.strip() and not ln.strip().startswith((".", "#")) and not ln.strip().endswith(":"))
        if (containing is None or ops[containing]) and (best is None or sum(ops.values()) < sum(best.values())):
            best = ops
    if best is None:
        raise RuntimeError(f"no loop{' with ' + containing if containing else ''} in the generated assembly")
    return best


def inner_loop(mattr: list[str], n_in: int = 64) -> Counter:
    """Instruction mnemonics of the innermost loop of a plain int8 dot product compiled for riscv32 with `mattr`."""
    import tvm
    from tvm import te

    a = te.placeholder((n_in,), "int8", name="a")
    w = te.placeholder((n_in,), "int8", name="w")
    k = te.reduce_axis((0, n_in), name="k")
    out = te.compute((1,), lambda _: te.sum(a[k].astype("int32") * w[k].astype("int32"), axis=k), name="out")
    func = te.create_prim_func([a, w, out]).with_attr("global_symbol", "dot")
    asm = tvm.tirx.build(tvm.IRModule({"dot": func}), target=_target(mattr)).inspect_source("asm")
    return loop_ops(asm.split("dot_compute_:", 1)[1])


def llvm_has_intrinsic(name: str) -> bool:
    import tvm

    return tvm.get_global_func("target.llvm_lookup_intrinsic_id")(name) != 0


def extern_to_inline_asm(ll: str) -> str:
    """Every `call i32 @trm_cv_sdotsp4(a, b, acc)` of TVM's LLVM IR becomes the instruction `cv.sdotsp.b acc, a, b`
    as inline assembly (the accumulator is tied to the result: "=r,r,r,0"); pure, so LLVM may still move it."""
    from trm_tvm.gap9.tir_kernels import SDOTSP4

    call = re.compile(rf"call i32 @{SDOTSP4}\(i32 ([^,]+), i32 ([^,]+), i32 ([^)]+)\)")
    out, n = call.subn(rf'call i32 asm "{SDOTSP_INSTR} $0, $1, $2", "=r,r,r,0"(i32 \1, i32 \2, i32 \3)', ll)
    if n == 0:
        raise ValueError(f"no call of {SDOTSP4} in the LLVM IR")
    return out


def simd_kernel_asm(rows: int, n_in: int, n_out: int, wbits: int = 8) -> str:
    """Assembly of the per-core kernel of trm_tvm.gap9.tir_kernels for riscv32 + CORE-V."""
    import tvm

    from trm_tvm.gap9 import tir_kernels

    if not tir_kernels.uses_simd(n_in, wbits):
        raise ValueError(f"n_in {n_in} has no SIMD form for {wbits}-bit weights")
    func = tir_kernels.share_func(rows, n_in, n_out, wbits).with_attr("global_symbol", "share")
    ll = tvm.tirx.build(tvm.IRModule({"share": func}), target=_target(COREV_MATTR)).inspect_source("ll")
    with tempfile.TemporaryDirectory() as d:   # the IR keeps TVM's target (triple, mattr) in its metadata
        path = os.path.join(d, "share.ll")
        with open(path, "w") as f:
            f.write(extern_to_inline_asm(ll))
        return tvm.get_global_func("ffi.Module.load_from_file.ll")(path, "ll").inspect_source("asm")


def simd_kernel_loop(wbits: int = 8, rows: int = PROBE_SHARE[0], n_in: int = PROBE_SHARE[1],
                     n_out: int = PROBE_SHARE[2]) -> Counter:
    """The inner (reduction) loop of that kernel: the smallest loop holding the SIMD dot product."""
    return loop_ops(simd_kernel_asm(rows, n_in, n_out, wbits), SDOTSP_INSTR)


def model_step_cycles(wbits: int = 8) -> tuple[int, int]:
    """(cycles, MACs) of one reduction step (one weight word: 4 int8 / 8 int4 lanes) of the frozen cycle model's
    register block (trm_tvm.gap9.cycles)."""
    from trm_tvm.gap9 import cycles

    loop, lanes = cycles.TRM_LOOP, 4 if wbits == 8 else 8
    bt, bo = loop.block_tokens, loop.block_out
    step = (cycles.matmul_core_cycles(bt, bo, 2 * lanes, wbits, loop)
            - cycles.matmul_core_cycles(bt, bo, lanes, wbits, loop))
    return step, lanes * bt * bo


def report() -> list[str]:
    """The probe's findings, each figure labelled (exact static data of the assembly, or the model's assumption)."""
    from trm_tvm.provenance import figure, fmt

    ops = lambda c: " ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(c.items()))  # noqa: E731
    plain, corev = inner_loop(PLAIN_MATTR), inner_loop(COREV_MATTR)
    lines = [
        f"plain int8 dot product, +m,+c: {ops(plain)} = {sum(plain.values())} instructions/MAC (exact static)",
        f"plain int8 dot product, +xcv*: {ops(corev)} = {sum(corev.values())} instructions/MAC (exact static)",
        f"LLVM 22 intrinsic {SDOTSP_INTRINSIC}: {'present' if llvm_has_intrinsic(SDOTSP_INTRINSIC) else 'absent'}"
        " (the extern is compiled as the inline instruction)",
    ]
    r, k, o = PROBE_SHARE
    for wbits in (8, 4):
        simd = simd_kernel_loop(wbits)
        n, macs = sum(simd.values()), 4 * simd[SDOTSP_INSTR]      # 4 lanes each (int4: of 16 x the weights)
        model_cycles, model_macs = model_step_cycles(wbits)
        assert macs == model_macs, (macs, model_macs)      # one step of the same 2x4 block
        per_mac = figure(round(n / macs, 3), "instructions/MAC", "measured", SOURCE)
        assumed = figure(round(model_cycles / macs, 3), "cycles/MAC", "modeled",
                         "trm_tvm/gap9/cycles.py TRM_LOOP (frozen)")
        lines += [f"TIR per-core kernel s{wbits} {r}x{k}x{o} (SIMD form), inner loop: {ops(simd)} = {n} instructions"
                  f" per {macs} MACs (exact static) -> {fmt(per_mac)}",
                  f"  cycle model v2, same block step: {model_cycles} cycles -> {fmt(assumed)} (post-increment loads,"
                  f" hardware loop{', 2-instruction unpack per weight word' if wbits == 4 else ''}); generated loop "
                  f"{n - model_cycles:+d} instructions ({n / model_cycles - 1:+.0%} at one instruction per cycle)"]
    return lines
