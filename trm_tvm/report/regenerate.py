"""`--regenerate`: rerun the manifest's commands in data-flow order, skipping steps whose outputs are up to date.

Slow by design (training, QEMU sessions, tuning): a benchmark, never a test. A step is up to date when every
output exists and none is older than any of its inputs; `--force` reruns it anyway. "Older" uses a file's last
commit time when it is tracked and unmodified (a fresh clone gives every file the checkout's mtime), its mtime
otherwise.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

from trm_tvm.errors import UserError
from trm_tvm.report.manifest import STEPS, Step, steps_of_section
from trm_tvm.report.sources import git


def changed_at(path: Path, root: Path) -> float:
    """When the file's content last changed: its last commit if tracked and clean, else its mtime."""
    rel = path.relative_to(root).as_posix()
    if git(root, "ls-files", rel) and not git(root, "status", "--porcelain", "--", rel):
        t = git(root, "log", "-1", "--format=%ct", "--", rel)
        if t:
            return float(t)
    return path.stat().st_mtime


def up_to_date(step: Step, root: Path) -> bool:
    outs = [root / p for p in step.outputs]
    if not all(p.is_file() for p in outs):
        return False
    ins = [root / p for p in step.inputs if (root / p).is_file()]
    return not ins or min(changed_at(p, root) for p in outs) >= max(changed_at(p, root) for p in ins)


def argv_for(command: str) -> list[str]:
    """`python` in a manifest command is this interpreter (the venv's)."""
    argv = shlex.split(command)
    return [sys.executable] + argv[1:] if argv[0] == "python" else argv


def selected(only: str | None) -> list[Step]:
    return steps_of_section(only) if only else list(STEPS)


def regenerate(root: Path, only: str | None = None, force: bool = False, dry_run: bool = False,
               log: Callable[[str], None] = print) -> list[str]:
    """Run the out-of-date steps (with `dry_run`, only say which); returns the names of the steps (to be) run.

    A step is also out of date when an earlier step of this pass rewrites one of its inputs."""
    ran: list[str] = []
    pending: set[str] = set()
    for step in selected(only):
        if not force and not pending.intersection(step.inputs) and up_to_date(step, root):
            log(f"up to date: {step.name}")
            continue
        missing = [p for p in step.inputs if not (root / p).exists() and p not in pending]
        if missing:
            if step.optional:
                log(f"skipped {step.name}: its inputs {', '.join(missing)} do not exist yet")
                continue
            raise UserError(f"step {step.name} needs {', '.join(missing)}", "regenerate the steps before it first")
        ran.append(step.name)
        pending.update(step.outputs)
        for command in step.commands:
            log(f"{'would run' if dry_run else 'run'} {step.name}: {command}")
            if dry_run:
                continue
            for out in step.outputs:
                (root / out).parent.mkdir(parents=True, exist_ok=True)
            if subprocess.run(argv_for(command), cwd=root).returncode != 0:
                raise UserError(f"step {step.name} failed: {command}", "see its output above; rerun to resume")
    return ran
