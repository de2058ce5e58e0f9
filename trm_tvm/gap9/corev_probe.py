"""What TVM 0.27's bundled LLVM emits for a GAP9-style inner loop (riscv32 + CORE-V extensions).

No emulator here runs CORE-V code, so this only reads the assembly: the innermost loop of a plain TIR int8 dot
product, its instructions per MAC, and which CORE-V instructions appear. docs/gap9.md records the result: with
+xcvmem the loads become post-increment `cv.lb`, but the product stays `mul` + `add` -- no `cv.mac`, no SIMD
`cv.sdotsp`, no hardware loop -- so the 4-lane dot products the cycle model assumes need explicit intrinsics.
"""
from __future__ import annotations

import re
from collections import Counter

COREV_MATTR = ["+m", "+c", "+xcvsimd", "+xcvmac", "+xcvmem", "+xcvalu"]
PLAIN_MATTR = ["+m", "+c"]


def inner_loop(mattr: list[str], n_in: int = 64) -> Counter:
    """Instruction mnemonics of the innermost loop of an int8 dot product compiled for riscv32 with `mattr`."""
    import tvm
    from tvm import te

    a = te.placeholder((n_in,), "int8", name="a")
    w = te.placeholder((n_in,), "int8", name="w")
    k = te.reduce_axis((0, n_in), name="k")
    out = te.compute((1,), lambda _: te.sum(a[k].astype("int32") * w[k].astype("int32"), axis=k), name="out")
    func = te.create_prim_func([a, w, out]).with_attr("global_symbol", "dot")
    target = tvm.target.Target({"kind": "llvm", "mtriple": "riscv32-unknown-elf", "mattr": mattr})
    asm = tvm.tirx.build(tvm.IRModule({"dot": func}), target=target).inspect_source("asm")
    body = asm.split("dot_compute_:", 1)[1]
    # the innermost loop: the block that branches back to its own label
    for label in re.findall(r"^(\.LBB\d+_\d+):", body, re.M):
        block = body.split(label + ":", 1)[1]
        end = re.search(rf"\b(bne|blt|bltu|bnez|beq)\b[^\n]*{re.escape(label)}\b", block)
        if end:
            lines = block[:end.end()].splitlines()
            ops = [ln.split()[0] for ln in lines if ln.strip() and not ln.strip().startswith((".", "#"))
                   and not ln.strip().endswith(":")]
            return Counter(ops)
    raise RuntimeError("no inner loop found in the generated assembly")
