"""Config loading: valid YAML round-trips, bad input is one clear UserError."""
import pytest

from trm_tvm.config import Config, load_config, to_dict
from trm_tvm.errors import UserError, cli_main


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_and_override(tmp_path):
    cfg = load_config(write(tmp_path, "model:\n  hidden: 32\n  n: 3\ntrain:\n  lr: 1\n"))
    assert cfg.model.hidden == 32 and cfg.model.n == 3
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert to_dict(cfg)["task"]["name"] == Config().task.name


@pytest.mark.parametrize("text,needle", [
    ("model:\n  hiden: 32\n", "unknown key"),
    ("model:\n  hidden: '32'\n", "must be int"),
    ("model:\n  T: 0\n", "T >= 1"),
    ("model: [1, 2]\n", "must be a mapping"),
    ("model:\n  hidden: [\n", "not valid YAML"),
    ("model:\n  halt_threshold: 1.5\n", "halt_threshold"),
])
def test_bad_config_is_one_line_user_error(tmp_path, text, needle):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, text))
    assert needle in e.value.line() and "\n" not in e.value.line()


def test_missing_config(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_cli_main_prints_one_line(capsys):
    @cli_main
    def main():
        raise UserError("board 'x' is unknown", "use one of boards/*.yaml")

    assert main() == 2
    err = capsys.readouterr().err
    assert err == "error: board 'x' is unknown -- use one of boards/*.yaml\n"
