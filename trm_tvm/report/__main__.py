"""python -m trm_tvm.report [--out reports/report.md] [--regenerate [--only SECTION] [--force] [--dry-run]]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trm_tvm.errors import cli_main
from trm_tvm.jsonio import REPO_ROOT
from trm_tvm.report.build import write
from trm_tvm.report.manifest import SECTIONS
from trm_tvm.report.regenerate import regenerate


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.report",
                                 description="The technical report, built from the committed results.")
    ap.add_argument("--out", type=Path, help="default: reports/report.md of the checkout (--root)")
    ap.add_argument("--regenerate", action="store_true",
                    help="first rerun the commands behind every figure (slow: training, QEMU, tuning)")
    ap.add_argument("--only", choices=SECTIONS, help="with --regenerate: only this section's commands")
    ap.add_argument("--force", action="store_true", help="with --regenerate: rerun steps that are up to date")
    ap.add_argument("--dry-run", action="store_true", help="with --regenerate: only list the steps it would run")
    ap.add_argument("--root", type=Path, default=REPO_ROOT, help="the checkout whose results to read")
    ap.add_argument("--worktree", action="store_true",
                    help="read the result files as they are on disk, not as committed (preview before committing)")
    a = ap.parse_args(argv)
    if (a.only or a.force or a.dry_run) and not a.regenerate:
        ap.error("--only, --force and --dry-run go with --regenerate")
    if a.regenerate:
        regenerate(a.root, a.only, a.force, a.dry_run, log=lambda m: print(m, file=sys.stderr, flush=True))
        if a.dry_run:
            return 0
    print(f"wrote {write(a.out.resolve() if a.out else a.root / 'reports/report.md', a.root, a.worktree)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
