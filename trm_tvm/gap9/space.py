"""The GAP9 design space: one meta_schedule task per linear-layer shape, its knobs sampled in a TIR schedule.

The workload is the Cortex-M path's unscheduled linear kernel (trm_tvm.compile.strategies.linear, fused form);
the space function expresses the GAP9 cluster schedule on it with TIR primitives, every knob a
`sch.sample_categorical` decision over the values that are legal at that point (so a tile that overflows L1 or a
16-bit DMA is never sampled):

    double_buffer  1 | 0        weights of tile i+1 and the output of tile i-1 move during tile i  (loop annotation)
    packed         0 | 1        a tile's weights + bias/mult/shift contiguous in L2: one DMA per tile (annotation)
    split_tokens   0 | 1        the 8 cores share a tile's output channels (0) or its tokens (1)
    tile_tokens    T, ceil(T/2), ceil(T/4)           split of the token loop: the L1 tile's rows
    tile_out       N, every multiple of 8 < N, 8     split of the output loop: the L1 tile's channels
                                                     (only values whose tile fits the L1 budget and the DMA limit)

Then the core axis of the tile (channels or tokens) is split `[8, None]` and the 8-way loop marked parallel (the
kernel gives core c the c-th contiguous ceil(n/8) share), and the requantisation is computed at the tile.
The trace's decisions are the knobs (`knobs_of`); `tiling_of` turns them into the `LinearTiling` that the
cluster kernel (project_templates/gap9/kernels/trm_linear_cl.c) runs -- the TIR here describes that schedule; the
tiles, DMA and fork are the kernel's C, its per-core compute can be the strategy's (trm_tvm.gap9.tir_kernels;
docs/gap9.md "Kernels from the TIR strategies").
Unrolling is not a knob: the cluster kernel's inner loop is a fixed 2x4 register block with hardware loops in
the frozen cycle model, so no unroll value would change either the C or the modeled cycles.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx

from trm_tvm.compile.strategies import linear
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.gap9.board import Gap9Board
from trm_tvm.gap9.tiling import LinearTiling, plan_linear
from trm_tvm.tune.space import FIXED_ATTR, KERNEL_ATTR

KNOBS = ("double_buffer", "packed", "split_tokens", "tile_tokens", "tile_out")   # sampling order
WORKLOAD_KNOBS = {"fuse": True, "dsp": False}        # the strategy's plain fused form
KNOB_ATTR = "trm.gap9."                               # loop annotation prefix of the knobs in a scheduled kernel


@dataclass(frozen=True)
class Gap9Task:
    """One linear-layer shape of the artifacts (the trm_tvm.tune.search task interface)."""
    tokens: int
    n_in: int
    n_out: int
    wbits: int
    cores: int
    l1_budget: int
    calls: int = 0                   # calls per fixed-compute inference, summed over the artifacts' layers

    @property
    def shape(self) -> LinearShape:
        return LinearShape(self.tokens, self.n_in, self.n_out, self.wbits)

    @property
    def key(self) -> str:
        return f"gap9_{self.shape.key}"

    name = key

    @property
    def fixed(self) -> dict:
        return {"cores": self.cores, "l1_budget": self.l1_budget}

    @property
    def macs(self) -> int:
        return self.tokens * self.n_in * self.n_out

    def workload(self) -> tvm.IRModule:
        func = linear.base_func(self.shape, WORKLOAD_KNOBS)
        func = func.with_attr(KERNEL_ATTR, self.key).with_attr(FIXED_ATTR, json.dumps(self.fixed, sort_keys=True))
        return tvm.IRModule({"main": func})

    # -- the knobs -----------------------------------------------------------------------------------------------
    def tiling(self, knobs: dict) -> LinearTiling:
        return LinearTiling(self.tokens, self.n_in, self.n_out, self.wbits, knobs["tile_tokens"], knobs["tile_out"],
                            bool(knobs["split_tokens"]), bool(knobs["double_buffer"]), bool(knobs["packed"]))

    def fits(self, t: LinearTiling) -> bool:
        return t.l1_bytes <= self.l1_budget and t.dma_ok()

    def legal(self, name: str, chosen: dict) -> list[int]:
        """The values of knob `name` that can still give a tile that fits, given the knobs chosen before it."""
        if name in ("double_buffer",):
            return [1, 0]
        if name in ("packed", "split_tokens"):
            return [0, 1]
        widths = sorted({self.n_out, min(self.cores, self.n_out), *range(self.cores, self.n_out, self.cores),
                         self.default()["tile_out"]}, reverse=True)
        if name == "tile_out":
            return [w for w in widths if self.fits(self.tiling({**chosen, "tile_out": w}))]
        heights = sorted({*(math.ceil(self.tokens / d) for d in (1, 2, 4)), self.default()["tile_tokens"]},
                         reverse=True)
        return [h for h in heights if any(self.fits(self.tiling({**chosen, "tile_tokens": h, "tile_out": w}))
                                          for w in widths)]

    def all_knobs(self) -> list[dict]:
        """Every point of the space: the legal values of each knob given the ones before it."""
        points: list[dict] = [{}]
        for name in KNOBS:
            points = [{**p, name: v} for p in points for v in self.legal(name, p)]
        return points

    def default(self) -> dict:
        """The default schedule: split by output channel, the largest tile that fits L1, double buffering on."""
        t = plan_linear(self.tokens, self.n_in, self.n_out, self.wbits, self.l1_budget, self.cores)
        return {"double_buffer": 1, "packed": 0, "split_tokens": 0, "tile_tokens": t.tile_tokens,
                "tile_out": t.tile_out}

    def naive(self) -> dict:
        """Without the GAP9 ideas: one tile of 8 channels at a time, no double buffering."""
        return {**self.default(), "tile_out": min(self.cores, self.n_out), "double_buffer": 0}

    # -- the meta_schedule space ---------------------------------------------------------------------------------
    def space_fn(self, force: dict | None = None):
        """ScheduleFn body: sample each knob among its legal values (or take `force`'s value as the decision),
        then apply the tiling to the TIR."""
        def sample(sch: s_tir.Schedule) -> None:
            rv, knobs = {}, {}
            for name in KNOBS:
                values = self.legal(name, knobs)
                if not values or (force and force[name] not in values):
                    raise ValueError(f"{self.key}: no legal value of {name} after {knobs}")
                n = len(values)
                rv[name] = sch.sample_categorical(values, [1.0 / n] * n, values.index(force[name]) if force else None)
                knobs[name] = int(sch.get(rv[name]))
            self.apply(sch, knobs, rv)
        return sample

    def apply(self, sch: s_tir.Schedule, knobs: dict, rv: dict) -> None:
        """The cluster schedule as TIR: L1 tile loops, the core split, the requantisation at the tile."""
        acc = sch.get_sblock("acc")
        t, o, k = sch.get_loops(acc)
        t_tile, t_in = sch.split(t, [None, rv["tile_tokens"]])
        o_tile, o_in = sch.split(o, [None, rv["tile_out"]])
        sch.reorder(t_tile, o_tile, t_in, o_in, k)
        core, _ = sch.split(t_in if knobs["split_tokens"] else o_in, [self.cores, None])
        sch.parallel(core)
        sch.reverse_compute_at(sch.get_sblock("out"), o_tile)
        for name in KNOBS:               # the tile loop carries every decision: the runner reads them from the IR
            sch.annotate(o_tile, f"{KNOB_ATTR}{name}", knobs[name])

    def schedule(self, knobs: dict) -> s_tir.Schedule:
        sch = s_tir.Schedule(self.workload())
        self.space_fn(knobs)(sch)
        return sch


def knobs_of(trace, func: tirx.PrimFunc) -> dict:
    """The knobs a candidate's trace decided: each SampleCategorical's candidate at its decision."""
    samples = [inst for inst in trace.insts if inst.kind.name == "SampleCategorical"]
    if len(samples) != len(KNOBS):
        raise ValueError(f"trace has {len(samples)} knob decisions, the GAP9 space has {len(KNOBS)}")
    return {name: int(inst.attrs[0][int(trace.get_decision(inst))]) for name, inst in zip(KNOBS, samples)}


def knobs_in(mod: tvm.IRModule) -> dict:
    """The knobs of a scheduled kernel, read from its tile loop's annotations."""
    sch = s_tir.Schedule(mod)
    found = {}
    for loop in sch.get_loops(sch.get_sblock("acc")):
        found.update({k[len(KNOB_ATTR):]: int(v) for k, v in sch.get(loop).annotations.items()
                      if k.startswith(KNOB_ATTR)})
    if set(found) != set(KNOBS):
        raise ValueError(f"not a scheduled GAP9 kernel: knobs {sorted(found)}")
    return found


def task_of(func: tirx.PrimFunc) -> Gap9Task:
    """The task of a workload (its attributes and buffer shapes)."""
    key = str(func.attrs[KERNEL_ATTR])
    fixed = json.loads(str(func.attrs[FIXED_ATTR]))
    parts = key.split("_")
    tokens, n_in, n_out = (int(x) for x in parts[-1].split("x"))
    return Gap9Task(tokens, n_in, n_out, int(parts[2][1:]), fixed["cores"], fixed["l1_budget"])


def model_tasks(arts, board: Gap9Board) -> tuple[dict[str, Gap9Task], dict]:
    """The artifacts' cluster linear layers grouped by shape: {task key: task with its calls per inference},
    and {artifact index: {layer name: task key}}."""
    from trm_tvm.gap9 import project

    calls: dict[tuple, int] = {}
    layers: dict[int, dict[str, str]] = {}
    for i, art in enumerate(arts):
        em = project._NetEmitter(art, board)
        times = {"prologue": 1, "net": art.schedule["N_sup"] * len(art.calls), "heads": art.schedule["N_sup"]}
        layers[i] = {}
        for section, k in times.items():
            before = set(em.plans)
            em.section(section)
            for name in set(em.plans) - before:
                t = em.plans[name]
                if isinstance(t, LinearTiling):
                    shape = (t.tokens, t.n_in, t.n_out, t.wbits)
                    calls[shape] = calls.get(shape, 0) + k
                    layers[i][name] = Gap9Task(*shape, board.workers, board.l1_budget).key
    tasks = {}
    for shape, n in calls.items():
        t = Gap9Task(*shape, board.workers, board.l1_budget, n)
        tasks[t.key] = t
    return tasks, layers
