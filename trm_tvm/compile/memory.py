"""The static memory plan: Relax's StaticPlanBlockMemory decides which tensors share a storage; we read its
alloc_storage / alloc_tensor bindings, give each storage a lifetime over the call sequence and pack the storages
into one arena (greedy by size, lowest free offset among the storages alive at the same time).

The arena: [x | y | z | logits | q] (live across the whole inference) then one region reused by the three
sections (prologue, net call, heads), whose size is the largest section plan. `lower_bound` computes, without
the planner, the least any allocator without in-place kernels could use: the persistent tensors plus, per
section, the largest sum of simultaneously live tensors (from the artifact graph's def/last-use order).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from trm_tvm.compile.importer import BOUNDARY, Op

ALIGN = 8


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def nbytes(shape, dtype: str) -> int:
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


PLAN_PASSES = [relax.transform.ToNonDataflow(), relax.transform.RemovePurityChecking(),
               relax.transform.CallTIRRewrite(), relax.transform.StaticPlanBlockMemory()]


def relax_plan(mod: tvm.IRModule) -> tvm.IRModule:
    with tvm.target.Target({"kind": "c"}):
        return tvm.transform.Sequential(PLAN_PASSES)(mod)


@dataclass
class SectionPlan:
    offsets: dict[str, int]            # tensor (op output, or "<output>.scratch") -> offset in the shared region
    bytes: int                         # region size this section needs
    storages: list[dict] = field(default_factory=list)   # Relax's storages: size, lifetime, offset, tensors
    method: str = ""                   # which packing gave `offsets`
    relax_bytes: int = 0               # region size with Relax's storages packed as they are


def read_plan(func: relax.Function, ops: list[Op], section: str) -> SectionPlan:
    """Map the planned function's allocations back to the ops' tensors and pack its storages."""
    storage_size: dict = {}
    tensor_storage: dict = {}          # alloc var -> (storage var, offset in storage)
    tensor_bytes: dict = {}            # alloc var -> the tensor's own bytes
    alias: dict = {}                   # var -> what it stands for (alloc var, or tuple of them)
    calls = []
    for block in func.body.blocks:
        for b in block.bindings:
            v = b.value
            if isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op):
                name = v.op.name
                if name == "relax.memory.alloc_storage":
                    storage_size[b.var] = int(v.args[0].values[0])
                elif name == "relax.memory.alloc_tensor":
                    tensor_storage[b.var] = (v.args[0], int(v.args[1].value))
                    tensor_bytes[b.var] = nbytes([int(d) for d in v.args[2].values], str(v.args[3].value))
                continue
            if isinstance(v, relax.Call) and isinstance(v.op, relax.ExternFunc):
                calls.append(v)
                continue
            if isinstance(v, relax.Var):
                alias[b.var] = alias.get(v, v)
            elif isinstance(v, relax.Tuple):
                alias[b.var] = tuple(alias.get(f, f) for f in v.fields)
            elif isinstance(v, relax.TupleGetItem):
                alias[b.var] = alias.get(v.tuple_value, v.tuple_value)[v.index]
    assert len(calls) == len(ops), f"{section}: {len(calls)} planned calls for {len(ops)} ops"
    # which storage each op tensor landed in; boundary outputs are the caller's (not planned)
    placed: dict[str, tuple] = {}
    own: dict[str, int] = {}
    for op, call in zip(ops, calls):
        assert call.op.global_symbol == f"trm.{op.kind}", (call.op.global_symbol, op.kind)
        outs = list(call.args[-2:]) if op.scratch else [call.args[-1]]
        for tensor, var in zip([op.output, f"{op.output}.scratch"], outs):
            if var in tensor_storage:
                placed[tensor], own[tensor] = tensor_storage[var], tensor_bytes[var]
    # lifetime of every tensor and every storage over the call index
    tlife: dict = {}
    for i, op in enumerate(ops):
        for t in [op.output, f"{op.output}.scratch"] + op.inputs:
            if t in placed:
                lo, hi = tlife.get(t, (i, i))
                tlife[t] = (min(lo, i), max(hi, i))
    life: dict = {}
    for t, (lo, hi) in tlife.items():
        s = placed[t][0]
        a, b = life.get(s, (lo, hi))
        life[s] = (min(a, lo), max(b, hi))
    offsets, region, order = pack({s: (storage_size[s], *life[s]) for s in life})
    tensors_of: dict = {}
    for t, (s, off) in placed.items():
        tensors_of.setdefault(s, []).append(t)
    storages = [{"bytes": storage_size[s], "first_call": life[s][0], "last_call": life[s][1], "offset": offsets[s],
                 "tensors": sorted(tensors_of[s])} for s in order]
    relax_offsets = {t: offsets[s] + off for t, (s, off) in placed.items()}
    # Relax reuses whole storages for the function's duration; packing the same tensors by their own lifetimes
    # can overlap storages that are idle at different times. Keep whichever is smaller, and say which.
    # (with Relax's storage sizes, or with each tensor's own size: a kernel's scratch shares a storage with larger
    # tensors, and would otherwise take the whole storage's size for its one call)
    best = SectionPlan(relax_offsets, region, storages, "Relax storages", region)
    for how, sizes in (("Relax storages as sizes", {t: storage_size[placed[t][0]] for t in placed}),
                       ("own sizes", own)):
        t_offsets, t_region, _ = pack({t: (sizes[t], *tlife[t]) for t in tlife})
        if t_region < best.bytes:
            best = SectionPlan(t_offsets, t_region, storages, f"tensor lifetimes ({how})", region)
    return best


def pack(items: dict) -> tuple[dict, int, list]:
    """items: key -> (bytes, first, last). Greedy: largest first, lowest offset free of every placed item whose
    lifetime overlaps. Returns (offsets, total bytes, keys in placement order)."""
    order = sorted(items, key=lambda k: (-items[k][0], items[k][1]))
    placed: list = []
    offsets = {}
    for k in order:
        size, lo, hi = items[k]
        size = align(size)
        busy = sorted((offsets[p], offsets[p] + align(items[p][0])) for p in placed
                      if not (items[p][2] < lo or items[p][1] > hi))
        off = 0
        for a, b in busy:
            if off + size <= a:
                break
            off = max(off, b)
        offsets[k] = off
        placed.append(k)
    total = max((offsets[k] + align(items[k][0]) for k in items), default=0)
    return offsets, total, order


@dataclass
class Arena:
    persistent: dict[str, tuple[int, int]]   # name -> (offset, bytes)
    region_offset: int
    region_bytes: int
    sections: dict[str, SectionPlan]

    @property
    def bytes(self) -> int:
        return self.region_offset + self.region_bytes

    def offset(self, section: str, tensor: str) -> int:
        if tensor in self.persistent:
            return self.persistent[tensor][0]
        return self.region_offset + self.sections[section].offsets[tensor]


def persistent_tensors(sections: dict[str, list[Op]]) -> dict[str, int]:
    """Tensors alive across sections: the states and the heads' outputs."""
    net0 = sections["net"][0]
    sizes = {s: nbytes(shape, "int8") for s, shape in zip(("x", "y", "z"), net0.in_shapes)}
    for op in sections["heads"]:
        if op.output in BOUNDARY["heads"][1]:
            sizes[op.output] = nbytes(op.out_shape, op.out_dtype)
    return sizes


def layout(sections: dict[str, list[Op]], planned: tvm.IRModule) -> Arena:
    persistent, off = {}, 0
    for name, size in persistent_tensors(sections).items():
        persistent[name] = (off, size)
        off += align(size)
    plans = {sec: read_plan(planned[sec], ops, sec) for sec, ops in sections.items()}
    return Arena(persistent, off, max(p.bytes for p in plans.values()), plans)


def lower_bound(sections: dict[str, list[Op]]) -> int:
    """Least arena any planner could use (no in-place kernels), from tensor lifetimes in graph order alone."""
    peak = 0
    for sec, ops in sections.items():
        boundary = set(BOUNDARY[sec][0]) | set(BOUNDARY[sec][1])
        born = {op.output: i for i, op in enumerate(ops) if op.output not in boundary}
        size = {op.output: nbytes(op.out_shape, op.out_dtype) for op in ops if op.output in born}
        dies = dict(born)
        for i, op in enumerate(ops):
            for t in op.inputs:
                if t in born:
                    dies[t] = i
        for i, op in enumerate(ops):
            live = sum(size[t] for t in born if born[t] <= i <= dies[t])
            peak = max(peak, live + op.scratch)
    return sum(persistent_tensors(sections).values()) + peak
