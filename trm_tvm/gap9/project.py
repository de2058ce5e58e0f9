"""Generate the GAP9 PMSIS project from a quantised-model artifact, and check its output against the golden model.

The project (docs/gap9.md):
    Makefile                      GAP SDK build (pmsis_rules.mk)
    src/main.c, trm_gap9_exec.c   fabric controller: self-check loop / RPC, recursion, one cluster task per call
    src/trm_gap9.h                runtime interface
    src/trm_gap9_model.[ch]       generated: constants in L2, activations in L2, the prologue / net / heads sections
    src/trm_gap9_inputs.c         generated: the self-check inputs
    kernels/                      cluster kernels (trm_linear_cl.c) + the reference kernels for the other ops
    plan.json                     per-layer L1 tiling, L1/L2 use

Linear layers, RMSNorm, adds, mul, LUT and transposes run cluster-parallel through L1 with the cluster DMA
(trm_tvm.gap9.tiling plans every tile under the L1 budget); the small prologue/heads ops (patch, embed, pooling,
heads) run on the cluster master with the reference kernels.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np

from trm_tvm import rpc
from trm_tvm.errors import UserError, atomic_write_text
from trm_tvm.gap9 import functional
from trm_tvm.gap9.board import Gap9Board, load_gap9
from trm_tvm.gap9.codegen import c_array
from trm_tvm.gap9.tiling import (LinearTiling, RowsTiling, TransposeTiling, pack_linear, plan_linear, plan_rows,
                                 plan_transpose)
from trm_tvm.jsonio import write_json
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.golden import Golden

APP = functional.TEMPLATE / "app"
CORTEX_M_SRC = functional.REPO / "project_templates" / "cortex_m" / "src"
RPC_APP_FILES = ("trm_platform.h", "trm_model.h", "trm_platform_gap9.c", "trm_rpc_server_gap9.c", "selftest_table_gap9.c")
CORTEX_M_RPC_FILES = ("rpc_server.c", "selftest.c", "trm_selftest.h")
COUNTER_KIND_MCYCLE = 2          # READ_STATS counter kind of the GAP9 builds (0/1 are the Cortex-M counters)
CTYPE = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t"}
STATES = ("x", "y", "z")
INT32_MAX = 2 ** 31 - 1


def cname(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


class _NetEmitter:
    """Turns the artifact's node lists into the C of the three cluster sections (one small method per op)."""

    def __init__(self, art: Artifact, board: Gap9Board, linear_overrides: dict[str, LinearTiling] | None = None,
                 tir_kernels: bool = False):
        self.art, self.board = art, board
        self.tir_kernels = tir_kernels                  # token-split layers compute with trm_tvm.gap9.tir_kernels
        self.overrides = linear_overrides or {}
        self.packed: dict[str, np.ndarray] = {}        # arrays only linear layers read: packed weight tiles, int4
                                                        # weights in the CORE-V word layout (tir_kernels)
        self.packed_away: set[str] = set()              # tensors only those arrays now carry
        self.acts = art.header["activations"]
        self.plans: dict[str, LinearTiling | RowsTiling | TransposeTiling] = {}

    # -- operands ----------------------------------------------------------------------------------------------------
    def buf(self, name: str) -> str:
        if name in STATES:
            return f"trm_state_{name}"
        if name in ("input", "logits", "q"):
            return f"trm_{name}"
        if name in self.acts:
            return f"a_{cname(name)}"
        return f"t_{cname(name)}"                      # a constant tensor

    def shape(self, name: str) -> tuple[int, ...]:
        if name in STATES:
            return (self.art.dims.tokens, self.art.dims.hidden)
        if name == "input":
            return tuple(self.art.header["io"]["input_shape"])
        if name in self.acts:
            return tuple(self.acts[name]["shape"])
        return tuple(self.art[name].shape)

    def size(self, name: str) -> int:
        return math.prod(self.shape(name))

    def out(self, node: dict) -> str:
        return "out_state" if node["output"] == "out" else self.buf(node["output"])

    # -- ops ---------------------------------------------------------------------------------------------------------
    def op_linear(self, node: dict) -> str:
        from trm_tvm.gap9 import tir_kernels as tk     # (imports TVM: only when a project has linear layers)

        src = node["inputs"][0]
        rows = self.size(src) // node["n_in"]
        plan = self.overrides.get(node["name"]) or plan_linear(rows, node["n_in"], node["n_out"], node["bits"],
                                                               self.board.l1_budget, self.board.workers)
        if ((plan.tokens, plan.n_in, plan.n_out, plan.wbits) != (rows, node["n_in"], node["n_out"], node["bits"])
                or plan.l1_bytes > self.board.l1_budget or not plan.dma_ok()):
            raise UserError(f"schedule for {node['name']} does not match the layer or does not fit L1 "
                            f"({plan.l1_bytes} B of {self.board.l1_budget} B)", "re-run the GAP9 tuner for this artifact")
        self.plans[node["name"]] = plan
        fields = {"tokens": rows, "n_in": node["n_in"], "n_out": node["n_out"], "wbits": node["bits"],
                  **plan.c_args()}
        if self.tir_kernels:
            fields["share"] = tk.dispatcher_name(plan.n_in, plan.wbits)
        init = ", ".join(f".{k} = {v}" for k, v in fields.items())
        w, wname = self.art[node["weight"]], self.buf(node["weight"])
        relaid = self.tir_kernels and tk.in_word_layout(plan.n_in, plan.wbits)
        if relaid:            # the generated kernel reads int4 weights in the CORE-V word layout
            w, wname = tk.s4_word_layout(w, plan.n_in), f"t_cv_{cname(node['weight'])}"
        if plan.packed:       # one contiguous block per output tile: weights, bias, mult, shift
            name = f"t_pk_{cname(node['name'])}"
            bias = self.art[node["bias"]] if node.get("bias") else None
            self.packed[name] = pack_linear(plan, w, bias, self.art[node["mult"]], self.art[node["shift"]])
            self.packed_away.update(n for n in (node["weight"], node.get("bias"), node["mult"], node["shift"]) if n)
            operands = f".packed = {name}"
        else:
            if relaid:
                self.packed[wname] = w
                self.packed_away.add(node["weight"])
            bias = self.buf(node["bias"]) if node.get("bias") else "t_zero_bias"
            operands = (f".w = {wname}, .bias = {bias}, .mult = {self.buf(node['mult'])}, "
                        f".shift = {self.buf(node['shift'])}")
        return (f"  {{ static const trm_linear_cl_args_t a = {{.in = {self.buf(src)}, {operands}, "
                f".out = {self.out(node)}, {init}}};\n    check(trm_linear_cl(&a)); }}\n")

    def op_head(self, node: dict) -> str:
        src = node["inputs"][0]
        rows = self.size(src) // node["n_in"]
        bias = self.buf(node["bias"]) if node.get("bias") else "t_zero_bias"
        return (f"  trm_head_s8_ref({self.buf(src)}, {self.buf(node['weight'])}, {bias}, {self.buf(node['mult'])}, "
                f"{self.buf(node['shift'])}, {self.out(node)}, {rows}, {node['n_in']}, {node['n_out']});\n")

    # -- row-parallel ops (trm_rows_cl): rows split over the cores, each through its own L1 slice ------------------
    def _rows_plan(self, node: dict, op: str, src: str, n_in: int) -> tuple[int, int, int]:
        shape = self.shape(src)
        rows, cols = math.prod(shape[:-1]), shape[-1]
        plan = plan_rows(op, rows, cols, n_in, self.board.l1_budget, self.board.workers)
        self.plans[node["name"]] = plan
        return rows, cols, plan.chunk_rows

    def _rows_static(self, node: dict, op: str, ins: list[str], fields: str) -> str:
        if len({self.size(s) for s in ins}) > 1:
            raise UserError(f"node {node['name']}: {op} of differently shaped inputs is not supported on GAP9",
                            "report this artifact")
        src = ins[0] if op != "rmsnorm" else node["inputs"][0]
        rows, cols, chunk = self._rows_plan(node, op, src, len(ins))
        operands = "" if op == "rmsnorm" else f".in = {{{', '.join(self.buf(x) for x in ins)}}}, .n_in = {len(ins)}, "
        return (f"  {{ static const trm_rows_cl_args_t a = {{.op = TRM_ROWS_{op.upper()}, .rows = {rows}, "
                f".cols = {cols}, {operands}{fields}.out = {self.out(node)}, .chunk_rows = {chunk}}};\n"
                f"    check(trm_rows_cl(&a)); }}\n")

    def op_add_s8(self, node: dict) -> str:
        if node.get("per_call"):      # operands, multipliers and shift come from the schedule call
            rows, cols, chunk = self._rows_plan(node, "add_s8", "x", 3)
            return (f"  {{ trm_rows_cl_args_t a = {{.op = TRM_ROWS_ADD_S8, .rows = {rows}, .cols = {cols}, "
                    f".n_in = c->n_in, .s = c->in_shift, .out = {self.out(node)}, .chunk_rows = {chunk}}};\n"
                    "    for (int i = 0; i < c->n_in; i++) a.in[i] = state(c->in[i]), a.m[i] = c->in_mult[i];\n"
                    "    check(trm_rows_cl(&a)); }\n")
        mult = ", ".join(str(int(m)) for m in node["mult"])
        return self._rows_static(node, "add_s8", node["inputs"], f".m = {{{mult}}}, .s = {int(node['shift'])}, ")

    def op_add_s32(self, node: dict) -> str:
        mult = ", ".join(str(int(m)) for m in node["mult"])
        return self._rows_static(node, "add_s32", node["inputs"], f".m = {{{mult}}}, ")

    def op_mul(self, node: dict) -> str:
        return self._rows_static(node, "mul", node["inputs"], f".m = {{{int(node['mult'])}}}, .s = {int(node['shift'])}, ")

    def op_lut(self, node: dict) -> str:
        return self._rows_static(node, "lut", node["inputs"], f".table = {self.buf(node['table'])}, ")

    def op_rmsnorm(self, node: dict) -> str:
        src = node["inputs"][0]
        if node.get("per_call"):      # the output multipliers of the call's state scale
            rows, cols, chunk = self._rows_plan(node, "rmsnorm", src, 0)
            return (f"  {{ trm_rows_cl_args_t a = {{.op = TRM_ROWS_RMSNORM, .rows = {rows}, .cols = {cols}, "
                    f".in32 = {self.buf(src)}, .eps = {int(node['eps'])}LL, .mult = c->out_mult, "
                    f".shift = c->out_shift, .out = {self.out(node)}, .chunk_rows = {chunk}}};\n"
                    "    check(trm_rows_cl(&a)); }\n")
        return self._rows_static(node, "rmsnorm", [], f".in32 = {self.buf(src)}, .eps = {int(node['eps'])}LL, "
                                 f".mult = {self.buf(node['mult'])}, .shift = {self.buf(node['shift'])}, ")

    def op_transpose(self, node: dict) -> str:
        src = node["inputs"][0]
        rows, cols = self.shape(src)
        plan = plan_transpose(rows, cols, self.board.l1_budget, self.board.workers)
        self.plans[node["name"]] = plan
        return (f"  {{ static const trm_transpose_cl_args_t a = {{.in = {self.buf(src)}, .out = {self.out(node)}, "
                f".rows = {rows}, .cols = {cols}, .chunk_cols = {plan.chunk_cols}}};\n"
                "    check(trm_transpose_cl(&a)); }\n")

    def op_mean_pool(self, node: dict) -> str:
        src = node["inputs"][0]
        tokens, dim = self.shape(src)
        return (f"  trm_mean_pool_s8_ref({self.buf(src)}, {int(node['mult'])}, {int(node['shift'])}, "
                f"{self.out(node)}, {tokens}, {dim});\n")

    def op_patch(self, node: dict) -> str:
        return (f"  trm_patch_s8_ref({self.buf(node['inputs'][0])}, {self.out(node)}, {node['channels']}, "
                f"{node['samples']}, {node['patch']});\n")

    def op_embed(self, node: dict) -> str:
        tokens, dim = self.shape(node["output"])
        return (f"  trm_embed_s8_ref({self.buf(node['inputs'][0])}, {self.buf(node['table'])}, {self.out(node)}, "
                f"{tokens}, {dim});\n")

    def section(self, name: str) -> str:
        return "".join(getattr(self, f"op_{node['op']}")(node) for node in self.art.graph[name])


