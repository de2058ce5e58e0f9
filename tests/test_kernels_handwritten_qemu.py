"""The hand-written kernels on the emulated boards (dsp on the Cortex-M4, mve on the Cortex-M55), 0 LSB.

Two device harnesses. (1) This back end's semihosting firmware (project_templates/kernels/handwritten/selftest/)
draws 1000 cases per kernel from a seeded xorshift32 on the device -- 1-9 tokens x 1-100 inputs (a third at the
unrolled lengths 16-96) x 1-20 outputs (every blocking tail; a third of the calls with their rows' multipliers
encoded at sh = 32: the dsp asm's SMMULR runs), extreme inputs, rounding ties, negative multipliers, shifts < 32,
odd n_in for s4, buffers
offset 0-3 bytes -- runs the hand-written kernel and its ref twin, s8 and packed s4, then 1000 cases of the
element-wise kernels (add_s8/s32, mul, lut, rmsnorm: dsp or mve; transpose: dsp on both, up to 48 x 48 with
sentinels around its output; own seed) beside their ref twins, and prints CRC-32s; the host regenerates each case
and compares with trm_tvm.quant.spec. (2) The kernels linked into a project firmware, through the project template's
RPC SELF_TEST (shared PRNG, CRC against the spec): the production path.
"""
import json
import re

import numpy as np
import pytest

import stub_model
from trm_tvm import project as proj
from trm_tvm.boards import load_board
from trm_tvm.compile.backends import handwritten_bench as hb
from trm_tvm.project import selftest
from trm_tvm.session import Session

CASES = 1000


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["cortex-m4", "cortex-m55"])
def test_selftest_bit_exact_on_device(board, tmp_path):
    b = load_board(board)
    out = hb.run_qemu(b, hb.build_firmware(b, tmp_path, cases=CASES), timeout=300)
    res = hb.check_selftest(out, CASES)
    assert res["mismatches"] == [], res["mismatches"][:10]
    assert res["saturated_outputs"] > 1000  # the saturation edges were exercised
    ops = hb.check_ops_selftest(out, CASES)  # add_s8/s32, mul, lut, rmsnorm, transpose: hw and ref, same vectors
    assert ops["mismatches"] == [], ops["mismatches"][:10]
    assert ops["saturated_outputs"] > 1000



SHAPES, BATCHES = 25, 8   # 200 vectors per kernel through the RPC path (the 1000 above are in harness (2))


@pytest.mark.qemu
@pytest.mark.parametrize("board,variant", [("cortex-m4", "dsp"), ("cortex-m55", "mve")])
def test_project_selftest_bit_exact(board, variant, tmp_path):
    """The same kernels linked into a project firmware, through its RPC SELF_TEST (device-side PRNG, CRC vs the
    spec): 25 odd shapes x 8 seeded batches, s8 and s4."""
    p = proj.generate_project(stub_model.make_build_dir(tmp_path / "b", board, handwritten=(variant,)), board,
                              tmp_path / "p")
    proj.build(p)
    rng = np.random.default_rng(11)
    wanted = {f"trm_linear_s8_{variant}", f"trm_linear_s4_{variant}"}
    with Session(p) as s:
        ents = selftest.entries(p.info["selftest_variants"])
        tested = 0
        for i, (e, (name, present)) in enumerate(zip(ents, s.client.kernels())):
            if name not in wanted:
                continue
            assert present, f"{name} not linked"
            for _ in range(SHAPES):
                shape = [int(rng.integers(1, 8)), int(rng.integers(1, 40)) * 2, int(rng.integers(1, 24))]
                res = selftest.run_selftest(s.client, i, e, shape, seed=int(rng.integers(1, 1 << 30)),
                                             batches=BATCHES)
                bad = [r.mismatch for r in res if not r.ok]
                assert not bad, f"{name} {shape}: {bad[:3]}"
                tested += len(res)
        assert tested == 2 * SHAPES * BATCHES


def shift32_artifact(hidden: int, tokens: int, bits: int, seed: int):
    """fixtures.random_artifact with the linear multipliers encoded at sh = 32 (quantize --linear-multipliers
    shift32)."""
    from trm_tvm.quant.fixtures import random_dims
    from trm_tvm.quant.float_ref import random_inputs, random_params
    from trm_tvm.quant.ptq import QuantConfig, quantise

    dims = random_dims(hidden, tokens)
    qc = QuantConfig(name="random", weight_bits=bits, act_bits=8, state_bits=8, per_channel=True,
                     act_observer="minmax", state_scale_mode="shared", calib_batch=32, seed=seed,
                     linear_multipliers="shift32")
    return quantise(random_params(dims, seed), dims, random_inputs(dims, 32, seed + 1), qc, 0.5,
                    provenance={"source": {"random_seed": seed}, "calibration": {"data": "random", "samples": 32}})


@pytest.mark.qemu
@pytest.mark.xdist_group("qemu-compile")
@pytest.mark.parametrize("board,bits,multipliers", [("cortex-m4", 8, "normalised"), ("cortex-m55", 4, "normalised"),
                                                    ("cortex-m4", 8, "shift32")])
def test_full_model_with_handwritten_kernels_bit_exact(board, bits, multipliers, tmp_path):
    """A whole model compiled with --kernels handwritten (the board's dsp/mve linear kernels in the AoT executor),
    run over the RPC session: logits, prediction, q and halting step bit-exact against the golden model. shift32:
    the linear multipliers at sh = 32 and n_in 16 / 32 / 64 (token MLP, channel MLP), so the dsp asm's SMMULR runs
    carry the model."""
    from trm_tvm.deploy import deploy
    from trm_tvm.quant.fixtures import random_artifact

    art = tmp_path / f"w{bits}a8.npz"
    if multipliers == "shift32":
        a = shift32_artifact(hidden=32, tokens=16, bits=bits, seed=5)
        assert all((a.tensors[f"net.layers.{i}.{mlp}.{p}.shift"] == 32).all()
                   for i in (0, 1) for mlp in ("tok", "ch") for p in ("gate", "up", "down"))
        a.save(art)
    else:
        random_artifact(hidden=24, tokens=8, bits=bits, seed=5)[0].save(art)
    r = deploy(art, board, "handwritten", work=tmp_path / "work", limit=4)
    s = r["summary"]
    assert s["checked"] == 4 and s["all_bit_exact"], [i["mismatch"] for i in r["inferences"] if not i["bit_exact"]]
    model_c = (tmp_path / "work" / "build" / "model" / "trm_model.c").read_text()
    assert f"trm_linear_s{bits}_{'mve' if board == 'cortex-m55' else 'dsp'}(" in model_c
    # the build unrolls exactly the k lengths (n_in, 8th argument) of the model's linear calls, for its dtype only
    n_ins = {int(args.split(",")[7]) for args in re.findall(r"trm_linear_s\d_(?:dsp|mve)\(([^;]*)\);", model_c)}
    want = sum(1 << (n // 16) for n in n_ins if n % 16 == 0 and n <= 96)
    defines = json.loads((tmp_path / "work" / "build" / "build.json").read_text())["defines"]
    assert (defines[f"TRM_HW_S{bits}_KS"], defines[f"TRM_HW_S{12 - bits}_KS"]) == (want, 0), n_ins
    if multipliers == "shift32":
        assert n_ins >= {16, 32, 64} and want & (1 << 3 | 1 << 6) == 0   # 48 and 96 fall to the rolled loops
