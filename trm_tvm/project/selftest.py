"""Kernel self-test on the device: one description per kernel op drives both sides.

For each op of project_templates/kernels/trm_kernels.h an `OpSpec` lists the C call's arguments in order: arrays the
device fills from the shared PRNG (trm_tvm.rpc.prng_*), request parameters, scalars, the output. From it
`c_table()` generates the firmware's wrapper table (gen/selftest_table.c) and `expected()` recomputes the output on
the host with the integer spec (trm_tvm.quant.spec), so a batch is checked by comparing one CRC-32.

Variants (ref, dsp, mve, tvm ...) of the `linear` ops are found in the build directory's headers; every symbol is
referenced weakly, so a kernel that is not linked shows up as absent instead of breaking the link. Adding a kernel
op = adding an OpSpec here; adding a variant of an existing op needs no change at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from trm_tvm import rpc

CTYPES = {"int8_t": np.int8, "uint8_t": np.uint8, "int16_t": np.int16, "int32_t": np.int32, "int64_t": np.int64}
RANGES = {"int8_t": (-128, 127), "uint8_t": (0, 255), "int16_t": (-32768, 32767)}
MAX_INPUTS = 8                                   # operands of one add


@dataclass(frozen=True)
class Arg:
    """One argument of the kernel call, in call order.

    kind: "in" array filled from the PRNG in [lo, hi]; "out" the output array; "param" a request parameter;
    "scalar" one PRNG value in [lo, hi]; "ptrs" a table of `count` pointers to consecutive rows of array `of`;
    "scratch" the variant's scratch buffer (NULL for ref)."""
    name: str
    kind: str
    ctype: str = "int32_t"
    size: str = ""           # C expression over the params (elements)
    lo: int = 0
    hi: int = 0
    of: str = ""
    count: str = ""


def arr(name, ctype, size, lo=None, hi=None) -> Arg:
    lo_, hi_ = RANGES.get(ctype, (0, 0))
    return Arg(name, "in", ctype, size, lo_ if lo is None else lo, hi_ if hi is None else hi)


@dataclass(frozen=True)
class OpSpec:
    op: str                                  # trm_<op>_<variant>, e.g. linear_s8
    params: tuple[str, ...]                  # request parameters, in order (at most 6)
    args: tuple[Arg, ...]
    oracle: Callable[[dict], np.ndarray]     # PRNG arrays + params -> expected output (the C output dtype)
    valid: str                               # C condition on the params (bounds the buffers)
    variants: bool = False                   # has per-back-end variants with a scratch function
    returns: str = ""                        # C type of a return value that is the output (argmax)
    example: tuple[int, ...] = ()            # params the tests and `session --self-test` use

    @property
    def out(self) -> Arg | None:
        return next((a for a in self.args if a.kind == "out"), None)


def _spec():
    from trm_tvm.quant import spec
    return spec


def _rq_args(n: str) -> tuple[Arg, Arg]:
    return arr("mult", "int32_t", n, 1 << 30, (1 << 31) - 1), arr("shift", "int32_t", n, 36, 44)


LINEAR_ARGS = ("tokens", "n_in", "n_out")
SMALL = "{0} > 0 && {0} <= 4096"