def _check_supported(art: Artifact) -> None:
    if not art.on_device:
        raise UserError(f"artifact precision {art.header['precision']} (act_bits {art.numerics['act_bits']}, "
                        f"state_bits {art.numerics['state_bits']}) is study-only", "use a W8A8 / W4A8 artifact")


def _constants(art: Artifact, used: set[str]) -> tuple[str, int]:
    text, nbytes = [], 0
    for name, meta in art.header["tensors"].items():
        if meta["kind"] == "study" or name not in used:
            continue
        arr = art[name]
        text.append(c_array(f"t_{cname(name)}", arr, "PI_L2"))
        nbytes += arr.nbytes
    return "".join(text), nbytes


def _used_tensors(art: Artifact) -> set[str]:
    used = {"y_init", "z_init"}
    for section in ("prologue", "net", "heads"):
        for node in art.graph[section]:
            used.update(s for s in node.get("inputs", []) if isinstance(s, str))
            used.update(node[k] for k in ("weight", "bias", "mult", "shift", "table") if isinstance(node.get(k), str))
    for call in art.calls:
        used.update((call["out_mult"], call["out_shift"]))
    return used & set(art.header["tensors"])


def _calls_table(art: Artifact) -> str:
    rows = []
    for c in art.calls:
        ins = ", ".join(str(STATES.index(s)) for s in c["inputs"])
        mult = ", ".join(str(int(m)) for m in c["in_mult"])
        rows.append(f"  {{{STATES.index(c['update'])}, {len(c['inputs'])}, {{{ins}}}, {{{mult}}}, {int(c['in_shift'])}, "
                    f"t_{cname(c['out_mult'])}, t_{cname(c['out_shift'])}}},")
    return "\n".join(rows)


