"""compile_artifact: artifact + board + kernel back end -> build directory (docs/build-dir.md)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from trm_tvm.boards import Board, load_board
from trm_tvm.compile import memory
from trm_tvm.compile.aot import Executor
from trm_tvm.compile.backends import get_backend
from trm_tvm.compile.importer import import_artifact
from trm_tvm.errors import UserError, atomic_write_text
from trm_tvm.jsonio import read_json, run_info, write_json
from trm_tvm.quant.artifact import Artifact, file_sha256

OPTS = ("-Os", "-O2")


def precision(art: Artifact) -> str:
    """'w<bits>a<bits>' when every linear of `net` has the same weight bits (a 4-bit net may keep its embedding at
    8 bits, as the heads always are: that is W4A8, docs/quant.md); 'mixed' for a per-layer assignment."""
    def bits(sec):
        return {n.get("bits", 8) for n in art.graph[sec] if n["op"] == "linear"}
    net = bits("net")
    if len(net) != 1 or not bits("prologue") <= net | {8}:
        return "mixed"
    return f"w{net.pop()}a{art.numerics['act_bits']}"


def check_fit(board: Board, arena: int, weight_bytes: int) -> None:
    """Arena must fit the board's RAM and the constants its flash (code comes on top; the project API checks
    the linked ELF)."""
    if board.part is None:
        return
    for what, limit in board.fit_limits()["ram"]:
        if arena > limit:
            raise UserError(f"model too big for {board.name}: arena {arena} bytes > {limit} bytes of {what}",
                            "use a smaller model or a board with more RAM")
    for what, limit in board.fit_limits()["flash"]:
        if weight_bytes > limit:
            raise UserError(f"model too big for {board.name}: constants {weight_bytes} bytes > {limit} bytes of {what}",
                            "use a smaller model, 4-bit weights, or a board with more flash")


def compile_artifact(artifact: str | Path, board: str, kernels: str, out: str | Path, schedule: str = "default",
                     opt: str = "-O2", profile_layers: bool = False) -> dict:
    if opt not in OPTS:
        raise UserError(f"unknown optimisation level {opt!r}", f"use one of {', '.join(OPTS)}")
    brd = load_board(board)
    art = Artifact.load(artifact)
    backend = get_backend(kernels, brd, schedule)
    sections, mod = import_artifact(art, backend.scratch, getattr(backend, "folds_transposes", False))
    arena = memory.layout(sections, memory.relax_plan(mod))
    bound = memory.lower_bound(sections)
    ex = Executor(art, sections, arena, backend)
    out = Path(out)
    model = out / "model"
    files = {"trm_model.h": ex.model_h(), "trm_model.c": ex.model_c()}
    files["trm_weights.h"], files["trm_weights.c"] = ex.weights.header(), ex.weights.source()
    files.update(backend.files())
    wb = ex.weights.bytes_by_kind()
    check_fit(brd, arena.bytes, sum(wb.values()))
    for name, text in files.items():
        atomic_write_text(model / name, text)
    sources = [f"model/{n}" for n in files if n.endswith(".c")]
    io = art.header["io"]
    plan = {
        "arena_bytes": arena.bytes, "lower_bound_bytes": bound, "ratio": round(arena.bytes / bound, 4),
        "lower_bound_method": "persistent tensors + max over sections and calls of simultaneously live tensors "
                              "(artifact graph order, no in-place kernels), kernel scratch included",
        "persistent": {k: {"offset": o, "bytes": b} for k, (o, b) in arena.persistent.items()},
        "region_offset": arena.region_offset, "region_bytes": arena.region_bytes,
        "sections": {sec: {"bytes": p.bytes, "method": p.method, "relax_storages_bytes": p.relax_bytes,
                           "tensors": p.offsets, "relax_storages": p.storages} for sec, p in arena.sections.items()},
        "provenance": run_info(),
    }
    write_json(out / "memory_plan.json", plan)
    write_json(out / "calls.json", {"calls": ex.call_table, "calls_per_step": len(art.calls)})
    build = {
        "schema": "trm-tvm-build", "version": 1, "board": brd.name,
        "artifact": {"path": str(Path(artifact).resolve()), "sha256": file_sha256(artifact),
                     "precision": precision(art)},
        "kernels": kernels, "schedule": schedule if kernels == "tvm" else "n/a", "opt": opt,
        "sources": sources, "include_dirs": ["model"],
        "defines": {"TRM_PROFILE_LAYERS": int(profile_layers), **backend.defines(sections)},
        "arena_bytes": arena.bytes, "weight_bytes": wb,
        "io": {"input_bytes": int(np.prod(io["input_shape"])), "input_dtype": io["input_dtype"],
               "input_shape": io["input_shape"], "output_len": int(np.prod(io["output_shape"])),
               "output_dtype": "int16", "num_classes": io["classes"], "per_token": io["per_token"]},
        "schedule_info": {"n": art.schedule["n"], "T": art.schedule["T"], "N_sup": art.schedule["N_sup"],
                          "calls_per_step": len(art.calls)},
        "halting": {"q_thr": art.header["halting"]["q_thr"], "threshold": art.header["halting"]["threshold"]},
        "phases": ["prologue", "net", "heads"],
        "provenance": run_info(),
    }
    write_json(out / "build.json", build)
    return build


def compile_when_changed(artifact, board: str, kernels: str, build: Path, schedule: str) -> bool:
    """Compile into `build` unless the same compile is already there; True when it changed.

    The kernels and the compiler change under a cached build as well as the artifact, so the compile always runs
    (seconds); an identical result is discarded so that the project keeps its build id and recorded runs resume.
    The halting study's and the tuner's build caches both go through here."""
    build.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build.parent) as tmp:
        fresh = Path(tmp) / "build"
        compile_artifact(artifact, board, kernels, fresh, schedule)
        if build.is_dir() and _build_content(fresh) == _build_content(build):
            return False
        shutil.rmtree(build, ignore_errors=True)
        os.replace(fresh, build)
    return True


def _build_content(build: Path) -> dict[str, Any]:
    """Every file of a build directory, JSON manifests without their run provenance (time, commit)."""
    content: dict[str, Any] = {}
    for p in sorted(build.rglob("*")):
        if p.is_file():
            key = str(p.relative_to(build))
            content[key] = p.read_bytes()
            if p.suffix == ".json":
                data = read_json(p, key)
                content[key] = {k: v for k, v in data.items() if k != "provenance"} if isinstance(data, dict) else data
    return content
