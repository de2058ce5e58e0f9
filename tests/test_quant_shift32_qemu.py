"""The committed shift-32 artifact (artifacts/ecg_w8a8_s32.npz: every linear multiplier at sh = 32) on the emulated
Cortex-M4 with every kernel back end, and on the Cortex-M55 with the tvm one (Helium): each output bit-exact against the golden model -- logits, prediction, q and
halting step -- with learned halting at a threshold that stops samples at different steps. The tvm back end must
take its sh = 32 kernels (SMMULR, no shift argument); the hand-written and reference ones handle sh = 32 as any
shift (the hand-written requantisation has its own SMMULR path)."""
from pathlib import Path

import numpy as np
import pytest

from trm_tvm.deploy import deploy
from trm_tvm.quant.artifact import Artifact
from trm_tvm.quant.fixtures import golden_inputs
from trm_tvm.quant.golden import Golden

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("qemu-compile")]

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "ecg_w8a8_s32.npz"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four inputs and a q threshold between their first-step q values (some stop at step 1, others later)."""
    art = Artifact.load(ARTIFACT)
    assert art.numerics["linear_multipliers"] == "shift32"
    _, x = golden_inputs(art, 4, seed=11)
    path = tmp_path_factory.mktemp("s32") / "inputs.npz"
    np.savez(path, inputs=x)
    q1 = Golden(art).infer(x, all_steps=True).q[:, 0]
    return path, int(np.median(q1)) + 1


@pytest.mark.parametrize("kernels", ["tvm", "reference", "handwritten"])
def test_shift32_artifact_bit_exact_on_qemu_m4(data, tmp_path, kernels):
    inputs, q_thr = data
    r = deploy(ARTIFACT, "cortex-m4", kernels, work=tmp_path, data=str(inputs), q_threshold=q_thr)
    s = r["summary"]
    assert s["checked"] == 4 and s["all_bit_exact"], [i["mismatch"] for i in r["inferences"] if not i["bit_exact"]]
    assert len({i["steps"] for i in r["inferences"]}) >= 2     # halting decisions differed between samples
    if kernels == "tvm":
        src = (tmp_path / "build" / "model" / "trm_kernels_tvm.c").read_text()
        assert "trm_linear_s8_sh32_" in src and "trm_smmulr(" in src
        assert "trm_linear_s8_16x" not in src                     # no general-shift kernel for the net's layers


def test_shift32_artifact_tvm_helium_bit_exact_on_qemu_m55(data, tmp_path):
    """On Helium the sh = 32 kernels requantise 4 tokens per VRMULH (trm_mve_rq4_s8_sh32): the real instructions,
    not the host emulation, bit-exact."""
    inputs, q_thr = data
    r = deploy(ARTIFACT, "cortex-m55", "tvm", work=tmp_path, data=str(inputs), q_threshold=q_thr)
    s = r["summary"]
    assert s["checked"] == 4 and s["all_bit_exact"], [i["mismatch"] for i in r["inferences"] if not i["bit_exact"]]
    assert "trm_mve_rq4_s8_sh32(" in (tmp_path / "build" / "model" / "trm_kernels_tvm.c").read_text()