def _activations(art: Artifact) -> tuple[str, int]:
    lines, nbytes = [], 0
    for name, meta in art.header["activations"].items():
        if name in ("x", "out", "logits", "q"):
            continue
        n = math.prod(meta["shape"])
        lines.append(f"PI_L2 static {CTYPE[meta['dtype']]} a_{cname(name)}[{n}];")
        nbytes += n * np.dtype(meta["dtype"]).itemsize
    return "\n".join(lines) + "\n", nbytes


def _model_h(art: Artifact, n_selfcheck: int, q_thr: int) -> str:
    d, io = art.dims, art.header["io"]
    vals = {"TRM_TOKENS": d.tokens, "TRM_HIDDEN": d.hidden, "TRM_STATE_LEN": d.tokens * d.hidden,
            "TRM_INPUT_BYTES": math.prod(io["input_shape"]), "TRM_OUTPUT_LEN": math.prod(io["output_shape"]),
            "TRM_PER_TOKEN": int(io["per_token"]), "TRM_N_CALLS": len(art.calls), "TRM_N_SUP": art.schedule["N_sup"],
            "TRM_Q_THRESHOLD": q_thr, "TRM_SELFCHECK_N": n_selfcheck}
    body = "".join(f"#define {k} {v}\n" for k, v in vals.items())
    ctype = "uint8_t" if io["input_dtype"] == "uint8" else "int8_t"
    return (f"/* generated by trm_tvm/gap9/project.py from artifact precision {art.header['precision']} */\n"
            f"#ifndef TRM_GAP9_MODEL_H\n#define TRM_GAP9_MODEL_H\n{body}#define TRM_INPUT_CTYPE {ctype}\n#endif\n")


