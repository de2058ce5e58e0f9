"""Tasks: Sudoku generator validity and uniqueness, augmentations, ECG determinism, .ts loading, clear errors."""
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from trm_tvm.config import TaskConfig, load_config
from trm_tvm.errors import UserError
from trm_tvm.model import TRM
from trm_tvm.tasks import ecg, load_task, sudoku, ucr

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_sudoku_puzzles_are_valid_unique_and_in_the_clue_range():
    puzzles, solutions = sudoku.generate(12, seed=3, min_clues=30, max_clues=45)
    for p, s in zip(puzzles, solutions):
        assert sudoku.is_valid_solution(s)
        assert np.all((p == 0) | (p == s))                   # clues agree with the solution
        assert 30 <= np.count_nonzero(p) <= 45
        assert sudoku.count_solutions(p) == 1
    again, _ = sudoku.generate(12, seed=3, min_clues=30, max_clues=45)
    other, _ = sudoku.generate(12, seed=4, min_clues=30, max_clues=45)
    assert np.array_equal(puzzles, again) and not np.array_equal(puzzles, other)


def test_solution_counter_sees_ambiguity_and_contradiction():
    _, (s,) = sudoku.generate(1, seed=0, min_clues=40, max_clues=40)
    assert sudoku.count_solutions(np.zeros(81, int)) == 2
    bad = s.copy()
    bad[1] = bad[0]                                           # two equal digits in row 0
    assert sudoku.count_solutions(bad) == 0
    assert not sudoku.is_valid_solution(bad)


def test_augmentations_preserve_validity_and_uniqueness():
    puzzles, solutions = sudoku.generate(6, seed=1, min_clues=30, max_clues=40)
    ap, as_ = sudoku.augment(puzzles, solutions, np.random.default_rng(0))
    assert not np.array_equal(ap, puzzles)
    for p, s, p0 in zip(ap, as_, puzzles):
        assert sudoku.is_valid_solution(s) and np.all((p == 0) | (p == s))
        assert np.count_nonzero(p) == np.count_nonzero(p0) and sudoku.count_solutions(p) == 1


def test_puzzle_file_round_trip_and_bad_line(tmp_path):
    puzzles, solutions = sudoku.generate(2, seed=2, min_clues=40, max_clues=45)
    good = tmp_path / "p.txt"
    good.write_text("".join(f"{''.join(map(str, p))} {''.join(map(str, s))}\n" for p, s in zip(puzzles, solutions)))
    p, y, clues = sudoku.read_puzzle_file(good)
    assert np.array_equal(p, puzzles) and np.array_equal(y, solutions - 1)
    bad = tmp_path / "bad.txt"
    bad.write_text(good.read_text().splitlines()[0] + "\n123 456\n")
    with pytest.raises(UserError, match=r"bad.txt:2:"):
        sudoku.read_puzzle_file(bad)


def test_ecg_generation_is_deterministic_under_a_seed():
    x1, y1 = ecg.generate(0, 3, seed=5, sample_rate=100)
    x2, y2 = ecg.generate(0, 3, seed=5, sample_rate=100)
    x3, _ = ecg.generate(0, 3, seed=6, sample_rate=100)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2) and not np.allclose(x1, x3)
    n1 = ecg.add_noise(x1, 512, 100, 1.0, seed=5)
    assert np.array_equal(n1, ecg.add_noise(x1, 512, 100, 1.0, seed=5))
    assert n1.shape == (3, 1, 512) and np.abs(n1).max() <= 4
    assert np.array_equal(n1[:2], ecg.add_noise(x1[:2], 512, 100, 1.0, seed=5))   # prefixes reproduce alone


def test_ecg_classes_differ_in_their_parameters():
    rng = np.random.default_rng(0)
    draws = {c: [ecg.sample_parameters(i, rng) for _ in range(200)] for i, c in enumerate(ecg.CLASSES)}
    hr = {c: np.array([d["hr"] for d in v]) for c, v in draws.items()}
    assert np.mean((hr["rate"] < 60) | (hr["rate"] > 100)) > 0.8 > np.mean((hr["normal"] < 60) | (hr["normal"] > 100))
    qrs = {c: np.mean([d["bi"][ecg.R_] for d in v]) for c, v in draws.items()}
    assert qrs["wide_qrs"] > 1.3 * qrs["normal"]


