"""The generated model library (AoT executor + kernels) against the golden model on the host, 0 LSB.

Random-weight artifacts (trm_tvm.quant.fixtures) of every kind the device runs -- W8A8 with a shared state
scale, W4A8 with per-step state scales, mixed 4/8-bit weights, token input with per-token logits -- compiled
with the reference and the tvm kernels, built with the host gcc, run through trm_init/trm_run and compared
with trm_tvm.quant.golden: logits, predictions, q and halting steps, for learned halting at several
thresholds (so samples stop at different steps) and for fixed compute.
"""
import subprocess

import numpy as np
import pytest

from trm_tvm.boards import load_board
from trm_tvm.compile.__main__ import main as compile_main
from trm_tvm.compile.driver import check_fit, compile_artifact
from trm_tvm.compile.hostrun import HostModel
from trm_tvm.compile.importer import section_ops
from trm_tvm.errors import UserError
from trm_tvm.jsonio import read_json
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.fixtures import golden_inputs, random_artifact
from trm_tvm.quant.golden import Golden
from trm_tvm.quant.spec import INT32_MAX, INT32_MIN

ARTIFACTS = {
    "w8a8": dict(bits=8),
    "w4a8_per_step": dict(bits=4, state_scale_mode="per_step", seed=3),
    "mixed": dict(bits={"*.tok.*": 4, "default": 8}, seed=4, hidden=12, tokens=6),
    "tokens": dict(input_kind="tokens", tokens=9, hidden=8, seed=2, N_sup=3),
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("artifacts")
    out = {}
    for name, kw in ARTIFACTS.items():
        art, _, _ = random_artifact(**kw)
        art.save(d / f"{name}.npz")
        out[name] = d / f"{name}.npz"
    return out


def thresholds(golden: Golden, inp: np.ndarray) -> list[int]:
    """Learned-halting thresholds that split the samples over different stopping steps, plus the extremes."""
    q = golden.infer(inp, all_steps=True).q
    return [golden.art.header["halting"]["q_thr"], int(np.median(q[:, 0])), int(np.percentile(q, 75)), INT32_MIN]


COMBOS = ([(k, "cortex-m4", kind) for k in ("reference", "tvm") for kind in ARTIFACTS]
          + [("handwritten", b, kind) for b in ("cortex-m4", "cortex-m55") for kind in ("w8a8", "w4a8_per_step")])


@pytest.mark.parametrize("kernels,board,kind", COMBOS)
def test_host_bit_exact(artifacts, tmp_path, kernels, board, kind):
    """handwritten: helper E's dsp (M4) / mve (M55) linear kernels, built with their exact host emulations."""
    build = compile_artifact(artifacts[kind], board, kernels, tmp_path / "build")
    model = HostModel(tmp_path / "build")
    model_art = Artifact.load(artifacts[kind])
    golden = Golden(model_art)
    _, inp = golden_inputs(model_art, 40, seed=11)
    n_sup = model_art.schedule["N_sup"]
    stopped_at = set()
    for q_thr, max_steps in [(t, n_sup) for t in thresholds(golden, inp)] + [(INT32_MAX, n_sup), (INT32_MAX, 2)]:
        g = golden.infer(inp, q_thr=q_thr, max_steps=max_steps)
        h = model.run(inp, q_thr, max_steps)
        np.testing.assert_array_equal(h.logits, g.logits.reshape(len(inp), -1), err_msg=f"logits q_thr={q_thr}")
        np.testing.assert_array_equal(h.steps, g.steps, err_msg=f"steps q_thr={q_thr}")
        last_q = g.q[np.arange(len(inp)), g.steps - 1]
        np.testing.assert_array_equal(h.q, last_q)
        if not build["io"]["per_token"]:
            np.testing.assert_array_equal(h.pred, g.pred)
        stopped_at |= set(g.steps.tolist())
    assert len(stopped_at) >= 2  # halting really varied


def test_memory_plan_near_lower_bound(artifacts, tmp_path):
    for kind, path in artifacts.items():
        for kernels in ("reference", "tvm"):
            compile_artifact(path, "cortex-m4", kernels, tmp_path / kind)
            plan = read_json(tmp_path / kind / "memory_plan.json")
            assert plan["lower_bound_bytes"] <= plan["arena_bytes"] <= 1.25 * plan["lower_bound_bytes"], (kind, plan)


def test_naive_schedule_scratch_is_planned(artifacts, tmp_path):
    compile_artifact(artifacts["w8a8"], "cortex-m4", "tvm", tmp_path / "n", schedule="naive")
    plan = read_json(tmp_path / "n" / "memory_plan.json")
    assert any(t.endswith(".scratch") for t in plan["sections"]["net"]["tensors"])
    art = Artifact.load(artifacts["w8a8"])
    _, inp = golden_inputs(art, 10, seed=1)
    g = Golden(art).infer(inp)
    h = HostModel(tmp_path / "n").run(inp, art.header["halting"]["q_thr"], art.schedule["N_sup"])
    np.testing.assert_array_equal(h.logits, g.logits)


def _text_bytes(build_dir) -> int:
    obj = build_dir / "model.o"
    subprocess.run(["gcc", "-std=c99", "-O2", "-c", "-I", str(build_dir / "model"), str(build_dir / "model" / "trm_model.c"),
                    "-o", str(obj)], check=True)
    out = subprocess.run(["size", str(obj)], capture_output=True, text=True, check=True).stdout.splitlines()[1]
    return int(out.split()[0])


def test_flash_does_not_grow_with_recursion(tmp_path):
    sizes = []
    for n, T, N_sup in [(2, 2, 4), (4, 3, 8), (6, 3, 16)]:
        art, _, _ = random_artifact(n=n, T=T, N_sup=N_sup, seed=5)
        art.save(tmp_path / f"a{n}.npz")
        b = compile_artifact(tmp_path / f"a{n}.npz", "cortex-m4", "reference", tmp_path / f"b{n}")
        sizes.append((sum(b["weight_bytes"].values()), _text_bytes(tmp_path / f"b{n}")))
    assert len({w for w, _ in sizes}) == 1, sizes
    # code differs only in loop-bound constants (one net call alone is ~2 KB of calls)
    assert max(t for _, t in sizes) - min(t for _, t in sizes) <= 64, sizes


def test_one_line_errors(artifacts, tmp_path, capsys):
    assert compile_main(["--artifact", str(artifacts["w8a8"]), "--board", "no-such-board", "--out", str(tmp_path)]) == 2
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    assert compile_main(["--artifact", str(tmp_path / "bad.npz"), "--board", "cortex-m4", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    with pytest.raises(UserError, match="model too big for cortex-m33: arena 300000 bytes"):
        check_fit(load_board("cortex-m33"), 300000, 1000)
    art = Artifact.load(artifacts["w8a8"])
    art.graph["net"][1]["op"] = "softmax"
    with pytest.raises(UserError, match="unsupported op 'softmax'"):
        section_ops(art, "net")