def _model_c(art: Artifact, em: _NetEmitter) -> tuple[str, dict[str, int]]:
    prologue, net, heads = em.section("prologue"), em.section("net"), em.section("heads")
    consts, const_bytes = _constants(art, _used_tensors(art) - em.packed_away)
    for name, arr in em.packed.items():
        consts += c_array(name, arr, "PI_L2")
        const_bytes += arr.nbytes
    acts, act_bytes = _activations(art)
    max_out = max([n["n_out"] for s in ("prologue", "net", "heads") for n in art.graph[s] if "n_out" in n] + [1])
    io = art.header["io"]
    c = f"""/* generated by trm_tvm/gap9/project.py: constants and activations in L2, the three cluster sections. */
#include <stdint.h>

#include "trm_gap9.h"
#include "trm_gap9_tir.h"
#include "trm_kernels.h"
#include "trm_linear_cl.h"
#include "trm_rows_cl.h"

{consts}PI_L2 const int32_t t_zero_bias[{max_out}];
const int8_t trm_y_init[TRM_HIDDEN] = {{{", ".join(str(int(v)) for v in art["y_init"])}}};
const int8_t trm_z_init[TRM_HIDDEN] = {{{", ".join(str(int(v)) for v in art["z_init"])}}};

PI_L2 TRM_INPUT_CTYPE trm_input[TRM_INPUT_BYTES];
PI_L2 int8_t trm_state_x[TRM_STATE_LEN], trm_state_y[TRM_STATE_LEN], trm_state_z[TRM_STATE_LEN];
PI_L2 int16_t trm_logits[TRM_OUTPUT_LEN], trm_q[1];
{acts}volatile int trm_gap9_error;

typedef struct {{
  int update, n_in, in[3];
  int32_t in_mult[3], in_shift;
  const int32_t *out_mult, *out_shift;
}} trm_call_t;
static const trm_call_t calls[TRM_N_CALLS] = {{
{_calls_table(art)}
}};

static int8_t *state(int i) {{ return i == 0 ? trm_state_x : i == 1 ? trm_state_y : trm_state_z; }}
static void check(int status) {{
  if (status && !trm_gap9_error) trm_gap9_error = status;
}}

void trm_gap9_prologue(void) {{
{prologue}}}

void trm_gap9_net(int call) {{
  const trm_call_t *c = &calls[call];
  int8_t *out_state = state(c->update);
{net}}}

void trm_gap9_heads(void) {{
{heads}}}
"""
    input_bytes = math.prod(io["input_shape"])
    l2 = {"constants": const_bytes + 4 * max_out + 2 * art.dims.hidden, "activations": act_bytes,
          "states": 3 * art.dims.tokens * art.dims.hidden, "io": input_bytes + 2 * (math.prod(io["output_shape"]) + 1)}
    return c, l2


