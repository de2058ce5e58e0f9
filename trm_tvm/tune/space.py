"""The design space: which kernels of a model are tuned, and each one's meta_schedule task.

A task is one specialised linear kernel (trm_tvm.compile.strategies.linear) with its intrinsic choice fixed:
`dsp` on (SMLAD/SXTB16 through ACLE intrinsics, where the board and shape allow it) and off are two tasks, because
they are two different PrimFuncs (the DSP kernel reads its operands as 32-bit words); `widen` (the dsp form with the
activations widened once per call into arena scratch: one more parameter) is a third. Inside a task the space is
the strategy's own schedule knobs, sampled with `sch.sample_categorical` so that every candidate's trace records
its decisions:
    order     "to" | "ot"              loop order tokens/outputs
    tile_o    1 | 2 | 4 | 8            register block of output channels (order "to")
    tile_t    1 | 2 | 4                register block of tokens (order "to")
    unroll_k  1 | 2 | 4 | 8 | 16       unroll of the reduction
`fuse` is always on: naive's unfused form has another signature (an arena accumulator) and is never faster.
The schedule primitives are the strategy's (`linear.apply_knobs`), so a tuned kernel is exactly what `compile`
builds from the same knobs. The other op families (RMSNorm, element-wise) stay at their default knobs: together
they are a few per cent of an inference's cycles.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx

from trm_tvm.compile.importer import fold_output_transposes, section_ops
from trm_tvm.compile.strategies import linear
from trm_tvm.compile.strategies.linear import LinearShape

SPACE = {"order": ("to", "ot"), "tile_o": (1, 2, 4, 8), "tile_t": (1, 2, 4), "unroll_k": (1, 2, 4, 8, 16)}
KERNEL_ATTR = "trm.kernel"          # PrimFunc attributes naming the workload in the database
FIXED_ATTR = "trm.fixed_knobs"


@dataclass(frozen=True)
class Task:
    shape: LinearShape
    dsp: bool
    calls: int                      # calls per fixed-compute inference (weights the task scheduler)
    widen: bool = False             # dsp form with the activations widened into scratch (linear.uses_widen)

    @property
    def key(self) -> str:
        return self.shape.key

    @property
    def name(self) -> str:
        return f"{self.key}{'_dsp' if self.dsp else ''}{'_widen' if self.widen else ''}"

    @property
    def fixed(self) -> dict:   # "widen" only when on: the workloads of the other tasks stay those recorded before it
        return {"fuse": True, "dsp": self.dsp, **({"widen": True} if self.widen else {})}

    @property
    def macs(self) -> int:
        return self.shape.tokens * self.shape.n_in * self.shape.n_out

    def workload(self) -> tvm.IRModule:
        """The unscheduled kernel, named by attributes so database records map back to kernels."""
        func = linear.base_func(self.shape, self.fixed)
        func = func.with_attr(KERNEL_ATTR, self.key).with_attr(FIXED_ATTR, json.dumps(self.fixed, sort_keys=True))
        return tvm.IRModule({"main": func})

    def space_fn(self, force: dict | None = None):
        """meta_schedule ScheduleFn body: sample each knob (or take `force`'s value as the decision), then apply
        the strategy's primitives."""
        def sample(sch: s_tir.Schedule) -> None:
            knobs = dict(self.fixed)
            for name, values in SPACE.items():
                n = len(values)
                pick = values.index(force[name]) if force else None
                knobs[name] = values[int(sch.get(sch.sample_categorical(list(range(n)), [1.0 / n] * n, pick)))]
            linear.apply_knobs(sch, self.shape, knobs)
        return sample

    def schedule(self, knobs: dict) -> s_tir.Schedule:
        """The candidate of given knob values, with a trace that records them as decisions."""
        sch = s_tir.Schedule(self.workload())
        self.space_fn(knobs)(sch)
        return sch


def dsp_possible(board, shape: LinearShape) -> bool:
    return "dsp" in board.core.features and linear.uses_dsp(shape, {"dsp": True, "fuse": True})


def model_tasks(art, board) -> list[Task]:
    """The linear kernels of an artifact (int8 outputs; the tiny int16 heads keep their default), with calls per
    fixed-compute inference; `dsp` and dsp `widen` tasks where the board has the DSP extension."""
    from trm_tvm.compile.backends.tvm import TVMBackend, shape_of

    n_sup, per_step = art.schedule["N_sup"], len(art.calls)
    times = {"prologue": 1, "net": n_sup * per_step, "heads": n_sup}
    calls: dict[LinearShape, int] = {}
    for sec, k in times.items():
        ops = section_ops(art, sec)
        for op in (fold_output_transposes(ops) if TVMBackend.folds_transposes else ops):   # as compile does
            if op.kind == "linear":
                shape = shape_of(op)
                calls[shape] = calls.get(shape, 0) + k
    tasks = []
    for shape, n in calls.items():
        tasks.append(Task(shape, False, n))
        if dsp_possible(board, shape):
            tasks += [Task(shape, True, n), Task(shape, True, n, widen=True)]
    return tasks


def knobs_of(trace, func: tirx.PrimFunc) -> dict:
    """The knob values a candidate's trace decided (fixed knobs from the workload's attributes)."""
    knobs = json.loads(str(func.attrs[FIXED_ATTR]))
    samples = [inst for inst in trace.insts if inst.kind.name == "SampleCategorical"]
    if len(samples) != len(SPACE):
        raise ValueError(f"trace has {len(samples)} knob decisions, the space has {len(SPACE)}")
    for (name, values), inst in zip(SPACE.items(), samples):
        knobs[name] = values[int(trace.get_decision(inst))]
    return knobs
