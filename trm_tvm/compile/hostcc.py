"""Compile C sources with the host gcc into a shared library and load it with ctypes (host-side tests only).

The library is cached under a directory keyed by the hash of sources and flags, so repeated test runs are cheap.
"""
from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from trm_tvm.errors import UserError

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]


def build_shared(sources: list[Path], include_dirs: list[Path] = (), flags: list[str] = (),
                 cache_dir: Path | None = None) -> ctypes.CDLL:
    """gcc the sources into one .so (cached by content hash) and return it loaded."""
    if shutil.which("gcc") is None:
        raise UserError("host gcc not found", "install it with `apt-get install gcc` (scripts/setup.sh does)")
    h = hashlib.sha256()
    for src in sources:
        h.update(Path(src).read_bytes())
    for d in include_dirs:
        for hdr in sorted(Path(d).glob("*.h")):
            h.update(hdr.read_bytes())
    h.update(" ".join(list(flags) + CFLAGS).encode())
    cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "trm_tvm_hostcc")
    lib = cache_dir / f"lib_{h.hexdigest()[:16]}.so"
    if not lib.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = lib.with_suffix(f".{id(lib)}.tmp")
        cmd = ["gcc", *CFLAGS, *flags, *[f"-I{d}" for d in include_dirs], *map(str, sources), "-o", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"host gcc failed:\n{' '.join(cmd)}\n{res.stderr}")
        tmp.replace(lib)
    return ctypes.CDLL(str(lib))