def test_gunpoint_ships_offline_and_is_shaped_for_the_model():
    ds = load_task(TaskConfig(name="ucr", dataset="GunPoint", seq_len=160, patch=10))
    assert ds.x_train.shape == (50, 1, 160) and ds.x_test.shape == (150, 1, 160)
    assert ds.shape.tokens == 16 and ds.shape.classes == 2 and np.abs(ds.x_train).max() <= 4


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: the shipped sets must load offline."""
    def refuse(*a, **k):
        raise AssertionError("network access while loading a shipped data set")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name,train,test,channels,classes", [("basicmotions", 40, 40, 6, 4),
                                                              ("japanesevowels", 270, 370, 12, 9)])
def test_multivariate_sets_load_offline_and_run_through_the_model(no_network, name, train, test, channels, classes):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    ds = load_task(cfg.task)
    S = cfg.task.seq_len
    assert ds.x_train.shape == (train, channels, S) and ds.x_test.shape == (test, channels, S)
    assert ds.shape.channels == channels and ds.shape.classes == classes == len(ds.class_names)
    assert sorted(set(ds.y_test)) == list(range(classes)) and np.abs(ds.x_train).max() <= 4
    torch.manual_seed(0)
    model = TRM(cfg.model, ds.shape).eval()
    assert model.embed.in_features == channels * cfg.task.patch          # every channel of a window in one token
    with torch.no_grad():
        steps = model(torch.as_tensor(ds.x_test[:3]))
    assert len(steps) == cfg.model.N_sup and steps[-1].logits.shape == (3, classes)
    assert torch.isfinite(steps[-1].logits).all()


def test_japanese_vowels_lengths_are_padded_with_the_training_mean():
    cfg = load_config(CONFIGS / "japanesevowels.yaml").task
    series, _ = ucr._load_split(cfg, "test")
    lengths = np.array([s.shape[1] for s in series])
    assert lengths.min() == 7 and lengths.max() == 29                   # really unequal
    ds = load_task(cfg)
    assert ds.info["lengths"] == {"train": [7, 26], "test": [7, 29], "fitted_to": 32, "rule": "pad"}
    mean, std = np.array(ds.info["norm_mean"]), np.array(ds.info["norm_std"])
    for i in (int(lengths.argmin()), int(lengths.argmax())):
        n = lengths[i]
        real = np.clip((series[i] - mean[:, None]) / std[:, None], -4, 4)
        assert np.allclose(ds.x_test[i, :, :n], real, atol=1e-5)        # the frames, unstretched
        assert np.all(ds.x_test[i, :, n:] == 0)                           # then the training mean
    import aeon.datasets as ad                                            # evaluate --data: the same rule
    x, y = ucr.read_ts_for(Path(ad.__file__).parent / "data" / "JapaneseVowels" / "JapaneseVowels_TEST.ts", cfg,
                           ds.shape, ds.class_names, ds.info)
    assert np.allclose(x, ds.x_test, atol=1e-6) and np.array_equal(y, ds.y_test)   # stats stored as float64


def test_pad_crops_long_series_and_resample_stretches_them():
    long, short = np.arange(12.0).reshape(1, 12), np.array([[1.0, 3.0]])
    pad = ucr.fit_length([long, short], 4, "pad")
    assert np.array_equal(pad[0, 0], [0, 1, 2, 3]) and np.array_equal(pad[1, 0, :2], [1, 3])
    assert np.isnan(pad[1, 0, 2:]).all()
    res = ucr.fit_length([long, short], 4, "resample")
    assert np.allclose(res[0, 0], [0, 11 / 3, 22 / 3, 11]) and np.allclose(res[1, 0], [1, 5 / 3, 7 / 3, 3])
    mean, std = ucr.channel_stats(pad)
    assert np.isclose(mean[0], np.mean([0, 1, 2, 3, 1, 3]))               # padding is not data


def write_ts(path, rows, labels=("a", "b")):
    head = f"@problemName t\n@timeStamps false\n@univariate true\n@classLabel true {' '.join(labels)}\n@data\n"
    path.write_text(head + "".join(rows))
    return path


def test_user_ts_pair_trains_like_a_shipped_set(tmp_path):
    rows = [f"{','.join(str(v) for v in np.sin(np.arange(20) * (1 + k % 2)))}:{'ab'[k % 2]}\n" for k in range(6)]
    tr, te = write_ts(tmp_path / "tr.ts", rows), write_ts(tmp_path / "te.ts", rows[:4])
    ds = load_task(TaskConfig(name="ucr", train_file=str(tr), test_file=str(te), seq_len=16, patch=4))
    assert ds.x_train.shape == (6, 1, 16) and list(ds.y_test) == [0, 1, 0, 1] and ds.class_names == ["a", "b"]


@pytest.mark.parametrize("body", ["1,2,3:a\n1,2,zz:b\n", "garbage\n"])
def test_malformed_ts_is_one_line_user_error(tmp_path, body):
    path = tmp_path / "bad.ts"
    if body == "garbage\n":
        path.write_text(body)
    else:
        write_ts(path, [body])
    with pytest.raises(UserError) as e:
        ucr.read_ts(path)
    assert "bad.ts" in e.value.line() and "\n" not in e.value.line()


def test_unknown_task_and_unshipped_set_are_user_errors():
    with pytest.raises(UserError, match="unknown task 'mnist'"):
        load_task(TaskConfig(name="mnist"))
    with pytest.raises(UserError, match="not shipped"):
        load_task(TaskConfig(name="ucr", dataset="NoSuchSet"))
