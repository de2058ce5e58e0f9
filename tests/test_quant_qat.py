"""QAT forward == golden model (0 LSB through a whole inference); gradients reach every trained parameter."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trm_tvm.config import ModelConfig  # noqa: E402
from trm_tvm.model import TRM, Shape  # noqa: E402
from trm_tvm.quant import float_ref as fr  # noqa: E402
from trm_tvm.quant import spec  # noqa: E402
from trm_tvm.quant.fakequant import ExactForward  # noqa: E402
from trm_tvm.quant.golden import Golden  # noqa: E402
from trm_tvm.quant.ptq import QuantConfig, quantise, scales_of  # noqa: E402
from trm_tvm.quant.qat import QatSettings, device_batch, numpy_params, qat_step  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: torch's thread pool only adds contention on the shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(bits=8, mode="shared"):
    cfg = ModelConfig(hidden=12, layers=2, n=2, T=2, N_sup=3)
    shape = Shape(tokens=4, classes=3, channels=2, patch=4)
    torch.manual_seed(0)
    model = TRM(cfg, shape)
    with torch.no_grad():
        model.halt.weight.normal_()
    dims = fr.Dims.from_model(cfg, shape)
    x = np.random.default_rng(0).normal(size=(24, 2, 16))
    qc = QuantConfig(weight_bits=bits, state_scale_mode=mode, act_observer="minmax", calib_batch=24)
    art = quantise(numpy_params(model), dims, x, qc)
    return model, dims, art, qc, x


@pytest.mark.parametrize("bits,mode", [(8, "shared"), (4, "per_step")])
def test_qat_forward_is_the_golden_model(bits, mode):
    model, dims, art, qc, x = tiny(bits, mode)
    fx = ExactForward(art, model.state_dict(keep_vars=True))
    q_in, real_in = device_batch(scales_of(art), dims, x[:8])
    gold = Golden(art).infer(q_in, q_thr=spec.INT32_MAX, all_steps=True)
    xs = fx.prologue(q_in, real_in)
    y, z = fx.initial_state(xs)
    s_logit, s_q = art.header["io"]["logit_scale"], art.header["halting"]["q_scale"]
    for k in range(dims.N_sup):
        y, z, lg, q = fx.supervision_step(xs, y, z)
        assert np.array_equal(lg[0], gold.step_logits[:, k])                      # 0 LSB
        assert np.array_equal(q[0], gold.q[:, k])
        assert np.array_equal(np.round(lg[1].detach().numpy() / s_logit), lg[0])  # the loss sees those values
        assert np.array_equal(np.round(q[1].detach().numpy() / s_q), q[0])


def test_qat_step_trains_every_parameter():
    model, dims, art, qc, x = tiny()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    qs = QatSettings(batch_size=8)
    stats = qat_step(model, dims, scales_of(art), qc, qs, opt, x[:8], np.arange(8) % 3, 0.5)
    assert np.isfinite(stats["loss"])
    unchanged = {k for k, v in model.named_parameters() if torch.equal(v, before[k])}
    assert unchanged == set()                     # y_init / z_init are fixed buffers, not parameters