def _inter_byte_timeout_ms() -> int:
    """The shared protocol's inter-byte timeout for an emulated board (trm_tvm.rpc; older versions: one value)."""
    per_kind = getattr(rpc, "inter_byte_timeout_ms", None)
    return per_kind(True) if per_kind else rpc.INTER_BYTE_TIMEOUT_MS


def _config_h(art: Artifact) -> str:
    """The board facts the shared RPC server reads (trm_config.h of the Cortex-M template, GAP9 values)."""
    io = art.header["io"]
    info = "".join(f"{k}={v}\n" for k, v in [
        ("board", "gap9"), ("precision", art.header["precision"]), ("kernels", "gap9-cluster"),
        ("counter", "mcycle (QEMU virt) / FC perf counter (GAP9)"), ("input_bytes", math.prod(io["input_shape"])),
        ("output_len", math.prod(io["output_shape"])), ("phases", "prologue,net,heads")])
    defs = {"TRM_BOARD_NAME": '"gap9"', "TRM_COUNTER_KIND": COUNTER_KIND_MCYCLE,
            "TRM_COUNTER_HZ": "1000000000u", "TRM_UART_BAUD": "115200u", "TRM_CODE_ORIGIN": "0x80000000u",
            "TRM_DATA_ORIGIN": "0x80000000u", "TRM_PHASE_COUNT": 3, "TRM_SELFTEST_BYTES": 256,
            "TRM_INTER_BYTE_TIMEOUT_MS": _inter_byte_timeout_ms(),
            "TRM_INFO_TEXT": json.dumps(info)}
    body = "".join(f"#define {k} {v}\n" for k, v in defs.items())
    return f"/* generated by trm_tvm/gap9/project.py */\n#ifndef TRM_CONFIG_H\n#define TRM_CONFIG_H\n{body}#endif\n"


