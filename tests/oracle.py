"""The kernel tests' oracle: trm_tvm/quant/spec.py (the integer spec in numpy), with the argument conventions of
the C kernel tests (bias may be None, add with s=None means the int32 residual add)."""
import numpy as np

from trm_tvm.quant import spec


class O:
    @staticmethod
    def acc(a, w, bias):
        acc = a.astype(np.int64) @ w.astype(np.int64).T
        return acc + (0 if bias is None else bias.astype(np.int64))

    @staticmethod
    def linear(a, w, bias, mult, sh, out_bits=8):
        bias = np.zeros(w.shape[0], np.int32) if bias is None else bias
        return spec.linear_s8(a, w, bias, mult, sh, out_bits=out_bits)

    @staticmethod
    def tie_count(acc, mult, sh):
        """How many requantisations land exactly on a .5 (the round-half-up edge)."""
        prod = np.asarray(acc, dtype=np.int64).astype(object) * np.asarray(mult, np.int64).astype(object)
        half = np.asarray([1 << (int(s) - 1) for s in np.asarray(sh).ravel()], dtype=object)
        return int(((prod % (2 * half)) == half).sum())

    @staticmethod
    def add(ins, m, s):
        return spec.add_s32(ins, m).astype(np.int32) if s is None else spec.add_s8(ins, m, s)

    @staticmethod
    def mul(a, b, mult, sh):
        return spec.mul_s8(a, b, mult, sh)

    @staticmethod
    def mean_pool(a, mult, sh):
        return spec.mean_pool_s8(a, mult, sh)

    @staticmethod
    def rmsnorm(r, eps, mult, sh):
        return spec.rmsnorm_s32(r, eps, mult, sh)
