"""python -m trm_tvm.tune: tune a board's kernels for one or more artifacts and print naive/default/tuned.

    python -m trm_tvm.tune --board cortex-m4 --artifact ecg-w8a8.npz[,ecg-w4a8.npz] [--trials 24] [--budget-min 13]
                           [--tracker host:port --key cortex-m4] [--out reports/tune/<board>] [--no-whole]
    python -m trm_tvm.tune --board gap9 --artifact ecg-w8a8.npz[,...]    # trm_tvm.gap9.tune (docs/gap9.md)
    python -m trm_tvm.tune worker --board cortex-m4 --tracker host:port [--key cortex-m4]   # a board host

`random:w8a8` / `random:w4a8` name random-weight artifacts of the ECG model's shape (trm_tvm.tune.fixtures).
The database is schedules/<board>/ (meta_schedule JSON); `compile --schedule tuned` applies it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trm_tvm.errors import UserError, cli_main


def _artifacts(spec: str, out: Path) -> list[Path]:
    from trm_tvm.tune.fixtures import ecg_random

    arts = []
    for s in spec.split(","):
        if s.startswith("random:"):
            arts.append(ecg_random(s.split(":", 1)[1], out / "artifacts"))
        elif Path(s).is_file():
            arts.append(Path(s))
        else:
            raise UserError(f"artifact {s} does not exist", "pass .npz artifacts or random:w8a8|w4a8")
    return arts


def tune_gap9(a, out: Path) -> int:
    """GAP9: the same meta_schedule search over the cluster schedule knobs, measured on the functional build and
    scored by the frozen cycle model (trm_tvm.gap9.tune; --tracker does not apply)."""
    from trm_tvm.gap9 import tune as gap9_tune

    if a.tracker:
        raise UserError("--tracker is not supported for gap9", "drop it: gap9 candidates run on the local QEMU build")
    s = gap9_tune.tune(_artifacts(a.artifact, out), trials=a.trials, per_iter=a.per_iter, budget_min=a.budget_min,
                       out=out, db_root=a.schedules, log=lambda m: print(m, flush=True))
    return 0 if all(w["tuned_bit_exact"] for w in s["whole"]) else 1


@cli_main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        from trm_tvm.tune.farm import worker_main
        return worker_main(argv[1:])
    from trm_tvm.tune import run

    ap = argparse.ArgumentParser(prog="python -m trm_tvm.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", required=True)
    ap.add_argument("--artifact", required=True, help="comma list of .npz artifacts or random:w8a8|w4a8")
    ap.add_argument("--trials", type=int, default=None, help="meta_schedule trials per task (default 24, gap9 128)")
    ap.add_argument("--budget-min", type=float, default=None, help="wall budget of the search (default 13, gap9 12)")
    ap.add_argument("--per-iter", type=int, default=None, help="candidates per firmware (default 8, gap9 32)")
    ap.add_argument("--tracker", help="host:port of a TVM RPC tracker: measure on its board hosts")
    ap.add_argument("--key", help="device key on the tracker (default: the board name)")
    ap.add_argument("--schedules", type=Path, help="database root (default: the repository's schedules/)")
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-inference comparison")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    from trm_tvm.gap9 import tune as gap9_tune
    defaults = gap9_tune if a.board == "gap9" else run
    a.trials = defaults.TRIALS if a.trials is None else a.trials
    a.budget_min = defaults.BUDGET_MIN if a.budget_min is None else a.budget_min
    a.per_iter = defaults.PER_ITER if a.per_iter is None else a.per_iter
    if a.trials < 1 or a.budget_min <= 0 or a.per_iter < 1:
        raise UserError("--trials, --budget-min and --per-iter must be positive", "e.g. --trials 24 --budget-min 13")
    out = a.out or Path("reports/tune") / a.board
    if a.board == "gap9":
        return tune_gap9(a, out)
    board = run.check_board(a.board)
    remote = None
    if a.tracker:
        from trm_tvm.tune.farm import tracker_measure
        remote = tracker_measure(a.tracker, a.key or board.name)
    run.tune(board.name, _artifacts(a.artifact, out), trials=a.trials, budget_min=a.budget_min, per_iter=a.per_iter,
             out=out, db_root=a.schedules, whole=not a.no_whole, remote=remote,
             log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
