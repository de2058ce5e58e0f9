"""The bench CLI's own logic (no board): limits, MAC counting from calls.json, one-line errors."""
import pytest

from trm_tvm.bench import inference_macs, main, parse_limits
from trm_tvm.compile.driver import compile_artifact
from trm_tvm.errors import UserError
from trm_tvm.jsonio import read_json
from trm_tvm.quant.fixtures import random_artifact


def test_limits_default_and_per_board():
    assert parse_limits("200,cortex-m7=50", ["cortex-m4", "cortex-m7"]) == {"cortex-m4": 200, "cortex-m7": 50}
    with pytest.raises(UserError):
        parse_limits("many", ["cortex-m4"])


def test_macs_of_an_inference_match_the_graph(tmp_path):
    art, _, dims = random_artifact(hidden=16, tokens=8, n=1, T=2, N_sup=3)
    art.save(tmp_path / "a.npz")
    compile_artifact(tmp_path / "a.npz", "cortex-m4", "reference", tmp_path / "b")
    calls = read_json(tmp_path / "b" / "calls.json")
    L, D, H, Ht, K = dims.tokens, dims.hidden, dims.ffn_ch, dims.ffn_tok, dims.classes
    net = dims.layers * (3 * D * L * Ht + 3 * L * D * H)        # token MLP on (D, L), channel MLP on (L, D)
    prologue = L * (dims.channels * dims.patch) * D
    heads = D * K + D
    assert calls["calls_per_step"] == dims.T * (dims.n + 1)
    assert inference_macs(calls, 3) == prologue + 3 * (calls["calls_per_step"] * net + heads)


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert main(["--boards", "cortex-m4", "--artifacts", "random:w2a2", "--out", str(tmp_path)]) == 2
    assert main(["--boards", "cortex-m4", "--artifacts", "random:w8a8", "--kernels", "magic",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error: ") for e in err)
