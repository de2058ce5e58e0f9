"""User errors and the one-line CLI contract.

Every user-facing command meets bad input with exactly one line on stderr -- what is wrong and what to do --
and a non-zero exit, never a traceback. Code raises `UserError(what, fix)`; `cli_main` turns it into that line.
Anything else escaping is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable


class UserError(Exception):
    """Bad input from the user: printed as one line 'error: <what> -- <fix>', exit code 2."""

    def __init__(self, what: str, fix: str = ""):
        super().__init__(what)
        self.what = what
        self.fix = fix

    def line(self) -> str:
        return f"error: {self.what}" + (f" -- {self.fix}" if self.fix else "")


def cli_main(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Decorate a CLI `main(argv=None)` so user errors and Ctrl-C end with one line, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(fn(*args, **kwargs) or 0)
        except UserError as e:
            print(e.line(), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("error: interrupted -- rerun the same command to resume", file=sys.stderr)
            return 130

    return wrapper


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers never see it half-written: temp file in the same directory, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())
