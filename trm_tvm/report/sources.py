"""Reading committed results for the report: one-line errors for missing files, provenance read from the files."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from trm_tvm.errors import UserError
from trm_tvm.jsonio import REPO_ROOT
from trm_tvm.provenance import PROVENANCES, fmt
from trm_tvm.report.manifest import Figure, step_for


def git(root: Path, *args: str) -> str:
    """Output of a git command in the checkout ('' outside one or on failure)."""
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def missing_error(path: str, R: "Results") -> UserError:
    commands = commands_to_make(path, R)
    how = f"make it with: {' && '.join(commands)}" if commands else "no command in the report manifest makes it"
    where = f" (in commit {R.commit[:7]})" if R.commit else ""
    return UserError(f"result file {path} is missing{where}", how)


def commands_to_make(path: str, R: "Results") -> list[str]:
    """The manifest commands that make `path`, preceded by those making any of their missing inputs."""
    step = step_for(path)
    if step is None:
        return []
    before = [c for p in step.inputs if not R.exists(p) for c in commands_to_make(p, R)]
    return list(dict.fromkeys(before + list(step.commands)))


class Results:
    """The result files of a checkout, loaded once each.

    In a git checkout the report reads what is committed (HEAD), so others' half-written results in the work tree
    never reach it; `worktree=True` (or a root outside git, as in tests) reads the files as they are on disk."""

    def __init__(self, root: Path = REPO_ROOT, out_dir: Path | None = None, worktree: bool = False):
        self.root = Path(root)
        self.out_dir = Path(out_dir) if out_dir else self.root / "reports"   # where report.md's links start
        self.commit = "" if worktree else git(self.root, "rev-parse", "HEAD")
        self._cache: dict[str, Any] = {}
        self._committed = set(git(self.root, "ls-tree", "-r", "--name-only", "HEAD").splitlines()) \
            if self.commit else set()

    def exists(self, path: str) -> bool:
        return path in self._committed if self.commit else (self.root / path).is_file()

    def bytes(self, path: str) -> bytes:
        if not self.exists(path):
            raise missing_error(path, self)
        if not self.commit:
            return (self.root / path).read_bytes()
        return subprocess.run(["git", "-C", str(self.root), "show", f"{self.commit}:{path}"], capture_output=True,
                              check=True, timeout=60).stdout

    def json(self, path: str) -> Any:
        if path not in self._cache:
            try:
                self._cache[path] = json.loads(self.bytes(path))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise UserError(f"result file {path} is not valid JSON ({e})",
                                "regenerate it with the command that made it") from None
        return self._cache[path]

    def available(self, fig: Figure) -> bool:
        return all(self.exists(p) for p in fig.reads)

    def provenances(self, fig: Figure) -> list[str]:
        """The provenance classes the figure's files declare for their figures, in the canonical order."""
        found: set[str] = set()
        for p in fig.reads:
            if self.exists(p):
                _collect(self.json(p), found)
        return [p for p in PROVENANCES if p in found]


def _collect(obj: Any, found: set[str]) -> None:
    if isinstance(obj, dict):
        v = obj.get("provenance")
        if isinstance(v, str) and v in PROVENANCES:
            found.add(v)
        for x in obj.values():
            _collect(x, found)
    elif isinstance(obj, list):
        for x in obj:
            _collect(x, found)


def pct(fig: dict, ci: bool = True) -> str:
    """An accuracy figure as '80.65 % [78.9, 82.3] (measured)'."""
    s = f"{100 * fig['value']:.2f} %"
    if ci and fig.get("ci95"):
        lo, hi = fig["ci95"]
        s += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{s} ({fig['provenance']})"


def num(fig: dict, digits: int = 3) -> str:
    """fmt, with thousands separators for values of 1,000 and more (bytes, MACs, cycles, instructions)."""
    v = fig["value"]
    if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) >= 1000:
        return fmt({**fig, "value": f"{round(v):,}"})
    return fmt(fig, digits)
