"""Run a build directory's model library on the host: gcc it into a shared library and call trm_init/trm_run
through ctypes. Used by the tests to check the generated executor against the golden model before any board."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm_tvm.compile.hostcc import build_shared
from trm_tvm.jsonio import read_json


@dataclass
class HostResult:
    logits: np.ndarray   # (B, output_len) int16
    q: np.ndarray        # (B,) int16 (the last computed step's q)
    pred: np.ndarray     # (B,)
    steps: np.ndarray    # (B,)


class HostModel:
    def __init__(self, build_dir: str | Path):
        self.dir = Path(build_dir)
        self.build = read_json(self.dir / "build.json", "build manifest")
        srcs = [self.dir / s for s in self.build["sources"]]
        self.lib = build_shared(srcs, [self.dir / d for d in self.build["include_dirs"]],
                                flags=["-Wno-unused-function", "-Wno-unused-variable", "-Wno-unused-parameter"])
        n = self.build["io"]["output_len"]

        class Result(ctypes.Structure):
            _fields_ = [("logits", ctypes.c_int16 * n), ("q", ctypes.c_int16), ("pred", ctypes.c_uint16),
                        ("steps", ctypes.c_uint8)]

        class Opts(ctypes.Structure):
            _fields_ = [("q_threshold", ctypes.c_int32), ("max_steps", ctypes.c_uint8)]

        self.Result, self.Opts = Result, Opts
        self.arena = np.zeros(self.build["arena_bytes"] + 8, np.uint8)
        rc = self.lib.trm_init(self.arena.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint32(self.build["arena_bytes"]))
        assert rc == 0, f"trm_init returned {rc}"

    def run(self, inputs: np.ndarray, q_thr: int, max_steps: int) -> HostResult:
        dtype = np.uint8 if self.build["io"]["input_dtype"] == "uint8" else np.int8
        out = []
        for x in inputs:
            x = np.ascontiguousarray(x, dtype=dtype)
            res, opts = self.Result(), self.Opts(int(q_thr), int(max_steps))
            rc = self.lib.trm_run(x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(res), ctypes.byref(opts))
            assert rc == 0, f"trm_run returned {rc}"
            out.append((np.frombuffer(res.logits, np.int16).copy(), res.q, res.pred, res.steps))
        logits, q, pred, steps = zip(*out)
        return HostResult(np.stack(logits), np.array(q), np.array(pred), np.array(steps))
