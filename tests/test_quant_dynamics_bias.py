"""dynamics --bias: a constant logit offset injected into the integer head is found (bias share near 1) and undone
by removing the mean error estimated on the other half of the samples; plain quantisation noise is not a bias."""
import numpy as np

from trm_tvm.dynamics import logit_bias
from trm_tvm.quant.fixtures import random_artifact
from trm_tvm.quant.float_ref import forward, random_inputs


def test_injected_offset_is_a_bias_and_removing_it_recovers_accuracy():
    art, params, dims = random_artifact(hidden=8, tokens=4, classes=3, N_sup=2)
    x = random_inputs(dims, 200, 5)
    y = forward(params, dims, x).logits[:, -1].argmax(-1)          # FP is right by construction at the last step
    clean = logit_bias(art, params, x, y)
    assert [s["step"] for s in clean] == [1, 2] and clean[-1]["acc_fp"] == 1.0
    assert clean[-1]["bias_share"] < 0.1 and clean[-1]["acc_quant"] > 0.9
    art.tensors["head.bias"][0] += 10_000                            # every sample's class-0 logit up
    hit = logit_bias(art, params, x, y)[-1]
    assert hit["bias_share"] > 0.9 and hit["acc_quant"] < 0.7
    assert hit["acc_quant_debiased"] >= clean[-1]["acc_quant"] - 0.02
    assert np.isclose(hit["acc_fp"], 1.0)
