"""python -m trm_tvm.compile --artifact <a> --board <board> --kernels tvm|reference|handwritten --out <dir>"""
from __future__ import annotations

import argparse

from trm_tvm.compile.backends import KERNELS
from trm_tvm.compile.driver import OPTS, compile_artifact
from trm_tvm.compile.strategies import LEVELS
from trm_tvm.errors import cli_main


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.compile", description=__doc__)
    ap.add_argument("--artifact", required=True, help="quantised-model artifact (.npz)")
    ap.add_argument("--board", required=True, help="board name (boards/<name>.yaml)")
    ap.add_argument("--kernels", default="tvm", choices=KERNELS)
    ap.add_argument("--schedule", default="default", choices=LEVELS, help="tvm kernels: schedule level")
    ap.add_argument("--opt", default="-O2", choices=OPTS)
    ap.add_argument("--profile-layers", action="store_true", help="call trm_layer_begin/end around each kernel")
    ap.add_argument("--out", required=True, help="build directory to write")
    a = ap.parse_args(argv)
    b = compile_artifact(a.artifact, a.board, a.kernels, a.out, a.schedule, a.opt, a.profile_layers)
    print(f"{a.out}: {b['kernels']} kernels, arena {b['arena_bytes']} bytes, constants "
          f"{sum(b['weight_bytes'].values())} bytes (exact static sizes) -> build.json, memory_plan.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