def _inputs_c(art: Artifact, inputs: np.ndarray) -> str:
    ctype = "uint8_t" if art.header["io"]["input_dtype"] == "uint8" else "int8_t"
    flat = inputs.reshape(inputs.shape[0], -1)
    rows = ",\n".join("  {" + ", ".join(str(int(v)) for v in row) + "}" for row in flat)
    return (f'#include <stdint.h>\n#include "trm_gap9_model.h"\n'
            f"const {ctype} trm_selfcheck_inputs[TRM_SELFCHECK_N][TRM_INPUT_BYTES] = {{\n{rows}\n}};\n")


def generate_project(art: Artifact, out_dir: Path, inputs: np.ndarray, board: Gap9Board | None = None,
                     q_threshold: int | None = None, linear_overrides: dict[str, LinearTiling] | None = None,
                     tir_kernels: bool = False) -> dict:
    """Write the project; returns plan.json's content (tilings, L1 peak, L2 use). Refuses models over L2.
    `q_threshold`: the halting threshold of the self-check's H runs (default: the artifact's).
    `tir_kernels`: the linear layers' per-core compute is kernels generated from the TIR linear strategy
    (src/trm_gap9_tir.[ch], trm_tvm.gap9.tir_kernels); otherwise the hand-written loop of trm_linear_cl.c."""
    q_thr = int(art.header["halting"]["q_thr"]) if q_threshold is None else int(q_threshold)
    _check_supported(art)
    board = board or load_gap9()
    out_dir = Path(out_dir)
    em = _NetEmitter(art, board, linear_overrides, tir_kernels)
    model_c, l2 = _model_c(art, em)
    l2_total = sum(l2.values())
    if l2_total > board.l2_budget:
        raise UserError(f"model needs {l2_total} B of GAP9 L2 ({l2}), the budget is {board.l2_budget} B",
                        "L3 placement is not implemented yet: use a smaller model (hidden, expansion, layers)")
    src, kernels = out_dir / "src", out_dir / "kernels"
    src.mkdir(parents=True, exist_ok=True)
    kernels.mkdir(parents=True, exist_ok=True)
    for f in ("main.c", "trm_gap9_exec.c", "trm_gap9.h", *RPC_APP_FILES):
        shutil.copyfile(APP / f, src / f)
    for f in CORTEX_M_RPC_FILES:                   # the shared RPC server, unchanged
        shutil.copyfile(CORTEX_M_SRC / f, src / f)
    atomic_write_text(src / "trm_rpc.h", rpc.c_header())
    atomic_write_text(src / "trm_config.h", _config_h(art))
    shutil.copyfile(APP / "Makefile", out_dir / "Makefile")
    for f in ("trm_linear_cl.c", "trm_linear_cl.h", "trm_rows_cl.c", "trm_rows_cl.h", "trm_cl.h", "trm_corev.h"):
        shutil.copyfile(functional.TEMPLATE / "kernels" / f, kernels / f)
    shutil.copyfile(functional.KERNELS_COMMON / "trm_kernels.h", kernels / "trm_kernels.h")
    shutil.copyfile(functional.KERNELS_COMMON / "reference" / "trm_kernels_ref.c", kernels / "trm_kernels_ref.c")
    atomic_write_text(src / "trm_gap9_model.h", _model_h(art, len(inputs), q_thr))
    atomic_write_text(src / "trm_gap9_model.c", model_c)
    atomic_write_text(src / "trm_gap9_inputs.c", _inputs_c(art, inputs))
    from trm_tvm.gap9 import tir_kernels as tk
    tir_c, tir_h = tk.source([p for p in em.plans.values() if isinstance(p, LinearTiling)] if tir_kernels else [],
                             board.workers)
    atomic_write_text(src / "trm_gap9_tir.c", tir_c)
    atomic_write_text(src / "trm_gap9_tir.h", tir_h)
    plan = {"schema": "trm-tvm-gap9-plan", "version": 1, "precision": art.header["precision"],
            "linear_compute": "tir" if tir_kernels else "hand-written",
            "q_threshold": q_thr, "selfcheck_inputs": len(inputs), "l1_budget": board.l1_budget, "l2_budget": board.l2_budget, "l2_bytes": l2, "l2_total": l2_total,
            "l1_peak": max([p.l1_bytes for p in em.plans.values()] + [0]),
            "linear": {n: {**asdict(p), "l1_bytes": p.l1_bytes, "n_tiles": p.n_tiles,
                           "per_core": tk.per_core_form(p.n_in, p.wbits) if tir_kernels else "hand-written"}
                       for n, p in em.plans.items() if isinstance(p, LinearTiling)},
            "rows": {n: {**asdict(p), "l1_bytes": p.l1_bytes} for n, p in em.plans.items() if isinstance(p, RowsTiling)},
            "transpose": {n: {**asdict(p), "l1_bytes": p.l1_bytes}
                          for n, p in em.plans.items() if isinstance(p, TransposeTiling)}}
    write_json(out_dir / "plan.json", plan)
    return plan


