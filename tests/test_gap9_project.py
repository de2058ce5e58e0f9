"""The generated GAP9 project: syntax-checked against our PMSIS prototypes (the SDK view), and its functional build
on 9 QEMU harts matches the golden model with 0 LSB difference (logits, q, steps, prediction) with fixed compute
and with halting, for W8A8 / W4A8, series and token inputs, parallel and shuffled-sequential, tiled and untiled."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trm_tvm.errors import UserError
from trm_tvm.gap9 import functional, project
from trm_tvm.gap9.board import load_gap9
from trm_tvm.quant.fixtures import random_artifact
from trm_tvm.quant.golden import Golden

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("gap9")]
INT32_MAX = 2 ** 31 - 1


def _median_step1_q(art, inputs) -> int:
    """A threshold that stops about half the inputs after step 1, so both halting outcomes are exercised."""
    q1 = Golden(art).infer(inputs, q_thr=INT32_MAX, all_steps=True).q[:, 0]
    return int(np.median(q1))


def _run(tmp_path, art, n_inputs=12, board=None, sequential=False, checks=1, **gen):
    inputs = project.quantized_inputs(art, n_inputs, seed=5)
    thr = _median_step1_q(art, inputs)
    plan = project.generate_project(art, tmp_path / "proj", inputs, board=board, q_threshold=thr, **gen)
    project.syntax_check(tmp_path / "proj")
    elf = project.build_functional(tmp_path / "proj", checks=checks, sequential=sequential)
    r = functional.run(elf, timeout_s=300)
    assert r.exit_code == 0 and r.compat_error is None, r.output[-2000:]
    log = project.parse_log(r.output)
    assert log["end"] == 0
    return plan, log, project.compare_with_golden(art, inputs, log, thr)


@pytest.mark.parametrize("kw", [
    dict(bits=8),
    dict(bits=4),
    dict(bits=8, input_kind="tokens", tokens=9, classes=10, vocab=10),     # Sudoku-like: per-token logits
], ids=["w8a8-series", "w4a8-series", "w8a8-tokens"])
def test_generated_project_is_bit_exact(tmp_path, kw):
    base = dict(hidden=16, tokens=8, classes=5, layers=2, n=2, T=2, N_sup=3, seed=11)
    art, _, _ = random_artifact(**{**base, **kw})
    plan, log, cmp = _run(tmp_path, art)
    assert cmp["runs"] == 24 and cmp["mismatches"] == 0, cmp["first_mismatch"]
    steps = {v["steps"] for (i, mode), v in log["runs"].items() if mode == "H"}
    assert len(steps) > 1, "halting threshold should stop some inputs early and run others longer"
    calls = len(art.calls)
    assert log["phases"][1]["tasks"] >= 24 * calls          # one cluster task per net call
    assert plan["l1_peak"] <= load_gap9().l1_budget


def test_tiled_model_in_small_l1_is_bit_exact_sequential(tmp_path):
    """With a 3 kB L1 budget every linear layer is split into several tiles (ragged ones too); run in the shuffled
    sequential fallback with all checks, including L1 poisoning at every barrier."""
    art, _, _ = random_artifact(hidden=24, tokens=12, classes=3, layers=1, n=1, T=2, N_sup=2, seed=3)
    board = dataclasses.replace(load_gap9(), l1_reserve_bytes=load_gap9().l1_bytes - 3072)
    plan, _, cmp = _run(tmp_path, art, n_inputs=4, board=board, sequential=True, checks=2)
    assert cmp["mismatches"] == 0, cmp["first_mismatch"]
    assert all(p["l1_bytes"] <= 3072 for p in plan["linear"].values())
    assert sum(p["n_tiles"] > 1 for p in plan["linear"].values()) >= 3


def test_model_too_big_for_l2_is_refused_with_one_line(tmp_path):
    art, _, _ = random_artifact(hidden=16, tokens=8, layers=1, n=1, T=1, N_sup=1)
    board = dataclasses.replace(load_gap9(), l2_usable_bytes=2000)
    with pytest.raises(UserError) as e:
        project.generate_project(art, tmp_path / "p", project.quantized_inputs(art, 1, 0), board=board)
    assert "L2" in e.value.what and "2000" in e.value.what and "\n" not in e.value.line()


def test_layer_that_cannot_fit_l1_is_refused(tmp_path):
    art, _, _ = random_artifact(hidden=16, tokens=8, layers=1, n=1, T=1, N_sup=1)
    board = dataclasses.replace(load_gap9(), l1_reserve_bytes=load_gap9().l1_bytes - 64)
    with pytest.raises(UserError, match="does not fit GAP9 L1"):
        project.generate_project(art, tmp_path / "p", project.quantized_inputs(art, 1, 0), board=board)


def test_golden_comparison_detects_a_wrong_logit(tmp_path):
    """The checker itself can fail: one flipped logit LSB in the device log is a mismatch."""
    art, _, _ = random_artifact(hidden=8, tokens=4, classes=3, layers=1, n=1, T=1, N_sup=2, patch=4, channels=2)
    inputs = project.quantized_inputs(art, 2, seed=1)
    ref = Golden(art).infer(inputs, q_thr=INT32_MAX)
    runs = {(i, m): {"steps": int(ref.steps[i]), "q": int(ref.q[i, ref.steps[i] - 1]), "pred": int(ref.pred[i]),
                     "logits": ref.logits[i].astype(np.int16).copy()} for i in range(2) for m in "FH"}
    log = {"runs": runs}
    assert project.compare_with_golden(art, inputs, log, INT32_MAX)["mismatches"] == 0
    runs[(1, "F")]["logits"][0] ^= 1
    assert project.compare_with_golden(art, inputs, log, INT32_MAX)["mismatches"] == 1


def test_deploy_cli_writes_a_labelled_report(tmp_path):
    """python -m trm_tvm.gap9 deploy: 0 LSB on every run, every number labelled, published figures beside."""
    from trm_tvm.gap9.__main__ import main

    art, _, _ = random_artifact(hidden=16, tokens=8, layers=1, n=1, T=2, N_sup=2, seed=4)
    art.save(tmp_path / "a.npz")
    assert main(["deploy", "--artifact", str(tmp_path / "a.npz"), "--out", str(tmp_path / "d"), "--inputs", "6"]) == 0
    import json

    r = json.loads((tmp_path / "d" / "gap9_deploy.json").read_text())
    assert r["functional"]["golden"]["bit_exact"] and r["functional"]["golden"]["runs"] == 12
    assert r["modeled"]["fixed_compute"]["latency_ms"]["provenance"] == "modeled"
    assert r["functional"]["phases"]["net"]["counter"]["provenance"] == "emulated"
    assert r["memory"]["l1_peak"]["value"] <= r["memory"]["l1_budget"]
    assert r["published"]["label"] == "published" and r["published"]["pulpnn_int8_macs_per_cycle_8cores"]["value"] == 15.5


def test_deploy_cli_bad_artifact_is_one_line(tmp_path, capsys):
    from trm_tvm.gap9.__main__ import main

    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert main(["deploy", "--artifact", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_shared_rpc_protocol_on_the_functional_build(tmp_path):
    """The GAP9 firmware built with the shared RPC server (rpc_server.c of the Cortex-M template, unchanged) answers
    the shared client (trm_tvm.rpc) over the QEMU UART socket: LOAD_INPUT, RUN (fixed compute and halting),
    READ_OUTPUT -- 0 LSB against the golden model."""
    art, _, _ = random_artifact(hidden=16, tokens=8, classes=5, layers=1, n=1, T=2, N_sup=3, seed=8)
    inputs = project.quantized_inputs(art, 3, seed=2)
    thr = _median_step1_q(art, inputs)
    project.generate_project(art, tmp_path / "proj", inputs)
    runs = [(INT32_MAX, 3), (thr, 3), (INT32_MAX, 1)]
    got = project.run_over_rpc(tmp_path / "proj", inputs, runs)
    g = Golden(art)
    for r, (q_thr, steps) in enumerate(runs):
        ref = g.infer(inputs, q_thr=q_thr, max_steps=steps)
        for i in range(len(inputs)):
            k = int(ref.steps[i])
            assert got[(i, r)]["status"] == 0 and got[(i, r)]["steps"] == k
            assert got[(i, r)]["q"] == int(ref.q[i, k - 1]) and got[(i, r)]["pred"] == int(ref.pred[i])
            np.testing.assert_array_equal(got[(i, r)]["logits"], ref.logits[i].reshape(-1))


def test_syntax_check_fails_on_a_call_the_pmsis_prototypes_do_not_declare(tmp_path):
    art, _, _ = random_artifact(hidden=8, tokens=4, classes=3, layers=1, n=1, T=1, N_sup=1, patch=4, channels=2)
    project.generate_project(art, tmp_path / "p", project.quantized_inputs(art, 1, 0))
    project.syntax_check(tmp_path / "p")
    model_c = tmp_path / "p" / "src" / "trm_gap9_model.c"
    model_c.write_text(model_c.read_text() + "\nvoid f(void) { pi_cl_team_fork_all(0); }\n")
    with pytest.raises(RuntimeError, match="pi_cl_team_fork_all"):
        project.syntax_check(tmp_path / "p")


def test_shared_deploy_cli_dispatches_gap9(tmp_path):
    """python -m trm_tvm.deploy --board gap9 runs this deploy and writes its JSON to --json."""
    import json

    from trm_tvm.deploy import main

    art, _, _ = random_artifact(hidden=8, tokens=4, classes=3, layers=1, n=1, T=1, N_sup=2, patch=4, channels=2)
    art.save(tmp_path / "a.npz")
    rc = main(["--board", "gap9", "--artifact", str(tmp_path / "a.npz"), "--limit", "2", "--json",
               str(tmp_path / "r.json"), "--work", str(tmp_path / "w")])
    r = json.loads((tmp_path / "r.json").read_text())
    assert rc == 0 and r["board"] == "gap9" and r["functional"]["golden"]["runs"] == 4


def _token_split(art, tile_div: int, split_tokens: bool = True, tile_out: int | None = None) -> dict:
    from trm_tvm.gap9 import tune
    return {n: dataclasses.replace(t, split_tokens=split_tokens, tile_tokens=-(-t.tokens // tile_div),
                                   tile_out=min(tile_out or t.n_out, t.n_out))
            for n, t in tune.overrides(art, load_gap9(), "default").items()}


@pytest.mark.parametrize("bits,tile_div,split_tokens,tile_out", [(8, 1, True, None), (4, 2, True, None),
                                                                 (8, 2, False, 20), (4, 2, False, 20)],
                         ids=["w8a8-tokens-one-tile", "w4a8-tokens-ragged", "w8a8-channels-ragged",
                              "w4a8-channels-ragged"])
def test_tir_generated_per_core_kernels_are_bit_exact(tmp_path, bits, tile_div, split_tokens, tile_out):
    """The linear layers computing with the kernels lowered from the TIR linear strategy (trm_tvm.gap9.tir_kernels):
    one static kernel per distinct core share (a channel split: rows at the tile's stride, the plain form one row per
    call), 0 LSB against the golden model."""
    from trm_tvm.gap9 import tir_kernels

    art, _, _ = random_artifact(hidden=24, tokens=12, classes=4, layers=1, n=1, T=2, N_sup=2, seed=9, bits=bits)
    ov = _token_split(art, tile_div, split_tokens, tile_out)
    plan, _, cmp = _run(tmp_path, art, n_inputs=4, linear_overrides=ov, tir_kernels=True)
    assert cmp["mismatches"] == 0 and cmp["runs"] == 8, cmp["first_mismatch"]
    assert plan["linear_compute"] == "tir"
    # n_in 8, 12, 24, 48: every int8 row starts on a word; int4 n_in 12 keeps the plain form beside the SIMD ones
    assert {lin["per_core"] for lin in plan["linear"].values()} == ({"simd"} if bits == 8 else {"simd", "plain"})
    if bits == 4:      # the generated int4 kernels read their own weight copy in the CORE-V word layout
        assert "t_cv_" in (tmp_path / "proj" / "src" / "trm_gap9_model.c").read_text()
    src = (tmp_path / "proj" / "src" / "trm_gap9_tir.c").read_text()
    shapes = {(t.n_in, t.wbits, *rns) for t in ov.values() for rns in tir_kernels.share_shapes(t, 8)}
    if split_tokens:
        assert {r for _, _, r, _, _ in shapes} >= ({1, 2} if tile_div == 1 else {1})     # rows per core differ
        assert all(n == st for *_, n, st in shapes)
    else:   # every row of a (ragged) token tile, ragged channel shares, at the (ragged) tile width
        assert min(r for _, _, r, _, _ in shapes) > 1 and len({n for *_, n, _ in shapes}) > 2
        assert any(n != st for *_, n, st in shapes)
    calls = {(k, w, *tir_kernels.kernel_calls(r, n, st, k, w)) for k, w, r, n, st in shapes}
    assert all(f"{tir_kernels.kernel_name(r, k, n, w, st)}(" in src for k, w, r, n, st in calls)
    if not split_tokens:   # SIMD shares in one strided call; the plain int4 form (n_in 12) one row per call
        assert any(st and r > 1 for k, w, r, n, st in calls)
        assert bits == 8 or any(r == 1 and not tir_kernels.uses_simd(k, w) for k, w, r, n, st in calls)


def test_a_share_without_its_kernel_stops_the_layer(tmp_path, monkeypatch):
    """The generated kernels really run: drop one share shape from the dispatchers and the model reports an error."""
    from trm_tvm.gap9 import tir_kernels

    art, _, _ = random_artifact(hidden=24, tokens=12, classes=4, layers=1, n=1, T=2, N_sup=2, seed=9)
    real = tir_kernels.share_shapes
    monkeypatch.setattr(tir_kernels, "share_shapes", lambda t, cores: set(sorted(real(t, cores))[1:]))
    xs = project.quantized_inputs(art, 1, seed=5)
    project.generate_project(art, tmp_path / "p", xs, linear_overrides=_token_split(art, 1), tir_kernels=True)
    r = functional.run(project.build_functional(tmp_path / "p"), timeout_s=120)
    assert project.parse_log(r.output)["end"] not in (None, 0), r.output[-500:]
