"""The precision label builds and reports carry: W4A8 means a 4-bit `net` (embedding and heads may stay 8-bit, as
the w4a8 recipe keeps them); 'mixed' only for a real per-layer assignment."""
import pytest

from trm_tvm.compile.driver import precision
from trm_tvm.quant.fixtures import random_artifact


@pytest.mark.parametrize("bits, act_bits, label", [
    (8, 8, "w8a8"),
    (4, 8, "w4a8"),                                            # embedding 4-bit too
    ({"default": 4, "embed.weight": 8}, 8, "w4a8"),           # the w4a8 recipe
    ({"default": 4, "embed.weight": 8}, 4, "w4a4"),
    ({"default": 8, "net.layers.*.ch.*": 4}, 8, "mixed"),     # the mixed recipe
    ({"default": 8, "net.layers.0.ch.down.weight": 4}, 8, "mixed"),
    ({"default": 8, "embed.weight": 4}, 8, "mixed"),          # 4-bit embedding under an 8-bit net is a choice
])
def test_label(bits, act_bits, label):
    art, _, _ = random_artifact(hidden=8, tokens=4, bits=bits, act_bits=act_bits,
                                state_bits=4 if act_bits == 4 else 8)
    assert precision(art) == label