OPS = [
    OpSpec("linear_s8", LINEAR_ARGS,
           (arr("in", "int8_t", "tokens * n_in"), arr("w", "int8_t", "n_out * n_in"),
            arr("bias", "int32_t", "n_out", -(1 << 16), 1 << 16), *_rq_args("n_out"),
            Arg("out", "out", "int8_t", "tokens * n_out"), Arg("tokens", "param"), Arg("n_in", "param"),
            Arg("n_out", "param"), Arg("scratch", "scratch")),
           lambda a: _spec().linear_s8(a["in"].reshape(a["tokens"], a["n_in"]), a["w"].reshape(a["n_out"], a["n_in"]),
                                       a["bias"], a["mult"], a["shift"]),
           " && ".join(SMALL.format(p) for p in LINEAR_ARGS), variants=True, example=(5, 37, 11)),
    OpSpec("linear_s4", LINEAR_ARGS,
           (arr("in", "int8_t", "tokens * n_in"), arr("w", "uint8_t", "n_out * ((n_in + 1) / 2)"),
            arr("bias", "int32_t", "n_out", -(1 << 16), 1 << 16), *_rq_args("n_out"),
            Arg("out", "out", "int8_t", "tokens * n_out"), Arg("tokens", "param"), Arg("n_in", "param"),
            Arg("n_out", "param"), Arg("scratch", "scratch")),
           lambda a: _spec().linear_s4(a["in"].reshape(a["tokens"], a["n_in"]),
                                       a["w"].reshape(a["n_out"], (a["n_in"] + 1) // 2), a["n_in"], a["bias"],
                                       a["mult"], a["shift"]),
           " && ".join(SMALL.format(p) for p in LINEAR_ARGS) + " && n_in % 2 == 0", variants=True,
           example=(3, 40, 9)),
    OpSpec("head_s8", LINEAR_ARGS,
           (arr("in", "int8_t", "tokens * n_in"), arr("w", "int8_t", "n_out * n_in"),
            arr("bias", "int32_t", "n_out", -(1 << 16), 1 << 16), arr("mult", "int32_t", "n_out", 1 << 30, (1 << 31) - 1),
            arr("shift", "int32_t", "n_out", 30, 38), Arg("out", "out", "int16_t", "tokens * n_out"),
            Arg("tokens", "param"), Arg("n_in", "param"), Arg("n_out", "param")),
           lambda a: _spec().head_s8(a["in"].reshape(a["tokens"], a["n_in"]), a["w"].reshape(a["n_out"], a["n_in"]),
                                     a["bias"], a["mult"], a["shift"]),
           " && ".join(SMALL.format(p) for p in LINEAR_ARGS), example=(2, 24, 5)),
    OpSpec("add_s8", ("n_in", "len"),
           (Arg("ins", "ptrs", "int8_t", of="x", count="n_in"), arr("m", "int32_t", "n_in", 0, (1 << 15) - 1),
            Arg("n_in", "param"), Arg("s", "scalar", "int32_t", lo=14, hi=22), Arg("out", "out", "int8_t", "len"),
            Arg("len", "param")),
           lambda a: _spec().add_s8(list(a["x"].reshape(a["n_in"], a["len"])), a["m"], int(a["s"])),
           f"n_in > 0 && n_in <= {MAX_INPUTS} && len > 0 && len <= 65536", example=(3, 100)),
    OpSpec("add_s32", ("n_in", "len"),
           (Arg("ins", "ptrs", "int8_t", of="x", count="n_in"), arr("m", "int32_t", "n_in", 0, (1 << 15) - 1),
            Arg("n_in", "param"), Arg("out", "out", "int32_t", "len"), Arg("len", "param")),
           lambda a: _spec().add_s32(list(a["x"].reshape(a["n_in"], a["len"])), a["m"]).astype(np.int32),
           f"n_in > 0 && n_in <= {MAX_INPUTS} && len > 0 && len <= 65536", example=(2, 64)),
    OpSpec("mul_s8", ("len",),
           (arr("a", "int8_t", "len"), arr("b", "int8_t", "len"), Arg("mult", "scalar", lo=1 << 30, hi=(1 << 31) - 1),
            Arg("shift", "scalar", lo=36, hi=44), Arg("out", "out", "int8_t", "len"), Arg("len", "param")),
           lambda a: _spec().mul_s8(a["a"], a["b"], int(a["mult"]), int(a["shift"])),
           "len > 0 && len <= 65536", example=(77,)),
    OpSpec("lut_s8", ("len",),
           (arr("in", "int8_t", "len"), arr("table", "int8_t", "256"), Arg("out", "out", "int8_t", "len"),
            Arg("len", "param")),
           lambda a: _spec().lut_s8(a["in"], a["table"]), "len > 0 && len <= 65536", example=(300,)),
    OpSpec("rmsnorm_s32", ("tokens", "dim"),
           (arr("in", "int32_t", "tokens * dim", -(1 << 20), 1 << 20), Arg("eps", "scalar", "int64_t", lo=0, hi=4096),
            arr("mult", "int32_t", "dim", 1 << 30, (1 << 31) - 1), arr("shift", "int32_t", "dim", 36, 42),
            Arg("out", "out", "int8_t", "tokens * dim"), Arg("tokens", "param"), Arg("dim", "param")),
           lambda a: _spec().rmsnorm_s32(a["in"].reshape(a["tokens"], a["dim"]), int(a["eps"]), a["mult"],
                                         a["shift"]).astype(np.int8),
           "tokens > 0 && tokens <= 4096 && dim > 0 && dim <= 4096", example=(4, 48)),
    OpSpec("transpose_s8", ("rows", "cols"),
           (arr("in", "int8_t", "rows * cols"), Arg("out", "out", "int8_t", "rows * cols"), Arg("rows", "param"),
            Arg("cols", "param")),
           lambda a: _spec().transpose_s8(a["in"].reshape(a["rows"], a["cols"])),
           "rows > 0 && rows <= 4096 && cols > 0 && cols <= 4096", example=(7, 13)),
    OpSpec("mean_pool_s8", ("tokens", "dim"),
           (arr("in", "int8_t", "tokens * dim"), Arg("mult", "scalar", lo=1 << 30, hi=(1 << 31) - 1),
            Arg("shift", "scalar", lo=31, hi=36), Arg("out", "out", "int8_t", "dim"), Arg("tokens", "param"),
            Arg("dim", "param")),
           lambda a: _spec().mean_pool_s8(a["in"].reshape(a["tokens"], a["dim"]), int(a["mult"]), int(a["shift"])),
           "tokens > 0 && tokens <= 4096 && dim > 0 && dim <= 4096", example=(16, 32)),
    OpSpec("patch_s8", ("channels", "samples", "patch"),
           (arr("in", "int8_t", "channels * samples"), Arg("out", "out", "int8_t", "channels * samples"),
            Arg("channels", "param"), Arg("samples", "param"), Arg("patch", "param")),
           lambda a: _spec().patch_s8(a["in"].reshape(a["channels"], a["samples"]), a["patch"]),
           "channels > 0 && channels <= 64 && samples > 0 && samples <= 8192 && patch > 0 && samples % patch == 0",
           example=(2, 64, 16)),
    OpSpec("embed_s8", ("tokens", "dim", "vocab"),
           (arr("digits", "uint8_t", "tokens", 0, 0), arr("table", "int8_t", "vocab * dim"),
            Arg("out", "out", "int8_t", "tokens * dim"), Arg("tokens", "param"), Arg("dim", "param")),
           lambda a: _spec().embed_s8(a["digits"], a["table"].reshape(a["vocab"], a["dim"])),
           "tokens > 0 && tokens <= 4096 && dim > 0 && dim <= 4096 && vocab > 0 && vocab <= 256", example=(81, 16, 10)),
    OpSpec("argmax_s16", ("len",),
           (arr("x", "int16_t", "len", -40, 40), Arg("len", "param")),
           lambda a: np.array([_spec().argmax_s16(a["x"])], dtype=np.int32),
           "len > 0 && len <= 65536", returns="int", example=(50,)),
]
BY_OP = {s.op: s for s in OPS}


def _hi(spec: OpSpec, a: Arg) -> str:
    """The upper bound of an array's PRNG range; embed digits go up to vocab - 1."""
    return "vocab - 1" if spec.op == "embed_s8" and a.name == "digits" else str(a.hi)


# --------------------------------------------------------------------------------------------------- variants
def find_variants(header_dirs: list[Path]) -> list[str]:
    """Variants of the linear ops declared in the headers of a build directory: ref plus e.g. dsp, mve, tvm."""
    found = {"ref"}
    for d in header_dirs:
        for h in sorted(Path(d).rglob("*.h")):
            text = h.read_text(errors="replace")
            found |= set(re.findall(r"^\s*TRM_DECLARE_KERNELS\((\w+)\)", text, re.M))
            found |= set(re.findall(r"\btrm_linear_s[48]_([A-Za-z0-9]+)\s*\(", text))   # not *_scratch_bytes
    found.discard("variant")
    return sorted(found, key=lambda v: (v != "ref", v))


@dataclass(frozen=True)
class Entry:
    """One row of the device's self-test table."""
    name: str          # the kernel symbol, e.g. trm_linear_s8_dsp
    spec: OpSpec
    variant: str


def entries(variants: list[str]) -> list[Entry]:
    out = []
    for s in OPS:
        for v in (variants if s.variants else ["ref"]):
            out.append(Entry(f"trm_{s.op}_{v}", s, v))
    return out


# ------------------------------------------------------------------------------------------------ C generation
def _c_wrapper(e: Entry) -> str:
    s, fn = e.spec, e.name
    has_scratch = s.variants and e.variant != "ref"
    lines = [f"static int st_{fn[4:]}(trm_st_ctx_t *ctx, const int32_t *p, trm_st_result_t *res) {{",
             f"  if (!{fn}) return TRM_ST_ABSENT;"]
    lines += [f"  const int32_t {name} = p[{i}];" for i, name in enumerate(s.params)]
    lines.append(f"  if (!({s.valid})) return TRM_ST_TOO_BIG;")
    alloc, fill, call = [], [], []
    for a in s.args:
        if a.kind in ("in", "out"):
            alloc.append(f"  {a.ctype} *{a.name} = trm_st_alloc(ctx, (uint64_t)({a.size}) * sizeof({a.ctype}));")
            alloc.append(f"  if (!{a.name}) return TRM_ST_TOO_BIG;")
            call.append(a.name)
            if a.kind == "in":
                fill.append(f"  trm_st_fill(ctx, {a.name}, sizeof({a.ctype}), (uint32_t)({a.size}), {a.lo}, {_hi(s, a)});")
        elif a.kind == "ptrs":
            alloc.append(f"  int8_t *{a.of} = trm_st_alloc(ctx, (uint64_t)({a.count}) * len);")
            alloc.append(f"  if (!{a.of}) return TRM_ST_TOO_BIG;")
            alloc.append(f"  const {a.ctype} *{a.name}[{MAX_INPUTS}];")
            alloc.append(f"  for (int i = 0; i < {a.count}; i++) {a.name}[i] = {a.of} + (size_t)i * len;")
            fill.append(f"  trm_st_fill(ctx, {a.of}, 1, (uint32_t)({a.count} * len), -128, 127);")
            call.append(a.name)
        elif a.kind == "scalar":
            fill.append(f"  const {a.ctype} {a.name} = ({a.ctype})trm_st_scalar(ctx, {a.lo}, {a.hi});")
            call.append(a.name)
        elif a.kind == "param":
            call.append(a.name)
        elif a.kind == "scratch":
            if has_scratch:       # the scratch size function: per op (trm_linear_s8_dsp_...) or per variant
                alloc.append(f"  int (*scratch_bytes)(int, int, int) = {fn}_scratch_bytes ? {fn}_scratch_bytes : "
                             f"trm_linear_{e.variant}_scratch_bytes;")
                alloc.append("  void *scratch = 0;")
                alloc.append("  if (scratch_bytes) {")
                alloc.append("    scratch = trm_st_alloc(ctx, (uint64_t)scratch_bytes(tokens, n_in, n_out) + 1);")
                alloc.append("    if (!scratch) return TRM_ST_TOO_BIG;")
                alloc.append("  }")
                call.append("scratch")
            else:
                call.append("0")
    lines += alloc + fill
    lines.append("  uint64_t t0 = trm_counter_now();")
    if s.returns:
        lines.append(f"  static int32_t ret;")
        lines.append(f"  ret = (int32_t){fn}({', '.join(call)});")
    else:
        lines.append(f"  {fn}({', '.join(call)});")
    lines.append("  res->ticks = trm_counter_now() - t0;")
    out = s.out
    if s.returns:
        lines.append("  res->out = (const uint8_t *)&ret;")
        lines.append("  res->out_bytes = sizeof ret;")
    else:
        lines.append(f"  res->out = (const uint8_t *){out.name};")
        lines.append(f"  res->out_bytes = (uint32_t)({out.size}) * sizeof({out.ctype});")
    lines += ["  return TRM_ST_OK;", "}"]
    return "\n".join(lines)


def c_table(variants: list[str], kernel_header: str = "trm_kernels.h") -> str:
    ents = entries(variants)
    out = ["/* Generated by trm_tvm/project/selftest.py -- do not edit. Kernel self-test table (docs/session.md). */",
           "#include <stddef.h>", "#include <stdint.h>", f'#include "{kernel_header}"', '#include "trm_platform.h"',
           '#include "trm_selftest.h"', "",
           "/* Weak references: a kernel that is not linked into this firmware is NULL and reported absent. */"]
    for v in variants:
        if v != "ref":
            out.append(f"int trm_linear_{v}_scratch_bytes(int tokens, int n_in, int n_out) __attribute__((weak));")
    for e in ents:
        if e.variant != "ref" and e.spec.variants:
            out.append(f"int {e.name}_scratch_bytes(int tokens, int n_in, int n_out) __attribute__((weak));")
            out.append(f"void {e.name}(const int8_t *in, const {'uint8_t' if e.spec.op == 'linear_s4' else 'int8_t'}"
                       f" *w, const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out, int tokens,"
                       f" int n_in, int n_out, void *scratch);")
        out.append(f"#pragma weak {e.name}")
    out.append("")
    out += [_c_wrapper(e) + "\n" for e in ents]
    out.append("const trm_st_entry_t trm_selftests[] = {")
    out += [f'    {{"{e.name}", st_{e.name[4:]}}},' for e in ents]
    out += ["};", f"const uint32_t trm_selftest_count = {len(ents)};", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------- host oracle
def _eval(c_expr: str, env: dict) -> int:
    """A size expression of the spec (C integer arithmetic over the params) evaluated in Python."""
    return int(eval(c_expr.replace("/", "//"), {"__builtins__": {}}, env))


def draw(spec: OpSpec, params: list[int], seed: int) -> dict:
    """The arrays and scalars the device draws for one batch (batch seed `seed`), in the same order."""
    vals: dict = dict(zip(spec.params, params))
    env = dict(vals)
    ctr = 0
    for a in spec.args:
        if a.kind == "in":
            n = _eval(a.size, env)
            hi = env["vocab"] - 1 if spec.op == "embed_s8" and a.name == "digits" else a.hi
            vals[a.name] = rpc.prng_range(seed, ctr, n, a.lo, hi).astype(CTYPES[a.ctype])
            ctr += n
        elif a.kind == "ptrs":
            n = _eval(a.count, env) * env["len"]
            vals[a.of] = rpc.prng_range(seed, ctr, n, -128, 127).astype(np.int8)
            ctr += n
        elif a.kind == "scalar":
            vals[a.name] = int(rpc.prng_range(seed, ctr, 1, a.lo, a.hi)[0])
            ctr += 1
    return vals


def expected(spec: OpSpec, params: list[int], seed: int) -> np.ndarray:
    out = spec.oracle(draw(spec, params, seed))
    dtype = np.int32 if spec.returns else CTYPES[spec.out.ctype]
    return np.ascontiguousarray(out, dtype=dtype).ravel()


def output_crc(out: np.ndarray) -> int:
    """CRC-32 of an output as the device lays it out (little-endian)."""
    return rpc.crc32(out.astype(out.dtype.newbyteorder("<")).tobytes())


@dataclass
class BatchResult:
    batch: int
    ok: bool
    ticks: int
    mismatch: dict = field(default_factory=dict)


def run_selftest(client: "rpc.RpcClient", index: int, entry: Entry, params: list[int], seed: int, batches: int
                 ) -> list[BatchResult]:
    """Run `batches` seeded batches of one kernel on the device; fetch the full output only on a mismatch."""
    replies = client.self_test(index, batches, seed, params)
    results = []
    for b, (crc, ticks) in enumerate(replies):
        bseed = rpc.batch_seed(seed, b)
        want = expected(entry.spec, params, bseed)
        ok = crc == output_crc(want)
        r = BatchResult(b, ok, ticks)
        if not ok:
            raw = client.self_test_data(index, b, seed, params, want.nbytes)
            got = np.frombuffer(raw, dtype=want.dtype.newbyteorder("<"))
            bad = np.flatnonzero(got != want)
            r.mismatch = {"count": int(bad.size), "first_index": int(bad[0]) if bad.size else -1,
                          "got": int(got[bad[0]]) if bad.size else None,
                          "want": int(want[bad[0]]) if bad.size else None}
        results.append(r)
    return results

