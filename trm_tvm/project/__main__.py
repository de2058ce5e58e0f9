"""python -m trm_tvm.project generate|build|flash: the project API from the shell.

    python -m trm_tvm.project generate --build-dir <dir> --board cortex-m4 --out <project>
    python -m trm_tvm.project build --project <project>
    python -m trm_tvm.project flash --project <project> [--tool openocd|pyocd] [--dry-run]
"""
from __future__ import annotations

import argparse
import shlex

from trm_tvm import project as proj
from trm_tvm.errors import cli_main
from trm_tvm.project.generate import DEFAULT_STACK_BYTES


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.project", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="build directory + board -> self-contained firmware project")
    g.add_argument("--build-dir", required=True)
    g.add_argument("--board", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--stack-bytes", type=int, default=DEFAULT_STACK_BYTES)
    b = sub.add_parser("build", help="make the firmware")
    b.add_argument("--project", required=True)
    f = sub.add_parser("flash", help="hardware: flash with openocd/pyOCD; emulated: print the QEMU command")
    f.add_argument("--project", required=True)
    f.add_argument("--tool", help="a flash tool named in the board file (openocd, pyocd)")
    f.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    a = ap.parse_args(argv)
    if a.cmd == "generate":
        p = proj.generate_project(a.build_dir, a.board, a.out, stack_bytes=a.stack_bytes)
        print(f"project for {p.board.name} (build {p.build_id}) in {p.dir}; build it with `make -C {p.dir}`")
    elif a.cmd == "build":
        print(proj.build(proj.load_project(a.project)))
    else:
        p = proj.load_project(a.project)
        dev = proj.flash(p, tool=a.tool, dry_run=a.dry_run or p.board.emulated)
        print(shlex.join(dev.command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