def plans_from_json(plan: dict) -> dict:
    """The tilings of plan.json as objects (what the cycle model reads)."""
    kinds = {"linear": LinearTiling, "rows": RowsTiling, "transpose": TransposeTiling}
    out = {}
    for key, cls in kinds.items():
        fields = cls.__dataclass_fields__
        for name, p in plan.get(key, {}).items():
            out[name] = cls(**{k: v for k, v in p.items() if k in fields})
    return out


# -- building and checking ------------------------------------------------------------------------------------------
def project_sources(out_dir: Path, rpc_server: bool = False) -> list[Path]:
    src, k = Path(out_dir) / "src", Path(out_dir) / "kernels"
    files = [src / "main.c", src / "trm_gap9_exec.c", src / "trm_gap9_model.c", src / "trm_gap9_inputs.c",
             src / "trm_gap9_tir.c",
             k / "trm_linear_cl.c", k / "trm_rows_cl.c", k / "trm_kernels_ref.c"]
    if rpc_server:
        files += [src / "trm_platform_gap9.c", src / "trm_rpc_server_gap9.c", src / "selftest.c",
                  src / "selftest_table_gap9.c"]
    return files


def syntax_check(out_dir: Path) -> None:
    """`-fsyntax-only` of every project source, self-check and RPC builds, against our PMSIS prototypes (no
    compat layer: the SDK view)."""
    functional.require_toolchain()
    out_dir = Path(out_dir)
    for f, rpc_server in [(f, False) for f in project_sources(out_dir)] + [
            (f, True) for f in project_sources(out_dir, True)]:
        cmd = [functional.CC, "-march=rv32imc_zicsr", "-mabi=ilp32", "--specs=picolibc.specs", "-std=gnu11",
               "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-DTRM_GAP9_SDK",
               "-DTRM_CV_DECLARE_BUILTINS",  # no PULP GCC here: the builtins' prototypes (trm_corev.h)
               *(["-DTRM_GAP9_RPC"] if rpc_server else []),
               f"-I{functional.TEMPLATE / 'pmsis'}", f"-I{out_dir / 'src'}", f"-I{out_dir / 'kernels'}", str(f)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"syntax check failed for {f}:\n{proc.stderr}")


def build_functional(out_dir: Path, checks: int = 1, sequential: bool = False, rpc_server: bool = False) -> Path:
    out_dir = Path(out_dir)
    defs = {"TRM_COMPAT_CHECKS": checks, "TRM_COMPAT_SEQUENTIAL": int(sequential)}
    if rpc_server:
        defs["TRM_GAP9_RPC"] = 1
    name = "fw_rpc.elf" if rpc_server else "fw.elf"
    return functional.build(out_dir / "build" / name, project_sources(out_dir, rpc_server),
                            [out_dir / "src", out_dir / "kernels"], defs)


