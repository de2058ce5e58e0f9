"""CORE-V SIMD in the GAP9 per-core kernels: the exact C emulation of the sum-of-dot-products against numpy, the TIR
kernels that use it bit-exact on 9 QEMU harts at odd sizes, and what TVM 0.27's LLVM emits for them (read from the
assembly; nothing here runs CORE-V code)."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from trm_tvm.compile.hostcc import build_shared
from trm_tvm.gap9 import corev_probe, functional, selftest, tir_kernels
from trm_tvm.gap9.tiling import LinearTiling

KERNELS = functional.TEMPLATE / "kernels"


def test_corev_gives_post_increment_loads_but_no_simd_dot_product():
    plain = corev_probe.inner_loop(corev_probe.PLAIN_MATTR)
    corev = corev_probe.inner_loop(corev_probe.COREV_MATTR)
    assert plain["lb"] == 2 and plain["addi"] >= 1                 # loads + pointer bumps
    assert corev["cv.lb"] == 2 and corev["addi"] == 0              # post-increment loads replace the bumps
    assert sum(corev.values()) < sum(plain.values())
    # no SIMD sum-of-dot-products and no MAC from plain TIR: the cycle model's 4x2 loop needs the cv intrinsics
    assert not any(op.startswith(("cv.sdot", "cv.dot", "cv.mac")) for op in corev)
    assert corev["mul"] == 1 and corev["add"] == 1


def _sdotsp4_lib(tmp_path):
    src = tmp_path / "sdot.c"
    src.write_text('#include "trm_corev.h"\n'
                   "void run(const int32_t *a, const int32_t *b, const int32_t *acc, int32_t *out, int n) {\n"
                   "  for (int i = 0; i < n; i++) out[i] = trm_cv_sdotsp4(a[i], b[i], acc[i]);\n}\n")
    lib = build_shared([src], [KERNELS])
    lib.run.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int]
    return lib


def _sdotsp4_numpy(a, b, acc):
    lanes = lambda x: x.astype("<i4").view(np.int8).reshape(-1, 4).astype(np.int64)  # noqa: E731
    s = acc.astype(np.int64) + (lanes(a) * lanes(b)).sum(axis=1)
    return ((s + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)      # the instruction's 32-bit wrap-around


def test_sdotsp4_emulation_matches_numpy_on_random_and_edge_words(tmp_path):
    rng = np.random.default_rng(3)
    edge = np.array([0, -1, 0x7F7F7F7F, -0x7F7F7F80, 0x01FF80_7F, -0x80000000, 0x7FFFFFFF, 0x00000080], np.int64)
    edge = edge.astype(np.int32)      # -0x7F7F7F80 = 0x80808080: -128 in every lane
    a = np.concatenate([np.repeat(edge, len(edge)), rng.integers(-2**31, 2**31, 4000, dtype=np.int32)])
    b = np.concatenate([np.tile(edge, len(edge)), rng.integers(-2**31, 2**31, 4000, dtype=np.int32)])
    acc = rng.integers(-2**31, 2**31, a.size, dtype=np.int32)
    acc[:len(edge) ** 2] = 2**31 - 1                                   # sums that wrap past INT32_MAX
    out = np.empty_like(a)
    _sdotsp4_lib(tmp_path).run(a.ctypes.data, b.ctypes.data, acc.ctypes.data, out.ctypes.data, a.size)
    np.testing.assert_array_equal(out, _sdotsp4_numpy(a, b, acc))
    m128 = np.int32(-0x7F7F7F80)
    assert _sdotsp4_numpy(np.array([m128]), np.array([m128]), np.array([0], np.int32))[0] == 4 * 128 * 128


def test_simd_form_only_where_rows_start_on_words():
    """int8 weights with n_in % 4 == 0 and int4 with n_in % 8 == 0 compute with the SIMD step in a 2x4 register
    block where the share divides; other shapes keep the strategy's plain form (no extern)."""
    for n_in, wbits in ((36, 8), (40, 4)):
        src, _ = tir_kernels.source([LinearTiling(13, n_in, 29, wbits, 13, 16, True, True)], 8)
        assert src.count("trm_cv_sdotsp4(") >= 8 and '#include "trm_corev.h"' in src
        assert "int32_t* a, int32_t* w" in src
    for n_in, wbits in ((37, 8), (36, 4)):
        src, _ = tir_kernels.source([LinearTiling(13, n_in, 29, wbits, 13, 16, True, True)], 8)
        assert "trm_cv_sdotsp4" not in src and "trm_corev.h" not in src
    assert tir_kernels.block_sizes(2, 12) == (2, 4) and tir_kernels.block_sizes(3, 6) == (1, 2)


