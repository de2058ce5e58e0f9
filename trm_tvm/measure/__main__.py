"""python -m trm_tvm.measure {memory|timing|energy|check-published}: the measurement stage on its own."""
from __future__ import annotations

import argparse

from trm_tvm.boards import load_board
from trm_tvm.errors import UserError, cli_main
from trm_tvm.jsonio import run_info, write_json
from trm_tvm.provenance import fmt


def _groups(specs: list[str]) -> dict[str, list[str]] | None:
    out = {}
    for spec in specs:
        name, sep, pats = spec.partition("=")
        if not sep or not name or not pats:
            raise UserError(f"--group {spec!r} is not NAME=PATTERN[,PATTERN...]", "e.g. --group kernels='trm_*'")
        out[name] = pats.split(",")
    return out or None


def _print_summary(summary: dict) -> None:
    for name, s in [("total", summary["total"]), *summary["groups"].items()]:
        print(f"{name:28s} {fmt(s['instructions'])}  {fmt(s['cycles'])}  {fmt(s['latency'])}  {fmt(s['energy'])}")


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.measure", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("memory", help="flash/RAM of a firmware ELF, checked against the board")
    m.add_argument("--elf", required=True)
    m.add_argument("--board", required=True)
    m.add_argument("--peak-stack", type=int, help="painted peak stack in bytes, from the firmware")
    t = sub.add_parser("timing", help="run a self-exiting firmware on the board's emulator under the timing plugin")
    t.add_argument("--elf", required=True)
    t.add_argument("--board", required=True)
    t.add_argument("--group", action="append", default=[], help="NAME=PATTERN[,PATTERN] over function names")
    t.add_argument("--timeout", type=float, default=600)
    e = sub.add_parser("energy", help="integrate a power-analyser trace (time,current,voltage,trigger CSV)")
    e.add_argument("--trace", required=True)
    e.add_argument("--trigger-delay-us", type=float, default=0.0)
    e.add_argument("--subtract-baseline", action="store_true")
    c = sub.add_parser("check-published", help="the timing model against published Cortex-M cycle figures")
    c.add_argument("--board", default="cortex-m4")
    for p in (m, t, e, c):
        p.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)

    if args.cmd == "memory":
        from trm_tvm.measure.memory import format_report, memory_report
        result = memory_report(args.elf, load_board(args.board), peak_stack=args.peak_stack)
        print(format_report(result))
    elif args.cmd == "timing":
        from trm_tvm.measure import report, timing
        groups, board = _groups(args.group), load_board(args.board)
        if board.emulator is None:
            raise UserError(f"board {board.name} has no emulator", "use an emulated board (cortex-m4, ...)")
        counts = timing.run_with_plugin(list(board.emulator.command) + ["-kernel", args.elf], args.elf, board,
                                        timeout=args.timeout)
        result = {"counts": counts, **report.summarize(counts, board, groups)}
        _print_summary(result)
    elif args.cmd == "energy":
        from trm_tvm.measure.energy import energy_from_trace
        result = energy_from_trace(args.trace, args.trigger_delay_us * 1e-6, args.subtract_baseline)
        print(f"{len(result['windows'])} window(s): {fmt(result['energy'])} per window, "
              f"{fmt(result['duration'])}, idle {fmt(result['baseline_power'])}")
    else:
        from trm_tvm.measure import calibration
        rows = calibration.check_published(load_board(args.board))
        print(calibration.format_rows(rows))
        result = {"rows": rows}
    if args.json:
        write_json(args.json, {"schema": f"trm-tvm-measure-{args.cmd}", "version": 1, "run": run_info(), **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