def parse_log(text: str) -> dict:
    runs, phases, end = {}, {}, None
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["R"] and len(parts) == 7:
            i, mode, steps, q, pred = int(parts[1]), parts[2], int(parts[3]), int(parts[4]), int(parts[5])
            logits = np.frombuffer(bytes.fromhex(parts[6]), dtype="<i2")
            runs[(i, mode)] = {"steps": steps, "q": q, "pred": pred, "logits": logits}
        elif parts[:1] == ["P"] and len(parts) == 4:
            phases[int(parts[1])] = {"tasks": int(parts[2]), "cycles": int(parts[3])}
        elif parts[:1] == ["END"]:
            end = int(parts[1])
    return {"runs": runs, "phases": phases, "end": end}


def compare_with_golden(art: Artifact, inputs: np.ndarray, log: dict, q_threshold: int) -> dict:
    """0-LSB comparison of every run (fixed compute, and halting at `q_threshold`) with the golden model:
    steps, q of the stopping step, logits and prediction. Returns run and mismatch counts."""
    g = Golden(art)
    thr = {"F": INT32_MAX, "H": int(q_threshold)}
    result = {"inputs": len(inputs), "runs": 0, "mismatches": 0, "first_mismatch": None}
    for mode, q_thr in thr.items():
        ref = g.infer(inputs, q_thr=q_thr)
        for i in range(len(inputs)):
            got = log["runs"].get((i, mode))
            k = int(ref.steps[i])
            want = {"steps": k, "q": int(ref.q[i, k - 1]), "logits": ref.logits[i].reshape(-1).astype(np.int16)}
            ok = (got is not None and got["steps"] == want["steps"] and got["q"] == want["q"]
                  and np.array_equal(got["logits"], want["logits"])
                  and (art.header["io"]["per_token"] or got["pred"] == int(ref.pred[i])))
            result["runs"] += 1
            if not ok:
                result["mismatches"] += 1
                if result["first_mismatch"] is None:
                    result["first_mismatch"] = {"input": i, "mode": mode, "got": None if got is None else
                                                {k2: (v.tolist() if isinstance(v, np.ndarray) else v) for k2, v in got.items()},
                                                "want": {k2: (v.tolist() if isinstance(v, np.ndarray) else v) for k2, v in want.items()}}
    return result


def run_over_rpc(out_dir: Path, inputs: np.ndarray, runs: list[tuple[int, int]]) -> dict:
    """Build the RPC firmware, start it on 9 QEMU harts with its UART on a socket, and for every input and every
    (q_threshold, max_steps) in `runs` do LOAD_INPUT, RUN, READ_OUTPUT with the shared client (trm_tvm.rpc).
    Returns {(input, run): {"status", "steps", "pred", "q", "logits"}} in parse_log's shape (mode = run index)."""
    import struct

    from trm_tvm.project import close_transport, open_transport

    out_dir = Path(out_dir)
    elf = build_functional(out_dir, rpc_server=True)
    device = functional.start_with_uart_socket(elf, out_dir / "build" / "qemu_rpc.log")
    port = None
    results = {}
    try:
        port = open_transport(device)
        client = rpc.RpcClient(port, timeout=20.0)
        flat, n_out = inputs.reshape(len(inputs), -1), output_len(out_dir)
        for i, x in enumerate(flat):
            for off in range(0, len(x), 512):
                client.request("LOAD_INPUT", struct.pack("<I", off) + x[off:off + 512].tobytes())
            for r, (q_thr, max_steps) in enumerate(runs):
                reply = client.request("RUN", struct.pack("<iBB", q_thr, max_steps, 0))
                status, steps, pred, q, _ = struct.unpack("<iBxHhQ", reply)
                raw = client.request("READ_OUTPUT", struct.pack("<HH", 0, n_out))
                results[(i, r)] = {"status": status, "steps": steps, "pred": pred, "q": q,
                                   "logits": np.frombuffer(raw, dtype="<i2")}
    finally:
        close_transport(port, device)
    return results


def output_len(out_dir: Path) -> int:
    text = (Path(out_dir) / "src" / "trm_gap9_model.h").read_text()
    return int(re.search(r"#define TRM_OUTPUT_LEN (\d+)", text).group(1))


def quantized_inputs(art: Artifact, n: int, seed: int) -> np.ndarray:
    from trm_tvm.quant.fixtures import golden_inputs

    return np.asarray(golden_inputs(art, n, seed)[1])