def test_s4_word_layout_unpacks_to_the_weights_with_two_masks():
    """The int4 SIMD form's weight layout: (w << 4) & 0xF0F0F0F0 and w & 0xF0F0F0F0 of each word are 16 x weights
    0-3 and 4-7 of its group of 8, in activation order (what the kernel multiplies with the two activation words)."""
    from trm_tvm.quant import spec

    w = np.random.default_rng(4).integers(-8, 8, (5, 24))
    w[0, :8] = [-8, 7, -1, 0, 1, -8, 7, -7]
    words = tir_kernels.s4_word_layout(spec.pack_s4(w), 24).view("<u4").astype(np.uint64)
    lanes = lambda x: (x & 0xF0F0F0F0).astype("<u4").view(np.int8).reshape(5, -1, 4) // 16  # noqa: E731
    assert np.array_equal(np.concatenate([lanes(words << 4), lanes(words)], axis=2).reshape(5, 24), w)
    assert np.array_equal(tir_kernels.device_weights(spec.pack_s4(w), 20, 4), spec.pack_s4(w))   # plain form


@pytest.mark.parametrize("wbits", [8, 4])
def test_simd_dispatcher_on_the_host_is_exact_and_refuses_misaligned_rows(tmp_path, wbits):
    """The generated SIMD kernels and their dispatcher, compiled on the host with the emulation, for a 3 x 40 -> 6
    layer over 2 cores: a token split (2 + 1 rows, blocks 2 x 2 and 1 x 2) and a channel split (3 channels each,
    rows at the tile's stride 6: one strided call per core) both 0 LSB against the spec; -1 for rows not on a
    word or a shape without a kernel."""
    tok, ch = LinearTiling(3, 40, 6, wbits, 3, 6, True, True), LinearTiling(3, 40, 6, wbits, 3, 6, False, True)
    src, hdr = tir_kernels.source([tok, ch], 2)
    assert tir_kernels.share_shapes(ch, 2) == {(3, 3, 6)} and "_os6_gap9share(" in src
    (tmp_path / "trm_gap9_tir.c").write_text(src)
    (tmp_path / "trm_gap9_tir.h").write_text(hdr)
    lib = build_shared([tmp_path / "trm_gap9_tir.c"], [tmp_path, KERNELS])
    share = getattr(lib, tir_kernels.dispatcher_name(40, wbits))
    share.argtypes = [ctypes.c_int] * 3 + [ctypes.c_void_p] * 6
    ops = selftest.linear_operands(3, 40, 6, wbits, seed=5)
    w = np.ascontiguousarray(tir_kernels.device_weights(ops["w"], 40, wbits))
    x = np.zeros(3 * 40 + 4, np.int8)     # word-aligned by numpy; x[1:] is not
    x[:120] = ops["in"].reshape(-1)
    row_bytes = w.shape[1]

    def call(t0, rows, o0, n, out, x_off=0):
        return share(rows, n, 6, x.ctypes.data + 40 * t0 + x_off, w.ctypes.data + o0 * row_bytes,
                     ops["bias"].ctypes.data + 4 * o0, ops["mult"].ctypes.data + 4 * o0,
                     ops["shift"].ctypes.data + 4 * o0, out.ctypes.data + 6 * t0 + o0)

    by_token, by_channel = np.zeros((3, 6), np.int8), np.zeros((3, 6), np.int8)
    assert call(0, 2, 0, 6, by_token) == 0 and call(2, 1, 0, 6, by_token) == 0
    assert call(0, 3, 0, 3, by_channel) == 0 and call(0, 3, 3, 3, by_channel) == 0
    np.testing.assert_array_equal(by_token, ops["expect"])
    np.testing.assert_array_equal(by_channel, ops["expect"])
    assert call(0, 2, 0, 6, by_token, x_off=1) == -1 and call(0, 3, 0, 6, by_token) == -1


