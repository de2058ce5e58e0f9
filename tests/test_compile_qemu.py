"""One full model on the emulated Cortex-M4 (CI slice of the multi-board check): compile with the tvm and the
reference kernels, generate and build the firmware through the project API, run it on QEMU over the RPC session
and require every output bit-exact against the golden model -- logits, prediction, q and halting step -- with
learned halting at a threshold that stops samples at different steps, and with fixed compute."""
import numpy as np
import pytest

from trm_tvm.deploy import deploy
from trm_tvm.project import load_project
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.fixtures import golden_inputs, random_artifact
from trm_tvm.quant.golden import Golden
from trm_tvm.session import run_session

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("qemu-compile")]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    path = tmp_path_factory.mktemp("art") / "w8a8.npz"
    random_artifact(bits=8, seed=7)[0].save(path)
    return path


def inputs_and_threshold(path, n: int, out):
    """Inputs (written as a session .npz) and a q threshold between their first-step q values, so some samples
    stop at step 1 and others later."""
    art = Artifact.load(path)
    _, x = golden_inputs(art, n, seed=3)
    np.savez(out, inputs=x)
    return out, int(np.median(Golden(art).infer(x, all_steps=True).q[:, 0]))


@pytest.mark.parametrize("kernels", ["tvm", "reference"])
def test_full_model_bit_exact_on_qemu_m4(artifact, tmp_path, kernels):
    n = 12
    data, q_thr = inputs_and_threshold(artifact, n, tmp_path / "inputs.npz")
    r = deploy(artifact, "cortex-m4", kernels, work=tmp_path, data=str(data), q_threshold=q_thr)
    if kernels == "tvm":  # the default schedule on a DSP core: SMLAD/SXTB16 really run on the emulated M4, the
        src = (tmp_path / "build" / "model" / "trm_kernels_tvm.c").read_text()   # activations widened in scratch
        assert "__smlad(aw[" in src and "__sxtb16(a[" in src
    s = r["summary"]
    assert s["checked"] == n and s["all_bit_exact"], [i["mismatch"] for i in r["inferences"] if not i["bit_exact"]]
    assert len({i["steps"] for i in r["inferences"]}) >= 2  # halting decisions differed between samples
    fixed = run_session(load_project(tmp_path / "project"), data=str(data), limit=4, fixed_steps=2,
                        artifact=str(artifact))
    assert fixed["summary"]["all_bit_exact"] and {i["steps"] for i in fixed["inferences"]} == {2}


def test_full_model_tvm_helium_bit_exact_on_qemu_m55(tmp_path):
    """The tvm back end on a Helium board: the linear layers take the mve form (VMLADAVA), int8 and packed int4
    (the int16 heads), the token MLP (n_in = 8 tokens < 16) falls back to the dsp form; lut, mul, add and RMSNorm
    their Helium forms; every output bit-exact (learned halting)."""
    path = tmp_path / "w4.npz"
    random_artifact(bits=4, seed=5)[0].save(path)
    n = 6
    data, q_thr = inputs_and_threshold(path, n, tmp_path / "inputs.npz")
    r = deploy(path, "cortex-m55", "tvm", work=tmp_path, data=str(data), q_threshold=q_thr)
    src = (tmp_path / "build" / "model" / "trm_kernels_tvm.c").read_text()
    assert "trm_mve_dot_s4(" in src and "trm_mve_dot_s8(" in src and "trm_mve_rq4_s8(" in src
    for ext in ("lut_s8x16", "mul_s8x4", "add3_s8x4", "add2_s32x4", "sumsq4", "rms_s8x4"):  # element-wise Helium
        assert f"trm_mve_{ext}(" in src, ext
    s = r["summary"]
    assert s["checked"] == n and s["all_bit_exact"], [i["mismatch"] for i in r["inferences"] if not i["bit_exact"]]
