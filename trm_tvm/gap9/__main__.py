"""python -m trm_tvm.gap9 deploy --artifact <a.npz> --out <dir> [--inputs N] [--seed S] [--q-threshold Q]
                              [--schedule naive|default|tuned [--schedules <root>]] [--kernels handwritten|tir]
python -m trm_tvm.gap9 calibration
python -m trm_tvm.gap9 probe

deploy: generate the GAP9 PMSIS project (<dir>/project), syntax-check it against our PMSIS prototypes, run its
functional build on 9 QEMU harts against the golden model (fixed compute and halting), and write
<dir>/gap9_deploy.json with modeled cycles/latency/energy per phase and per inference, L1/L2 use, and the published
GAP9 figures. calibration: the cycle model's check against PULP-NN's published int8 MAC/cycle. probe: the inner
loops TVM's LLVM emits for CORE-V (plain TIR and the SIMD per-core kernel) beside the cycle model's assumption.
Tuning is `python -m trm_tvm.tune --board gap9` (trm_tvm.gap9.tune).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from trm_tvm.errors import UserError, cli_main


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.gap9", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deploy", help="project + functional run + modeled figures")
    d.add_argument("--artifact", required=True, type=Path)
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--inputs", type=int, default=20, help="self-check inputs (each run with fixed compute and halting)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--q-threshold", type=int, default=None, help="halting threshold (default: the artifact's)")
    d.add_argument("--schedule", choices=("naive", "default", "tuned"), default="default",
                   help="linear-layer tilings; tuned = the GAP9 tuning database (python -m trm_tvm.tune --board gap9)")
    d.add_argument("--kernels", choices=("handwritten", "tir"), default="handwritten",
                   help="per-core compute of the linear layers: the hand-written loop or kernels generated from "
                        "the TIR linear strategy")
    d.add_argument("--schedules", type=Path, default=None, help="database root (default: the repository's schedules/)")
    d.add_argument("--checks", type=int, choices=(0, 1, 2), default=1,
                   help="compat checker level of the functional run (docs/gap9.md); 0 is ~2.5x faster")
    sub.add_parser("calibration", help="the cycle model against PULP-NN")
    sub.add_parser("probe", help="CORE-V inner loops from TVM's LLVM vs the cycle model (exact static)")
    a = ap.parse_args(argv)

    if a.cmd == "probe":
        from trm_tvm.gap9 import corev_probe

        for line in corev_probe.report():
            print(line)
        return 0

    if a.cmd == "calibration":
        from trm_tvm.gap9 import cycles
        from trm_tvm.gap9.board import load_gap9

        cal = cycles.pulpnn_check(load_gap9())
        print(f"cycle model v{cycles.MODEL_VERSION}: {cal.modeled_macs_per_cycle:.2f} int8 MAC/cycle on 8 cores "
              f"(modeled) vs PULP-NN {cal.published_macs_per_cycle} (published): {cal.relative_error:+.1%} -> "
              f"{'calibrated' if cal.calibrated else 'UNCALIBRATED'} (+-30 % band; layer shape assumed, docs/gap9.md)")
        return 0

    from trm_tvm.gap9.deploy import deploy, summary_lines

    if a.inputs < 1:
        raise UserError(f"--inputs must be >= 1, got {a.inputs}", "pass a positive count")
    r = deploy(a.artifact, a.out, a.inputs, a.seed, a.q_threshold, checks=a.checks, schedule=a.schedule,
               db_root=a.schedules, tir_kernels=a.kernels == "tir")
    for line in summary_lines(r):
        print(line)
    print(f"-> {a.out / 'gap9_deploy.json'}")
    return 0 if r["functional"]["golden"]["bit_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
