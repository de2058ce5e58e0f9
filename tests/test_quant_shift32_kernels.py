"""The tvm back end's linear kernels for layers whose every shift is 32 (`linear_multipliers: shift32`), on the host.

Such a layer compiles to a kernel specialised for sh = 32 (`LinearShape.sh32`): rq is the rounded high word
(SMMULR on a DSP core, VRMULH on 4 tokens on Helium, the int64 sum with a constant shift elsewhere), with no
per-channel shift branch. Checked here against the integer spec at every schedule level (host C emulations of the
instructions), with extreme and tie-making multipliers; the compile path picks the form only for such layers.
"""
import ctypes

import numpy as np
import pytest

from kernel_cases import int8, pack_s4
from oracle import O
from test_compile_kernels import Built, c, knobs_at  # noqa: F401  (Built: the harness, reused with other shapes)
from trm_tvm.compile import strategies
from trm_tvm.compile.backends.tvm import shape_of
from trm_tvm.compile.hostcc import build_shared
from trm_tvm.compile.importer import section_ops
from trm_tvm.compile.kernel_abi import KERNELS_DIR
from trm_tvm.compile.lower_c import to_c
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.quant.fixtures import random_artifact
from trm_tvm.quant.spec import encode_multiplier_shift32

LEVELS = ("naive", "default", "unwidened", "mve")
SHAPES = [LinearShape(3, 17, 12, 8, sh32=True), LinearShape(4, 16, 8, 4, bias=True, sh32=True),
          LinearShape(8, 32, 12, 8, sh32=True), LinearShape(1, 24, 5, 8, "int16", True, sh32=True),
          LinearShape(6, 8, 4, 8, out_trans=True, sh32=True), LinearShape(8, 48, 6, 4, out_trans=True, sh32=True),
          LinearShape(5, 16, 8, 8, a_trans=True, sh32=True)]


class Built32(Built):
    def __init__(self, tmp):
        self.funcs, self.scratch = {}, {}
        for shape in SHAPES:
            for level in LEVELS:
                name, func, scratch = strategies.build(shape, knobs_at("linear", level))
                self.funcs[f"{name}_{level}"], self.scratch[(shape, level)] = func, scratch
        self.src = to_c(self.funcs)
        (tmp / "kernels_tvm.c").write_text(self.src)
        self.lib = build_shared([tmp / "kernels_tvm.c"], [KERNELS_DIR / "tvm"], flags=["-Wno-unused-variable"])


@pytest.fixture(scope="module")
def K(tmp_path_factory):
    return Built32(tmp_path_factory.mktemp("tvm_sh32"))


def multipliers(rng, n: int) -> np.ndarray:
    """Shift-32 multipliers of real layers (2^15..2^31), the int32 extremes, and powers of two (exact ties)."""
    m = encode_multiplier_shift32(10.0 ** rng.uniform(-5, -0.31, n))[0].astype(np.int64)
    kind = rng.integers(0, 6, n)
    m[kind == 0] = rng.choice([(1 << 31) - 1, -(1 << 31) + 1], int((kind == 0).sum()))
    m[kind == 1] = 1 << rng.integers(20, 31, int((kind == 1).sum()))
    m[kind == 2] = -m[kind == 2]
    return m.astype(np.int32)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.key)
