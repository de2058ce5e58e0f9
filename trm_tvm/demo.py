"""`make demo`: the main job end to end. Grows with the pipeline; see README.md.

For now: every committed checkpoint (checkpoints/<name>/model.pt) is re-evaluated live on the first DEMO_LIMIT
items of its test set, next to the full-test-set figures stored in its eval.json (TRM, non-recursive baseline,
MiniRocket), so the table shows both what runs now and what the committed evaluation measured.
"""
from __future__ import annotations

import argparse

from trm_tvm.errors import UserError, cli_main
from trm_tvm.evaluate import evaluate_checkpoint, headline, table_rows
from trm_tvm.jsonio import REPO_ROOT, read_json

DEMO_LIMIT = 500


def pct(h: dict) -> str:
    return f"{100 * h['value']:.1f} % [{100 * h['ci95'][0]:.1f}, {100 * h['ci95'][1]:.1f}]"


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=DEMO_LIMIT, help="test items evaluated live per checkpoint")
    args = ap.parse_args(argv)
    ckpts = sorted(p.parent for p in (REPO_ROOT / "checkpoints").glob("*/model.pt"))
    if not ckpts:
        raise UserError("no committed checkpoints under checkpoints/", "train one: python -m trm_tvm.train ...")
    for d in ckpts:
        stored = read_json(d / "eval.json", "stored evaluation")
        live = evaluate_checkpoint(d / "model.pt", limit=args.limit, anchor=False, baseline=False)
        metric = "cell accuracy on blanks" if live["task"] == "sudoku" else "accuracy"
        sz = stored["sizes"]
        print(f"\n== {d.name}: task {live['task']}, {sz['params']['value']} params, "
              f"{sz['macs_fixed_inference']['value'] / 1e6:.2f} M MACs per fixed-compute inference")
        print(f"  live, first {live['n_test']} test items: TRM fixed compute {metric} {pct(headline(live['fixed']))}, "
              f"halting {pct(headline(live['halting']))} in {live['halting']['mean_steps']:.2f} steps (measured, "
              f"PyTorch FP32 on this host)")
        print(f"  stored eval.json, all {stored['n_test']} test items:")
        for what, score, macs in table_rows(stored):
            print(f"    {what:44s} {score:42s} {macs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