@pytest.mark.qemu
@pytest.mark.xdist_group("gap9")
def test_simd_tir_kernels_are_bit_exact_at_odd_sizes(tmp_path):
    """13 tokens x 36 -> 29 channels (ragged token and channel tiles, shares of 1-2 rows and 0-4 channels, blocks
    of 2x4 / 1x4 / 1x2 / 1x1): every tiling run with the hand-written loop and with the SIMD TIR kernels, both
    0 LSB against the integer spec under the compat checker (poisoning at every barrier)."""
    tilings = [LinearTiling(13, 36, 29, 8, 5, 7, False, True),        # channel split, 7 channels over 8 cores
               LinearTiling(13, 36, 29, 8, 5, 16, True, True, True),  # token split, packed weight tiles
               LinearTiling(13, 36, 29, 8, 13, 29, True, False),      # one tile, 13 rows over 8 cores
               LinearTiling(13, 36, 29, 8, 13, 12, False, True, True)]
    res = selftest.run_linear_cases(tilings, tmp_path, seed=11, checks=2, tir=True)
    assert all(r.ok for r in res), [r.error for r in res]
    src = (tmp_path / "trm_gap9_tir.c").read_text()
    assert src.count("trm_cv_sdotsp4(") > 50        # the generated kernels did use the SIMD step


@pytest.mark.qemu
@pytest.mark.xdist_group("gap9")
def test_s4_simd_tir_kernels_are_bit_exact_at_odd_sizes(tmp_path):
    """Packed int4, 13 tokens x 40 -> 29 channels: the SIMD kernels read the word layout (their own weight copy and
    packed tiles built from it), the hand-written loop the spec's layout; both 0 LSB against the spec."""
    tilings = [LinearTiling(13, 40, 29, 4, 5, 7, False, True),
               LinearTiling(13, 40, 29, 4, 5, 16, True, True, True),
               LinearTiling(13, 40, 29, 4, 13, 12, False, False, True)]
    res = selftest.run_linear_cases(tilings, tmp_path, seed=12, checks=2, tir=True)
    assert all(r.ok for r in res), [r.error for r in res]
    assert "st_w_tir" in (tmp_path / "selftest_data.h").read_text()
    assert (tmp_path / "trm_gap9_tir.c").read_text().count("trm_cv_sdotsp4(") > 50


def test_llvm_22_has_no_corev_simd_intrinsic():
    """Why the probe maps the extern to inline assembly: LLVM 22 knows the instruction, not an intrinsic for it
    (if an upgrade adds one, map the extern to it instead)."""
    assert not corev_probe.llvm_has_intrinsic(corev_probe.SDOTSP_INTRINSIC)
    assert corev_probe.llvm_has_intrinsic("llvm.riscv.cv.mac.mac")      # the lookup itself works


@pytest.mark.parametrize("wbits,loads,unpack,sdot,model", [(8, 6, 0, 8, 14), (4, 8, 12, 16, 32)])
def test_simd_kernel_inner_loop_is_the_sdotsp_block(wbits, loads, unpack, sdot, model):
    """The TIR kernel's reduction loop for riscv32 + CORE-V, one weight word of a 2x4 block per step: 2 (int4: 4)
    activation and 4 weight words loaded, int4 unpacked with a shift and two masks per weight word, one
    cv.sdotsp.b per 4 lanes; the rest is loop overhead -- beside the cycle model's 14 (int4: 32) cycles per step."""
    loop = corev_probe.simd_kernel_loop(wbits)
    assert loop["cv.sdotsp.b"] == sdot
    assert sum(v for k, v in loop.items() if k in ("lw", "cv.lw")) == loads
    assert loop["slli"] + loop["and"] == unpack
    overhead = sum(loop.values()) - loads - unpack - sdot
    assert 0 <= overhead <= 4, loop      # pointer bumps + branch: no hardware loop, no post-increment here
    assert corev_probe.model_step_cycles(wbits) == (model, 4 * sdot)


def test_extern_to_inline_asm_rewrites_every_call():
    ll = ("%3 = tail call i32 @trm_cv_sdotsp4(i32 %1, i32 %2, i32 %acc.0), !dbg !7\n"
          "%4 = call i32 @trm_cv_sdotsp4(i32 %1, i32 %x, i32 %3)\n")
    out = corev_probe.extern_to_inline_asm(ll)
    assert "@trm_cv_sdotsp4" not in out and out.count('asm "cv.sdotsp.b $0, $1, $2", "=r,r,r,0"') == 2
    assert "(i32 %1, i32 %2, i32 %acc.0)" in out
    with pytest.raises(ValueError):
        corev_probe.extern_to_inline_asm("ret void")


def test_probe_report_labels_its_figures():
    lines = corev_probe.report()
    assert any("(measured)" in ln and "exact static" in ln and "cv.sdotsp.b x8" in ln for ln in lines)
    assert any("(modeled)" in ln for ln in lines)
