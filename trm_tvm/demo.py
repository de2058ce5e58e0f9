"""`make demo`: the main job end to end; see README.md.

1. Every committed checkpoint (checkpoints/<name>/model.pt) is re-evaluated live on the first DEMO_LIMIT items of
   its test set, next to the full-test-set figures stored in its eval.json (TRM, non-recursive baseline,
   MiniRocket), so the table shows both what runs now and what the committed evaluation measured.
2. The committed ECG W8A8 artifact is compiled with the tvm back end, built for the emulated Cortex-M4 and run
   through the serial session on the first DEVICE_INPUTS test series, every supervision step checked bit-exact
   against the integer golden model; then accuracy, latency, energy and memory are printed with their provenance,
   with the learned-halting operating point against fixed compute.
"""
from __future__ import annotations

import argparse
import sys

from trm_tvm.errors import UserError, cli_main
from trm_tvm.evaluate import evaluate_checkpoint, headline, table_rows
from trm_tvm.jsonio import REPO_ROOT, read_json
from trm_tvm.provenance import fmt

DEMO_LIMIT = 500
DEVICE_BOARD = "cortex-m4"
DEVICE_ARTIFACT = "artifacts/ecg_w8a8.npz"
DEVICE_CHECKPOINT = "checkpoints/ecg/model.pt"
DEVICE_INPUTS = 100
TIMING_MODEL_INPUTS = 10   # under the QEMU timing plugin; the rest costed by its cycles per instruction


def pct(h: dict) -> str:
    return f"{100 * h['value']:.1f} % [{100 * h['ci95'][0]:.1f}, {100 * h['ci95'][1]:.1f}]"


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=DEMO_LIMIT, help="test items evaluated live per checkpoint")
    ap.add_argument("--device-inputs", type=int, default=DEVICE_INPUTS, help="test series run on the device")
    ap.add_argument("--kernels", default="tvm", choices=("tvm", "reference", "handwritten"))
    args = ap.parse_args(argv)
    checkpoint_table(args.limit)
    device_run(args.device_inputs, args.kernels)
    return 0


def checkpoint_table(limit: int) -> None:
    ckpts = sorted(p.parent for p in (REPO_ROOT / "checkpoints").glob("*/model.pt"))
    if not ckpts:
        raise UserError("no committed checkpoints under checkpoints/", "train one: python -m trm_tvm.train ...")
    for d in ckpts:
        stored = read_json(d / "eval.json", "stored evaluation")
        live = evaluate_checkpoint(d / "model.pt", limit=limit, anchor=False, baseline=False)
        metric = "cell accuracy on blanks" if live["task"] == "sudoku" else "accuracy"
        sz = stored["sizes"]
        print(f"\n== {d.name}: task {live['task']}, {sz['params']['value']} params, "
              f"{sz['macs_fixed_inference']['value'] / 1e6:.2f} M MACs per fixed-compute inference")
        print(f"  live, first {live['n_test']} test items: TRM fixed compute {metric} {pct(headline(live['fixed']))}, "
              f"halting {pct(headline(live['halting']))} in {live['halting']['mean_steps']:.2f} steps (measured, "
              f"PyTorch FP32 on this host)")
        print(f"  stored eval.json, all {stored['n_test']} test items:")
        for what, score, macs in table_rows(stored):
            print(f"    {what:44s} {score:42s} {macs}")


