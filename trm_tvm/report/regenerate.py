"""`--regenerate`: rerun the manifest's commands in data-flow order, skipping steps whose outputs are up to date.

Slow by design (training, QEMU sessions, tuning): a benchmark, never a test. A step is up to date when every
output exists and none is older than any of its inputs; `--force` reruns it anyway.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

from trm_tvm.errors import UserError
from trm_tvm.report.manifest import STEPS, Step, steps_of_section


def up_to_date(step: Step, root: Path) -> bool:
    outs = [root / p for p in step.outputs]
    if not all(p.is_file() for p in outs):
        return False
    ins = [root / p for p in step.inputs if (root / p).is_file()]
    return not ins or min(p.stat().st_mtime for p in outs) >= max(p.stat().st_mtime for p in ins)


def argv_for(command: str) -> list[str]:
    """`python` in a manifest command is this interpreter (the venv's)."""
    argv = shlex.split(command)
    return [sys.executable] + argv[1:] if argv[0] == "python" else argv


def selected(only: str | None) -> list[Step]:
    return steps_of_section(only) if only else list(STEPS)


def regenerate(root: Path, only: str | None = None, force: bool = False,
               log: Callable[[str], None] = print) -> list[str]:
    """Run the out-of-date steps; returns the names of the steps run."""
    ran = []
    for step in selected(only):
        if not force and up_to_date(step, root):
            log(f"up to date: {step.name}")
            continue
        missing = [p for p in step.inputs if not (root / p).exists()]
        if missing:
            if step.optional:
                log(f"skipped {step.name}: its inputs {', '.join(missing)} do not exist yet")
                continue
            raise UserError(f"step {step.name} needs {', '.join(missing)}", "regenerate the steps before it first")
        for out in step.outputs:
            (root / out).parent.mkdir(parents=True, exist_ok=True)
        for command in step.commands:
            log(f"run {step.name}: {command}")
            if subprocess.run(argv_for(command), cwd=root).returncode != 0:
                raise UserError(f"step {step.name} failed: {command}", "see its output above; rerun to resume")
        ran.append(step.name)
    return ran