def test_sh32_linear_is_bit_exact(K, shape, level):
    rng = np.random.default_rng(hash(shape.key) % 2 ** 32)
    s, lim, vectors, ties = shape, 8 if shape.wbits == 4 else 128, 0, 0
    while vectors < 1000:
        a = int8(rng, (s.tokens, s.n_in), extreme=rng.random() < 0.2)
        w = rng.integers(-lim, lim, size=(s.n_out, s.n_in)).astype(np.int8)
        bias = rng.integers(-(1 << 20), 1 << 20, size=s.n_out).astype(np.int32) if s.bias else None
        mult, sh = multipliers(rng, s.n_out), np.full(s.n_out, 32, np.int32)
        want = O.linear(a, w, bias, mult, sh, out_bits=16 if s.out_dtype == "int16" else 8)
        out = np.zeros(want.T.shape if s.out_trans else want.shape, want.dtype)
        args = [c(a.T if s.a_trans else a, np.int8),
                c(pack_s4(w) if s.wbits == 4 else w, np.uint8 if s.wbits == 4 else np.int8)]
        args += ([c(bias, np.int32)] if s.bias else []) + [c(mult, np.int32), out]     # no shift argument
        if K.scratch[(shape, level)]:
            args.append(np.zeros(K.scratch[(shape, level)] // 4, np.int32))
        K.call(shape, level, *args)
        np.testing.assert_array_equal(out.T if s.out_trans else out, want)
        vectors += s.tokens
        ties += O.tie_count(O.acc(a, w, bias), mult, sh)
    assert ties > 5


def test_sh32_kernels_have_no_shift_branch(K):
    """The specialised kernels take no shift; the DSP / Helium forms requantise with SMMULR / VRMULH."""
    for name, func in K.funcs.items():
        assert "shift" not in [p.name for p in func.params], name
        body = K.src.split(f" {name}(", 1)[1].split("\n}\n", 1)[0]
        assert "shift" not in body and ("trm_smmulr(" in body or "_sh32(" in body or ">> (int64_t)32" in body), name
    assert "trm_smmulr(" in K.src and "trm_mve_rq4_s8_sh32(" in K.src


def test_compile_picks_the_sh32_form_only_for_all_32_layers():
    art = random_artifact(bits=8, seed=3)[0]
    ops = [op for op in section_ops(art, "net") if op.kind == "linear"]
    first, second = ops[0], ops[1]
    art.tensors[first.node["shift"]][:] = 32
    art.tensors[second.node["shift"]][:] = 32
    art.tensors[second.node["shift"]][-1] = 33                   # one channel at another shift: the general form
    ops = {op.name: op for op in section_ops(art, "net")}
    assert shape_of(ops[first.name]).sh32 and "_sh32_" in shape_of(ops[first.name]).key
    assert not shape_of(ops[second.name]).sh32
    heads = [op for op in section_ops(art, "heads") if op.kind == "head"]
    assert not any(shape_of(op).sh32 for op in heads)              # heads keep the general form


@pytest.mark.parametrize("wbits", [8, 4])
def test_gap9_simd_kernels_requantise_sh32_exactly(tmp_path, wbits):
    """The GAP9 per-core SIMD kernels (one dispatcher per n_in serves layers of either encoding): channels at
    sh = 32 with shift-32 multipliers, extreme ones and ties, beside channels at 33..45, 0 LSB on the host."""
    from trm_tvm.gap9 import functional, tir_kernels
    from trm_tvm.gap9.tiling import LinearTiling
    from trm_tvm.quant import spec

    rng = np.random.default_rng(wbits)
    T, K, N = 4, 40, 8
    tiling = LinearTiling(T, K, N, wbits, T, N, True, True)
    src, hdr = tir_kernels.source([tiling], 1)
    assert "== 32" in src
    (tmp_path / "trm_gap9_tir.c").write_text(src)
    (tmp_path / "trm_gap9_tir.h").write_text(hdr)
    lib = build_shared([tmp_path / "trm_gap9_tir.c"], [tmp_path, functional.TEMPLATE / "kernels"])
    share = getattr(lib, tir_kernels.dispatcher_name(K, wbits))
    share.argtypes = [ctypes.c_int] * 3 + [ctypes.c_void_p] * 6
    lo, hi = (-8, 8) if wbits == 4 else (-128, 128)
    for case in range(60):
        a = int8(rng, (T, K), extreme=case % 3 == 0)
        w = rng.integers(lo, hi, (N, K)).astype(np.int8)
        bias = rng.integers(-(1 << 16), 1 << 16, N).astype(np.int32)
        mult = multipliers(rng, N)
        shift = np.where(np.arange(N) % 2 == 0, 32, rng.integers(33, 46, N)).astype(np.int32)
        w_dev = pack_s4(w) if wbits == 4 else w
        want = spec.linear_s8(a, w, bias, mult, shift)
        x = np.ascontiguousarray(a)
        wd = np.ascontiguousarray(tir_kernels.device_weights(w_dev, K, wbits))
        out = np.zeros((T, N), np.int8)
        assert share(T, N, N, x.ctypes.data, wd.ctypes.data, bias.ctypes.data, mult.ctypes.data,
                     shift.ctypes.data, out.ctypes.data) == 0
        np.testing.assert_array_equal(out, want)


def test_tuned_schedule_of_a_sh32_kernel_is_its_general_twins():
    """--schedule tuned: an sh = 32 kernel (never tuned itself) takes the record of the same shape's general
    kernel -- the MAC loop the knobs schedule is the same."""
    import dataclasses

    from trm_tvm.tune.database import load, tuned_knobs
    from trm_tvm.tune.search import parse_key

    key = sorted(load("cortex-m4").best())[0]
    shape = parse_key(key)
    said = []
    default = strategies.knobs_for("linear", "default")
    general = tuned_knobs("cortex-m4", shape, default, log=said.append)
    sh32 = tuned_knobs("cortex-m4", dataclasses.replace(shape, sh32=True), default, log=said.append)
    assert sh32 == general and not said
