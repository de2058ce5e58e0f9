"""The tuning database without a board: meta_schedule really runs (space function, PyBuilder/PyRunner, our
callback) but the measurement is a deterministic stand-in, so these tests are about the database: only bit-exact
candidates are recorded, knobs decode from traces, corrupted entries are reported and skipped, and a resumed
(interrupted) tune appends to the database instead of replacing it."""
from __future__ import annotations

import json

import pytest

from trm_tvm.boards import load_board
from trm_tvm.compile.strategies.linear import LinearShape
from trm_tvm.tune import database, search
from trm_tvm.tune.search import remaining_trials
from trm_tvm.tune.space import SPACE, Task


def fake_measure(batch):
    """Cycles from the knobs' effect on the generated C (longer source = more unrolled); candidate c1 of every
    batch is reported not bit-exact, so it must never reach the database."""
    out = []
    for c in batch.candidates:
        if c.id == "c1":
            out.append({"bit_exact": False, "error": f"{c.function}: self-test batch 0 differs from the spec"})
        else:
            body = batch.c_source.split(f"{c.function}(")[1][:4000]
            out.append({"bit_exact": True, "cycles": {"value": 10_000 + len(body), "unit": "cycles",
                                                      "provenance": "modeled", "source": "test stand-in"}})
    return out


TASKS = [Task(LinearShape(4, 16, 8), False, 10), Task(LinearShape(4, 16, 8), True, 10)]


def tune_once(tmp_path, trials, remote=fake_measure):
    db = search.open_database(tmp_path / "sched" / "cortex-m4")
    m = search.Measurer("cortex-m4", tmp_path / "w", tmp_path / "c", remote=remote)
    todo = remaining_trials(db, TASKS, trials)
    return search.run_tasks(TASKS, db, m, todo, 4, tmp_path / "ms", lambda s: None), todo


def records(tmp_path):
    return (tmp_path / "sched" / "cortex-m4" / database.RECORDS).read_text().splitlines()


def test_only_bit_exact_candidates_are_recorded_and_knobs_decode(tmp_path):
    n, _ = tune_once(tmp_path, 8)
    loaded = database.load("cortex-m4", tmp_path / "sched")
    assert n == len(loaded.entries) == len(records(tmp_path)) > 0
    assert not loaded.problems
    for e in loaded.entries:
        assert e.kernel == "linear_s8_4x16x8"
        assert {k: e.knobs[k] for k in SPACE} and all(e.knobs[k] in v for k, v in SPACE.items())
        assert e.knobs["fuse"] is True and e.knobs["dsp"] in (True, False)
    # a rejected (not bit-exact) candidate is never committed: every record is one the stand-in passed
    assert all(e.cycles_s > 0 for e in loaded.entries)
    best = loaded.best()["linear_s8_4x16x8"]
    assert best.cycles_s == min(e.cycles_s for e in loaded.entries)
    # compile's `tuned` level reads the same best record
    database.SCHEDULES, old = tmp_path / "sched", database.SCHEDULES
    try:
        knobs = database.tuned_knobs("cortex-m4", LinearShape(4, 16, 8), {"order": "to", "tile_o": 4,
                                                                           "unroll_k": 2, "fuse": True, "dsp": True})
    finally:
        database.SCHEDULES = old
    assert knobs == {**knobs, **best.knobs}


def test_corrupted_entries_are_reported_and_skipped(tmp_path, capsys):
    tune_once(tmp_path, 8)
    good = database.load("cortex-m4", tmp_path / "sched")
    path = tmp_path / "sched" / "cortex-m4" / database.RECORDS
    lines = path.read_text().splitlines()
    idx, rec = json.loads(lines[0])
    lines[0] = lines[0][: len(lines[0]) // 2]                                 # truncated JSON
    lines.insert(1, json.dumps([99, rec]))                                    # workload index out of range
    lines.insert(2, json.dumps([idx, ["not", "a", "record"]]))                # undecodable record
    path.write_text("\n".join(lines) + "\n")
    warned = []
    loaded = database.load("cortex-m4", tmp_path / "sched", warn=warned.append)
    assert len(loaded.problems) == len(warned) == 3
    assert any("line 1" in w for w in warned) and any("line 2" in w and "workload index" in w for w in warned)
    assert len(loaded.entries) == len(good.entries) - 1                       # only the truncated good one is lost
    # tuning repairs the files (bad lines kept aside) and can append again
    database.repair("cortex-m4", tmp_path / "sched", warn=lambda m: None)
    assert len((path.parent / f"{database.RECORDS}.rejected").read_text().splitlines()) == 3
    assert not database.load("cortex-m4", tmp_path / "sched", warn=lambda m: None).problems
    n, _ = tune_once(tmp_path, 12)
    assert len(database.load("cortex-m4", tmp_path / "sched").entries) == len(loaded.entries) + n


class Interrupt(KeyboardInterrupt):
    pass


def test_resume_after_interruption_adds_to_the_database(tmp_path):
    calls = []

    def dies_on_second_batch(batch):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt()
        return fake_measure(batch)

    with pytest.raises(BaseException):
        tune_once(tmp_path, 8, dies_on_second_batch)
    first = records(tmp_path)
    assert first, "the batch measured before the interruption is in the database"
    n, todo = tune_once(tmp_path, 8)
    assert sum(todo.values()) < 2 * 8, "the resumed run only asks for the trials still missing"
    after = records(tmp_path)
    assert after[: len(first)] == first and len(after) == len(first) + n
    # nothing is recorded twice: every record is a distinct schedule
    assert len(search.seen_hashes(search.open_database(tmp_path / "sched" / "cortex-m4"))) == len(after)


def test_gap9_and_unknown_board_are_one_line_errors(capsys):
    from trm_tvm.tune.__main__ import main

    assert main(["--board", "nope", "--artifact", "random:w8a8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert load_board("cortex-m4").template == "cortex_m"


def test_a_helium_board_is_refused_in_one_line(capsys, tmp_path):
    """The tuner's space holds the dsp/plain linear forms only: tuned records on the M55 would silently replace the
    faster Helium form under --schedule tuned, so tuning it is refused before anything is built."""
    from trm_tvm.tune.__main__ import main

    assert main(["--board", "cortex-m55", "--artifact", "random:w8a8", "--out", str(tmp_path / "out")]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert "Helium" in err and "--schedule default" in err
    assert not (tmp_path / "out").exists()
