"""TRM semantics: parameter names of the contract, 1-step gradient over the last cycle, detach between steps."""
import pytest
import torch

from trm_tvm.config import ModelConfig
from trm_tvm.errors import UserError
from trm_tvm.model import EMA, TRM, Shape

SERIES = Shape(tokens=8, classes=3, channels=2, patch=4)


def make(n=1, T=2, N_sup=2, shape=SERIES, **kw):
    torch.manual_seed(0)
    return TRM(ModelConfig(hidden=16, n=n, T=T, N_sup=N_sup, **kw), shape)


def test_parameter_names_and_shapes_follow_the_contract():
    m = make()
    sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    L, D, H, Ht, C, P = 8, 16, 32, 16, 2, 4
    expect = {"embed.weight": (D, C * P), "embed.bias": (D,), "pos": (L, D), "y_init": (D,), "z_init": (D,),
              "head.weight": (3, D), "head.bias": (3,), "halt.weight": (1, D), "halt.bias": (1,)}
    for i in range(2):
        p = f"net.layers.{i}."
        expect.update({p + "tok.gate.weight": (Ht, L), p + "tok.up.weight": (Ht, L), p + "tok.down.weight": (L, Ht),
                       p + "norm1.weight": (D,), p + "ch.gate.weight": (H, D), p + "ch.up.weight": (H, D),
                       p + "ch.down.weight": (D, H), p + "norm2.weight": (D,)})
    assert sd == expect
    tok = TRM(ModelConfig(hidden=16), Shape(tokens=81, classes=9, vocab=10, per_token=True))
    assert tuple(tok.embed.weight.shape) == (10, 16) and "embed.bias" not in tok.state_dict()


def test_net_call_order_and_only_last_cycle_builds_a_graph():
    m = make(n=2, T=3, N_sup=1)
    calls = []
    m.net.register_forward_hook(lambda mod, inp, out: calls.append((len(inp), out.requires_grad)))
    m(torch.randn(4, 2, 32))
    # per cycle: n=2 z-updates with 3 inputs, then a y-update with 2 inputs; only the last cycle has a graph
    assert [c[0] for c in calls] == [3, 3, 2] * 3
    assert [c[1] for c in calls] == [False] * 6 + [True] * 3


@pytest.mark.parametrize("T", [1, 2])
def test_initial_state_is_fixed_not_trained(T):
    """y_init / z_init are persistent buffers (as in the paper's code): saved under their contract names, never
    handed to an optimiser, unchanged by training even when T == 1 would let a gradient reach them."""
    m = make(T=T, N_sup=2)
    assert {"y_init", "z_init"} <= set(m.state_dict())
    assert {"y_init", "z_init"}.isdisjoint(name for name, _ in m.named_parameters())
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sum(out.logits.sum() for out in m(torch.randn(4, 2, 32))).backward()
    opt.step()
    assert torch.equal(m.y_init, before["y_init"]) and torch.equal(m.z_init, before["z_init"])
    assert not torch.equal(m.net.layers[0].ch.up.weight, before["net.layers.0.ch.up.weight"])
    assert m.num_params() == sum(v.numel() for v in before.values())     # the device stores them all


def test_state_is_detached_between_supervision_steps():
    m = make(T=1, N_sup=2)
    steps = m(torch.randn(4, 2, 32))
    steps[0].y.retain_grad()
    steps[0].z.retain_grad()
    steps[1].logits.sum().backward()       # step 2 starts from step 1's detached state: no gradient flows back
    assert steps[0].y.grad is None and steps[0].z.grad is None
    assert m.embed.weight.grad.abs().sum() > 0   # but x is recomputed into every step's graph


def test_a_checkpoint_with_trained_init_vectors_still_loads_them():
    """Committed checkpoints were written when y_init / z_init were (gradient-free) parameters: same names, values
    restored into the buffers."""
    m = make()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    sd["y_init"] = torch.arange(16.0)
    fresh = make()
    fresh.load_state_dict(sd)
    assert torch.equal(fresh.y_init, torch.arange(16.0))


def test_forward_shapes_and_per_token_head():
    m = make()
    steps = m(torch.randn(5, 2, 32))
    assert len(steps) == 2 and steps[0].logits.shape == (5, 3) and steps[0].q.shape == (5,)
    s = make(shape=Shape(tokens=81, classes=9, vocab=10, per_token=True))
    out = s(torch.randint(0, 10, (2, 81)))
    assert out[-1].logits.shape == (2, 81, 9)


def test_macs_count_matches_a_hand_count():
    m = make(n=2, T=2, N_sup=4)
    L, D, H, Ht = 8, 16, 32, 16
    net = 2 * (3 * Ht * L * D + 3 * H * D * L)
    mc = m.macs()
    assert mc["net_call"] == net and mc["net_calls_per_step"] == 6
    assert mc["fixed_inference"] == L * 8 * D + 4 * (6 * net + 3 * D + D)


def test_ema_moves_toward_the_weights():
    m = make()
    ema = EMA(m, decay=0.5)
    with torch.no_grad():
        m.pos.add_(1.0)
    before = ema.model.pos.clone()
    ema.update(m)
    assert torch.allclose(ema.model.pos, before + 0.5)


def test_attention_variant_adds_rope_to_the_learned_positions():
    m = make(mixer="attention", heads=2).eval()
    names = set(m.state_dict())
    assert "pos" in names and "net.layers.0.attn.qkv.weight" in names and "net.layers.0.tok.up.weight" not in names
    assert not any(k.endswith(("cos", "sin")) for k in names)        # RoPE tables are recomputed, not stored
    with torch.no_grad():
        m.pos.zero_()                                                  # so only RoPE can tell the tokens apart
    x = torch.randn(2, 2, 32)
    perm = torch.randperm(8)
    permuted = x.reshape(2, 2, 8, 4)[:, :, perm].reshape(2, 2, 32)  # the same patches in another token order
    with torch.no_grad():
        y, yp = m(x)[-1].y, m(permuted)[-1].y
    assert not torch.allclose(yp, y[:, perm], atol=1e-4)               # RoPE makes token order matter
    L, D = 8, 16
    assert m.macs()["net_call"] == 2 * (L * 4 * D * D + 2 * L * L * D + 3 * 32 * D * L)


def test_attention_variant_is_refused_by_the_quantiser():
    from trm_tvm.quant import float_ref

    m = make(mixer="attention")
    with pytest.raises(UserError, match="study-only"):
        float_ref.Dims.from_model(m.cfg, m.shape)
