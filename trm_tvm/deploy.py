"""python -m trm_tvm.deploy: compile, build, flash, run a session and check it against the golden model, in one
command.

    python -m trm_tvm.deploy --artifact <a> --board <board> [--kernels tvm|reference|handwritten]
                             [--schedule naive|default|tuned] [--limit N] [--fixed-steps K] [--data <npz>] --json <out>

The build directory and the project go under --work (default build/deploy/<board>-<kernels>-<artifact>); the
session result (docs/session.md) goes to --json. Exit code 0 only when every output is bit-exact.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trm_tvm import project as proj
from trm_tvm.compile.backends import KERNELS
from trm_tvm.compile.driver import OPTS, compile_artifact
from trm_tvm.compile.strategies import LEVELS
from trm_tvm.errors import cli_main
from trm_tvm.jsonio import REPO_ROOT
from trm_tvm.provenance import fmt
from trm_tvm.session import run_session


def deploy(artifact: str | Path, board: str, kernels: str = "tvm", schedule: str = "default", opt: str = "-O2",
           work: str | Path | None = None, limit: int | None = None, fixed_steps: int | None = None,
           q_threshold: int | None = None, data: str | None = None, seed: int = 0, out: str | Path | None = None,
           log=lambda m: None) -> dict:
    """compile -> generate_project -> build -> session (QEMU started / board flashed) -> result dict."""
    work = Path(work or REPO_ROOT / "build" / "deploy" / f"{board}-{kernels}-{schedule}-{Path(artifact).stem}")
    compile_artifact(artifact, board, kernels, work / "build", schedule, opt)
    project = proj.generate_project(work / "build", board, work / "project")
    log(f"building {project.dir}")
    proj.build(project)
    return run_session(project, data=data, limit=limit, fixed_steps=fixed_steps, q_threshold=q_threshold,
                       seed=seed, artifact=str(artifact), out=out, log=log)


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.deploy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--board", required=True)
    ap.add_argument("--kernels", default="tvm", choices=KERNELS)
    ap.add_argument("--schedule", default="default", choices=LEVELS)
    ap.add_argument("--opt", default="-O2", choices=OPTS)
    ap.add_argument("--limit", type=int, help="at most N inferences")
    ap.add_argument("--fixed-steps", type=int, help="fixed compute: K supervision steps, no halting")
    ap.add_argument("--q-threshold", type=int, help="learned halting at this int q threshold (default: artifact's)")
    ap.add_argument("--halting-study", help="a halting study's halting.json (python -m trm_tvm.halting): print its "
                                            "operating point and run at its threshold unless --q-threshold is given")
    ap.add_argument("--data", help=".npz with `inputs` [and `labels`]; default random inputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="where the build directory and the project go")
    ap.add_argument("--json", required=True, help="session result (docs/session.md)")
    a = ap.parse_args(argv)
    if a.board == "gap9":  # GAP9 has its own project, functional QEMU build and cycle model (docs/gap9.md)
        from trm_tvm.gap9.deploy import deploy_cli
        return deploy_cli(a)
    if a.halting_study:
        from trm_tvm.halting import operating_point_text, operating_threshold
        print(operating_point_text(a.halting_study), file=sys.stderr)
        a.q_threshold = operating_threshold(a.halting_study) if a.q_threshold is None else a.q_threshold
    r = deploy(a.artifact, a.board, a.kernels, a.schedule, a.opt, a.work, a.limit, a.fixed_steps, a.q_threshold,
               a.data, a.seed, a.json, log=lambda m: print(m, file=sys.stderr))
    s = r["summary"]
    lat = fmt(s["latency"]["mean"]) if "latency" in s else "n/a"
    print(f"{r['board']} ({a.kernels}, {a.schedule}): {s['bit_exact']}/{s['checked']} bit-exact vs golden over "
          f"{s['inferences']} inferences, mean latency {lat} -> {a.json}")
    return 0 if s["all_bit_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
