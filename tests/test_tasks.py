"""Tasks: Sudoku generator validity and uniqueness, augmentations, ECG determinism, .ts loading, clear errors."""
import numpy as np
import pytest

from trm_tvm.config import TaskConfig
from trm_tvm.errors import UserError
from trm_tvm.tasks import ecg, load_task, sudoku, ucr


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