def device_run(n_inputs: int, kernels: str) -> None:
    """Compile, build, flash (QEMU) and run the ECG W8A8 model; print what a user of the board wants to know."""
    from trm_tvm import project as proj
    from trm_tvm.halting import operating_point_text, run_study
    from trm_tvm.session import run_session

    work = REPO_ROOT / "build" / "demo" / f"{DEVICE_BOARD}-{kernels}"
    artifact, checkpoint = REPO_ROOT / DEVICE_ARTIFACT, REPO_ROOT / DEVICE_CHECKPOINT
    print(f"\n== ECG TRM, {DEVICE_ARTIFACT} on {DEVICE_BOARD} (QEMU, {kernels} kernels): compiling, building and "
          f"running {n_inputs} test series over the serial session ...", flush=True)
    res = run_study(artifact, DEVICE_BOARD, work / "halting", kernels=kernels, checkpoint=str(checkpoint),
                    limit=n_inputs, timing_model=min(TIMING_MODEL_INPUTS, n_inputs), work=work,
                    log=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    # One more short session on the same firmware for the painted stack (the study's runs log steps instead).
    project = proj.load_project(work / "project")
    sess = run_session(project, limit=2, artifact=str(artifact))
    mem, stack = sess["memory"], max((r["model_stack"] for r in sess["inferences"]), key=lambda f: f["value"])
    arena = read_json(work / "build" / "build.json", "build manifest")["arena_bytes"]

    meta, be = res["meta"], res["bit_exact"]
    quant, fp = res["variants"][meta["precision"]], res["variants"].get("fp")
    full = quant["points"][quant["full_compute"]]
    tau = next(p for p in quant["points"] if p["policy"] == "learned" and p["value"] == meta["tau"])
    cost = res["cost"]

    def acc(p: dict) -> str:          # counted on outputs that are bit-exact with the golden model: measured
        return f"{100 * p['accuracy']:.1f} % [{100 * p['ci95'][0]:.1f}, {100 * p['ci95'][1]:.1f}] (measured)"

    def lat(s: float) -> str:
        return f"{1e3 * s:.1f} ms"

    kib = lambda f: f"{f['value'] / 1024:.1f} KiB"  # noqa: E731
    print(f"  data: {meta['data']}")
    print(f"  bit-exact vs the integer golden model: {be['all_steps_bit_exact']}/{be['inputs']} inputs, "
          f"logits and q of every supervision step")
    fp_full = f"; FP32 on the host {acc(fp['points'][fp['full_compute']])}" if fp else ""
    print(f"  accuracy, fixed compute ({full['value']} steps): {acc(full)} on the device{fp_full}")
    print(f"  accuracy, learned halting at tau={meta['tau']}: {acc(tau)}, {tau['steps_mean']:.2f} steps on average (measured)")
    print(f"  latency ({cost['provenance']}, {cost['unit']} at the board clock): fixed compute {lat(full['latency_mean_s'])}; "
          f"learned halting mean {lat(tau['latency_mean_s'])}, p99 {lat(tau['latency_p99_s'])}, "
          f"worst {lat(tau['latency_max_s'])} (bound: N_sup steps, {fmt(res['worst_case_bound'])})")
    print(f"  energy per inference (modeled): fixed compute {1e3 * full['energy_mean_j']:.2f} mJ, "
          f"learned halting mean {1e3 * tau['energy_mean_j']:.2f} mJ")
    print(f"  flash: {kib(mem['flash'])} ({mem['flash']['provenance']}), of which weights {kib(mem['weights'])} "
          f"and code {kib(mem['code'])}; RAM for the model: arena {arena / 1024:.1f} KiB (measured: static memory plan) + peak stack "
          f"{stack['value']} B ({stack['provenance']}); the whole firmware reserves {kib(mem['ram'])} RAM "
          f"({mem['ram']['provenance']}, incl. the stack reservation, the self-test work area that the arena shares, and the RPC buffers)")
    print(f"  {operating_point_text(work / 'halting' / 'halting.json')}")
    print(f"  sources -- cycles: {cost['source']}")
    print(f"             energy: {res['energy_source']}")
    print(f"             memory: {'; '.join(dict.fromkeys([mem['flash']['source'], mem['ram']['source']]))}")
    print(f"  full study: {work / 'halting'} (summary.md, halting.json, plots)")


if __name__ == "__main__":
    raise SystemExit(main())
