"""numpy -> C calls of the kernel interface (project_templates/kernels/trm_kernels.h) through ctypes.

Used by the host tests of every back end: `Kernels(lib, "ref")` calls `trm_<op>_<dtype>_ref`, `Kernels(lib, "dsp")`
the same ops of another variant. Arrays are copied to C-contiguous buffers of the exact C type first.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
KERNELS_DIR = REPO / "project_templates" / "kernels"
REF_SOURCES = [KERNELS_DIR / "reference" / "trm_kernels_ref.c"]


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def _c(a, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


class Kernels:
    """The ops of trm_kernels.h of one variant, callable on numpy arrays (returns new arrays)."""

    def __init__(self, lib: ctypes.CDLL, variant: str = "ref"):
        self.lib, self.variant = lib, variant

    def _fn(self, op: str, dtype: str, shared: bool = False):
        return getattr(self.lib, f"trm_{op}_{dtype}_{'ref' if shared else self.variant}")

    def linear(self, a, w, bias, mult, shift, packed_s4: bool = False, scratch_bytes: int = 0) -> np.ndarray:
        a = _c(a, np.int8)
        tokens, n_in = a.shape
        n_out = w.shape[0]
        w = _c(w, np.uint8 if packed_s4 else np.int8)
        bias = None if bias is None else _c(bias, np.int32)
        out = np.zeros((tokens, n_out), np.int8)
        scratch = np.zeros(max(scratch_bytes, 1), np.uint8)
        self._fn("linear", "s4" if packed_s4 else "s8")(
            _ptr(a), _ptr(w), _ptr(bias), _ptr(_c(mult, np.int32)), _ptr(_c(shift, np.int32)), _ptr(out),
            tokens, n_in, n_out, _ptr(scratch) if scratch_bytes else None)
        return out

    def head(self, a, w, bias, mult, shift) -> np.ndarray:
        a, w = _c(a, np.int8), _c(w, np.int8)
        out = np.zeros((a.shape[0], w.shape[0]), np.int16)
        self._fn("head", "s8", True)(_ptr(a), _ptr(w), _ptr(None if bias is None else _c(bias, np.int32)),
                                     _ptr(_c(mult, np.int32)), _ptr(_c(shift, np.int32)), _ptr(out),
                                     a.shape[0], a.shape[1], w.shape[0])
        return out

    def _add(self, dtype, ins, m, *extra):
        ins = [_c(x, np.int8).ravel() for x in ins]
        arr = (ctypes.c_void_p * len(ins))(*[x.ctypes.data for x in ins])
        out = np.zeros(ins[0].size, np.int8 if dtype == "s8" else np.int32)
        self._fn("add", dtype, True)(arr, _ptr(_c(m, np.int32)), len(ins), *extra, _ptr(out), out.size)
        return out

    def add_s8(self, ins, m, s) -> np.ndarray:
        return self._add("s8", ins, m, ctypes.c_int32(int(s)))

    def add_s32(self, ins, m) -> np.ndarray:
        return self._add("s32", ins, m)

    def mul(self, a, b, mult, shift) -> np.ndarray:
        a, b = _c(a, np.int8).ravel(), _c(b, np.int8).ravel()
        out = np.zeros(a.size, np.int8)
        self._fn("mul", "s8", True)(_ptr(a), _ptr(b), ctypes.c_int32(int(mult)), ctypes.c_int32(int(shift)),
                                    _ptr(out), a.size)
        return out

    def lut(self, a, table) -> np.ndarray:
        a = _c(a, np.int8).ravel()
        out = np.zeros(a.size, np.int8)
        self._fn("lut", "s8", True)(_ptr(a), _ptr(_c(table, np.int8)), _ptr(out), a.size)
        return out

    def rmsnorm(self, r, eps, mult, shift) -> np.ndarray:
        r = _c(r, np.int32)
        out = np.zeros(r.shape, np.int8)
        self._fn("rmsnorm", "s32", True)(_ptr(r), ctypes.c_int64(int(eps)), _ptr(_c(mult, np.int32)),
                                         _ptr(_c(shift, np.int32)), _ptr(out), r.shape[0], r.shape[1])
        return out

    def transpose(self, a) -> np.ndarray:
        a = _c(a, np.int8)
        out = np.zeros(a.shape[::-1], np.int8)
        self._fn("transpose", "s8", True)(_ptr(a), _ptr(out), a.shape[0], a.shape[1])
        return out

    def mean_pool(self, a, mult, shift) -> np.ndarray:
        a = _c(a, np.int8)
        out = np.zeros(a.shape[1], np.int8)
        self._fn("mean_pool", "s8", True)(_ptr(a), ctypes.c_int32(int(mult)), ctypes.c_int32(int(shift)),
                                          _ptr(out), a.shape[0], a.shape[1])
        return out

    def patch(self, x, patch) -> np.ndarray:
        x = _c(x, np.int8)
        ch, samples = x.shape
        out = np.zeros((samples // patch, ch * patch), np.int8)
        self._fn("patch", "s8", True)(_ptr(x), _ptr(out), ch, samples, patch)
        return out

    def embed(self, digits, table) -> np.ndarray:
        digits, table = _c(digits, np.uint8), _c(table, np.int8)
        out = np.zeros((digits.size, table.shape[1]), np.int8)
        self._fn("embed", "s8", True)(_ptr(digits), _ptr(table), _ptr(out), digits.size, table.shape[1])
        return out

    def argmax(self, x) -> int:
        x = _c(x, np.int16)
        return int(self._fn("argmax", "s16", True)(_ptr(x), x.size))
