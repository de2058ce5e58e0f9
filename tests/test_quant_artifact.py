"""Artifact save/load round trip and one-line validation errors on damaged files."""
import copy
import json

import numpy as np
import pytest

from trm_tvm.errors import UserError
from trm_tvm.quant.artifact import FORMAT, HEADER_MEMBER, Artifact
from trm_tvm.quant.fixtures import random_artifact


@pytest.fixture(scope="module")
def art():
    return random_artifact(hidden=12, tokens=4, classes=3, patch=4, channels=2, bits={"default": 8,
                           "net.layers.1.*": 4}, seed=3)[0]


def test_round_trip(tmp_path, art):
    sha = art.save(tmp_path / "a.npz")
    back = Artifact.load(tmp_path / "a.npz")
    assert len(sha) == 64
    assert back.header == json.loads(json.dumps(art.header))
    assert set(back.tensors) == set(art.tensors)
    for k, v in art.tensors.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    assert back.header["tensors"]["net.layers.1.ch.up.weight"]["dtype"] == "uint8"      # packed int4
    assert back.header["tensors"]["net.layers.0.ch.up.weight"]["dtype"] == "int8"


def damaged(art, tmp_path, edit_header=None, edit_tensors=None):
    a = Artifact(copy.deepcopy(art.header), dict(art.tensors))
    if edit_header:
        edit_header(a.header)
    if edit_tensors:
        edit_tensors(a.tensors)
    p = tmp_path / "bad.npz"
    p.write_bytes(a.to_bytes())
    with pytest.raises(UserError) as e:
        Artifact.load(p)
    msg = e.value.line()
    assert "\n" not in msg and str(p) in msg
    return msg


def test_wrong_version_and_format(art, tmp_path):
    assert "version 99" in damaged(art, tmp_path, lambda h: h.update(version=99))
    assert FORMAT in damaged(art, tmp_path, lambda h: h.update(format="something-else"))


def test_missing_and_bad_tensors(art, tmp_path):
    assert "missing tensor 'head.mult'" in damaged(art, tmp_path, edit_tensors=lambda t: t.pop("head.mult"))
    assert "shape" in damaged(art, tmp_path, edit_tensors=lambda t: t.update(pos=np.zeros((3, 3), np.int8)))
    assert "dtype" in damaged(art, tmp_path,
                              edit_tensors=lambda t: t.update(pos=t["pos"].astype(np.int16)))
    assert "not described" in damaged(art, tmp_path, edit_tensors=lambda t: t.update(extra=np.zeros(2)))


def test_graph_errors(art, tmp_path):
    def bad_n_in(h):
        h["graph"]["net"][2]["n_in"] += 1
    assert "n_in" in damaged(art, tmp_path, bad_n_in)

    def bad_op(h):
        h["graph"]["net"][1]["op"] = "conv2d"
    assert "unknown op 'conv2d'" in damaged(art, tmp_path, bad_op)


def test_inconsistent_schedule(art, tmp_path):
    assert "expected T*(n+1)" in damaged(art, tmp_path, lambda h: h["schedule"]["calls"].pop())

    def swap(h):
        h["schedule"]["calls"][0]["update"] = "y"
    assert "update" in damaged(art, tmp_path, swap)

    def scale(h):
        h["schedule"]["calls"][1]["in_scales"][0] *= 2
    assert "in_scales" in damaged(art, tmp_path, scale)

    def qthr(h):
        h["halting"]["q_thr"] += 5
    assert "q_thr" in damaged(art, tmp_path, qthr)


def test_not_an_artifact(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello")
    with pytest.raises(UserError, match="not a readable"):
        Artifact.load(p)
    np.savez(p, a=np.zeros(3))
    with pytest.raises(UserError, match=HEADER_MEMBER):
        Artifact.load(p)
    with pytest.raises(UserError, match="does not exist"):
        Artifact.load(tmp_path / "nope.npz")


def test_per_step_mode_has_one_output_set_per_call():
    art = random_artifact(hidden=8, tokens=4, classes=2, patch=2, state_scale_mode="per_step", n=1, T=2,
                          N_sup=2)[0]
    names = [c["out_mult"] for c in art.calls]
    assert len(set(names)) == len(names) == 4
    assert art.header["state_init_scales"]["y"] == art.calls[-1]["out_scale"]
    assert art.header["state_init_scales"]["z"] == art.calls[-2]["out_scale"]
