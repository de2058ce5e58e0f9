"""The integer ops of docs/integer-spec.md as the kernel tests' oracle, in numpy int64 (exact)."""
import math

import numpy as np


def _rq(v, mult, sh):
    v, mult, sh = (np.asarray(x).astype(np.int64).astype(object) for x in (v, mult, sh))
    return ((v * mult + (1 << (sh - 1))) >> sh).astype(np.int64)  # Python ints: exact, arithmetic >>


def _sat(v, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(v, lo, hi).astype(np.int8 if bits == 8 else np.int16)


class O:
    @staticmethod
    def acc(a, w, bias):
        acc = a.astype(np.int64) @ w.astype(np.int64).T
        return acc + (0 if bias is None else bias.astype(np.int64))

    @staticmethod
    def linear(a, w, bias, mult, sh, out_bits=8):
        return _sat(_rq(O.acc(a, w, bias), mult, sh), out_bits)

    @staticmethod
    def tie_count(acc, mult, sh):
        prod = np.asarray(acc, dtype=object) * np.asarray(mult, dtype=object)
        half = np.asarray([1 << (int(s) - 1) for s in sh], dtype=object)
        return int(((prod % (2 * half)) == half).sum())

    @staticmethod
    def add(ins, m, s):
        v = sum(x.astype(np.int64) * int(mi) for x, mi in zip(ins, m))
        if s is None:
            return v.astype(np.int32)
        return _sat((v + (1 << (s - 1))) >> s, 8)

    @staticmethod
    def mul(a, b, mult, sh):
        return _sat(_rq(a.astype(np.int64) * b.astype(np.int64), mult, sh), 8)

    @staticmethod
    def mean_pool(a, mult, sh):
        return _sat(_rq(a.astype(np.int64).sum(0), mult, sh), 8)

    @staticmethod
    def rmsnorm(r, eps, mult, sh):
        out = np.zeros(r.shape, np.int8)
        for t, row in enumerate(r.astype(object)):
            ss = sum(int(x) * int(x) for x in row) + int(eps)
            if ss == 0:
                continue
            d = math.isqrt(ss)
            b = d.bit_length()
            inv = (1 << (b + 29)) // d
            n = np.array([(int(x) * inv + (1 << (b + 13))) >> (b + 14) for x in row], dtype=object)
            out[t] = _sat(_rq(n, mult, sh), 8)
        return out
