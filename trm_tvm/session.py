"""Benchmarking session: run inferences (or kernel self-tests) on a board over the RPC link, check every output
bit-exact against the golden model, report cycles and latency with their provenance (docs/session.md).

    python -m trm_tvm.session --project <dir> [--port socket://...|/dev/tty...] [--data <npz>] [--limit N]
                              [--fixed-steps K] [--self-test] --json <out>

Without --port an emulated board is started on QEMU (and a hardware board flashed) through trm_tvm.project; with
--port the session talks to whatever already runs there (e.g. `make run` in the project, or a board's tty) after
checking that it runs this project's build. Results are written after every inference, so an interrupted session
resumes where it stopped when rerun with the same arguments.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trm_tvm import project as proj
from trm_tvm import rpc
from trm_tvm.errors import UserError, cli_main
from trm_tvm.jsonio import read_json, run_info, write_json
from trm_tvm.provenance import figure, fmt
from trm_tvm.project import selftest

SCHEMA = "trm-tvm-session"
INT32_MAX = 2**31 - 1
# golden(inputs (B, *input_shape), q_threshold, max_steps) -> {"logits": (B, output_len), "pred": (B,),
#                                                             "steps": (B,), "q": (B,)}
GoldenFn = Callable[[np.ndarray, int, int], dict]


# ------------------------------------------------------------------------------------------------ the device
class Session:
    """An open link to a device running a project's firmware (started/flashed unless a port is given)."""

    def __init__(self, project: proj.Project, port: str | None = None, flash: bool = True, timeout: float = 2.0,
                 qemu_args: tuple[str, ...] = ()):
        self.project, self.device, self.port = project, None, None
        if port is None and (flash or project.board.emulated):
            proj.build(project)                      # make is incremental: a no-op when up to date
            self.device = proj.flash(project, extra_args=qemu_args)
        try:
            self.port = proj.open_transport(self.device or port or project.board.transport.port)
            self.client = rpc.RpcClient(self.port, timeout=timeout)
            self.info = self.client.info()
            self._check_identity()
        except BaseException:
            self.close()
            raise

    def _check_identity(self) -> None:
        if self.info.get("protocol") != str(rpc.PROTOCOL_VERSION):
            raise UserError(f"the device speaks RPC protocol {self.info.get('protocol', '?')}, this host "
                            f"{rpc.PROTOCOL_VERSION}", "regenerate, rebuild and reflash the project")
        want = {"board": self.project.board.name, "build_id": self.project.build_id}
        got = {k: self.info.get(k, "?") for k in want}
        if got != want:
            raise UserError(f"the device runs {got['board']} build {got['build_id']}, the project is "
                            f"{want['board']} build {want['build_id']}", "flash this project's firmware first")

    def close(self) -> None:
        proj.close_transport(self.port, self.device)
        self.port = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------ figures
def counter_figures(board, ticks: int) -> dict[str, Any]:
    """Device counter ticks -> emulated instructions (QEMU) or measured cycles (DWT), and latency at the clock."""
    clock = board.part.clock_hz
    if board.counter == "systick-icount":
        ipt = board.emulator.instructions_per_tick
        ins = ticks * ipt
        src = (f"QEMU -icount shift={board.emulator.icount_shift} SysTick ({board.emulator.systick_hz / 1e6:g} MHz,"
               f" {ipt:g} instructions/tick, +-1 tick)")
        return {"counter_ticks": figure(ticks, "ticks", "emulated", src),
                "instructions": figure(ins, "instructions", "emulated", src),
                "latency": figure(ins / clock, "s", "modeled",
                                  f"emulated instructions at 1 cycle each, {board.part.name} at {clock / 1e6:g} MHz "
                                  "(no timing model, no wait states)")}
    src = f"DWT CYCCNT on {board.part.name}"
    return {"counter_ticks": figure(ticks, "ticks", "measured", src),
            "cycles": figure(ticks, "cycles", "measured", src),
            "latency": figure(ticks / clock, "s", "measured", f"{src} at {clock / 1e6:g} MHz")}


# ------------------------------------------------------------------------------------------------ golden model
def artifact_golden(project: proj.Project, artifact: str | None = None) -> tuple[GoldenFn | None, str]:
    """The golden model of the project's artifact, or (None, why not)."""
    meta = project.manifest.get("artifact") or {}
    path = Path(artifact or meta.get("path", ""))
    if not path.is_file():
        return None, f"artifact {path} not found (pass --artifact)"
    from trm_tvm.quant.artifact import Artifact, file_sha256
    from trm_tvm.quant.golden import Golden

    if meta.get("sha256") and file_sha256(path) != meta["sha256"]:
        raise UserError(f"artifact {path} is not the one the project was compiled from (sha256 differs)",
                        "pass the right --artifact or recompile")
    golden = Golden(Artifact.load(path))

    def run(inputs: np.ndarray, q_thr: int, max_steps: int) -> dict:
        g = golden.infer(inputs, q_thr, max_steps)
        q_last = g.q[np.arange(len(g.steps)), g.steps - 1]
        return {"logits": g.logits.reshape(len(inputs), -1), "pred": g.pred, "steps": g.steps, "q": q_last}
    return run, f"trm_tvm.quant.golden on {path}"


def default_halting(project: proj.Project) -> int:
    h = project.manifest.get("halting") or {}
    return int(h.get("q_thr", INT32_MAX))


# ------------------------------------------------------------------------------------------------ inputs
def load_inputs(project: proj.Project, data: str | None, limit: int | None, seed: int
                ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(inputs (N, *input_shape), labels or None, description). --data: .npz with `inputs` [and `labels`]."""
    io = project.manifest["io"]
    shape, dtype = tuple(io["input_shape"]), np.dtype(io.get("input_dtype", "int8"))
    if data:
        p = Path(data)
        if not p.is_file():
            raise UserError(f"data file {p} does not exist", "pass an .npz with an `inputs` array")
        try:
            with np.load(p) as z:
                x, y = z["inputs"], (z["labels"] if "labels" in z.files else None)
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"data file {p} is not an .npz with an `inputs` array ({e})", "see docs/session.md")
        if x.shape[1:] != shape or x.dtype != dtype:
            raise UserError(f"data file {p}: inputs are {x.dtype}{list(x.shape[1:])}, the model takes "
                            f"{dtype}{list(shape)}", "use data prepared for this artifact")
        desc = str(p)
    else:
        n = limit or 8
        rng = np.random.default_rng(seed)
        info = np.iinfo(dtype)
        hi = 10 if dtype == np.uint8 else info.max + 1          # token inputs are digits
        x = rng.integers(0 if dtype == np.uint8 else info.min, hi, (n, *shape)).astype(dtype)
        y, desc = None, f"random {dtype} inputs, seed {seed}"
    if limit is not None:
        x, y = x[:limit], (y[:limit] if y is not None else None)
    return x, y, desc


# ------------------------------------------------------------------------------------------------ inference
def _compare(dev: dict, gold: dict, i: int, per_token: bool) -> dict:
    mism = []
    if not np.array_equal(dev["logits"], gold["logits"][i]):
        bad = np.flatnonzero(dev["logits"] != gold["logits"][i])
        mism.append(f"logits differ at {bad.size} positions (first {int(bad[0])}: device "
                    f"{int(dev['logits'][bad[0]])}, golden {int(gold['logits'][i][bad[0]])})")
    if dev["steps"] != int(gold["steps"][i]):
        mism.append(f"steps {dev['steps']} vs golden {int(gold['steps'][i])}")
    if dev["q"] != int(gold["q"][i]):
        mism.append(f"q {dev['q']} vs golden {int(gold['q'][i])}")
    if not per_token and dev["pred"] != int(np.asarray(gold["pred"][i]).ravel()[0]):
        mism.append(f"pred {dev['pred']} vs golden {int(np.asarray(gold['pred'][i]).ravel()[0])}")
    return {"bit_exact": not mism, "mismatch": mism}


def run_inference(s: Session, x: np.ndarray, q_thr: int, max_steps: int) -> dict:
    c = s.client
    c.load_input(np.ascontiguousarray(x).tobytes())
    r = c.run(q_thr, max_steps)
    logits = c.read_output(int(s.project.manifest["io"]["output_len"]))
    stats = c.read_stats()
    profiled = int((s.project.manifest.get("defines") or {}).get("TRM_PROFILE_LAYERS", 0))
    return {"logits": logits, "pred": r["pred"], "steps": r["steps"], "q": r["q"], "ticks": r["ticks"],
            "stats": stats, "layers": c.read_layers() if profiled else None}


def _record(i: int, dev: dict, gold: dict | None, labels: np.ndarray | None, project: proj.Project) -> dict:
    """One inference of the result JSON: outputs, golden check, counter figures per RUN/phase/layer, stack."""
    board, io = project.board, project.manifest["io"]
    per_token = bool(io.get("per_token"))
    rec: dict[str, Any] = {"index": i, "pred": dev["pred"], "steps": dev["steps"], "q": dev["q"],
                           "logits": dev["logits"].tolist()}
    if labels is not None and not per_token:
        rec["label"] = int(np.asarray(labels[i]).ravel()[0])
    rec.update(_compare(dev, gold, i, per_token) if gold else {"bit_exact": None, "mismatch": ["no golden model"]})
    rec.update(counter_figures(board, dev["ticks"]))
    rec["phases"] = {name: {"calls": ph["calls"], **counter_figures(board, ph["ticks"])}
                     for name, ph in zip(project.manifest["phases"], dev["stats"]["phases"])}
    if dev["layers"] is not None:
        rec["layers"] = [{"op_index": k, "calls": l["calls"], **counter_figures(board, l["ticks"])}
                         for k, l in enumerate(dev["layers"]) if l["calls"]]
    prov = board.counter_provenance
    rec["peak_stack"] = figure(dev["stats"]["peak_stack_bytes"], "bytes", prov, "stack painting (whole firmware)")
    rec["model_stack"] = figure(dev["stats"]["model_stack_bytes"], "bytes", prov,
                                "stack painting below the RUN handler's frame")
    return rec


def run_session(project: proj.Project, *, port: str | None = None, data: str | None = None,
                limit: int | None = None, fixed_steps: int | None = None, q_threshold: int | None = None,
                seed: int = 0, golden: GoldenFn | None = None, golden_source: str = "",
                artifact: str | None = None, out: str | Path | None = None, flash: bool = True,
                timeout: float = 2.0, timing_model: bool = False, log: Callable[[str], None] = lambda m: None) -> dict:
    """Run the inferences and return (and write to `out`, after each one) the session result (docs/session.md).

    timing_model: run QEMU with trm_tvm.measure's TCG plugin and add modeled cycles, latency and energy."""
    board, m = project.board, project.manifest
    n_sup = int(m["schedule_info"]["N_sup"])
    if fixed_steps is not None and not 1 <= fixed_steps <= n_sup:
        raise UserError(f"--fixed-steps must be in 1..{n_sup}, got {fixed_steps}", "N_sup is the model's limit")
    q_thr = INT32_MAX if fixed_steps else (default_halting(project) if q_threshold is None else q_threshold)
    max_steps = fixed_steps or n_sup
    if golden is None:
        golden, golden_source = artifact_golden(project, artifact)
    inputs, labels, data_desc = load_inputs(project, data, limit, seed)
    settings = {"halting": "fixed" if fixed_steps else "learned", "q_threshold": q_thr, "max_steps": max_steps,
                "data": data_desc, "limit": limit, "seed": seed}
    result = _resume(out, project, settings) or _new_result(project, settings, golden_source or "unavailable")
    gold = golden(inputs, q_thr, max_steps) if golden else None
    done = len(result["inferences"])
    if done >= len(inputs):
        return _finish(result, board, out)
    plugin = _prepare_plugin(project, port) if timing_model else None
    new: list[dict] = []
    with Session(project, port=port, flash=flash, timeout=timeout,
                 qemu_args=tuple(plugin.qemu_args) if plugin else ()) as s:
        result["device"] = {"url": s.port.portstr if hasattr(s.port, "portstr") else port, "info": s.info,
                            "emulator": s.device.command if s.device and s.device.process else None}
        for i in range(done, len(inputs)):
            t0 = time.monotonic()
            dev = run_inference(s, inputs[i], q_thr, max_steps)
            rec = _record(i, dev, gold, labels, project)
            rec["host_seconds"] = round(time.monotonic() - t0, 4)
            result["inferences"].append(rec)
            new.append(rec)
            log(f"{i}: pred {rec['pred']} steps {rec['steps']} {fmt(rec['latency'])} "
                f"{'bit-exact' if rec['bit_exact'] else 'MISMATCH' if rec['bit_exact'] is False else 'unchecked'}")
            result["link"] = vars(s.client.stats)
            if out:
                write_json(out, _finish(result, board, None))
    if plugin:                                  # QEMU has stopped: the plugin's counts are written
        _add_timing_model(plugin, new, project)
    if project.elf.is_file():
        from trm_tvm.measure import memory
        peak = max((r["peak_stack"]["value"] for r in result["inferences"]), default=None)
        result["memory"] = memory.memory_report(project.elf, board, peak_stack=peak, check=False)
    return _finish(result, board, out)


def _prepare_plugin(project: proj.Project, port: str | None):
    from trm_tvm.measure import timing
    if port is not None or not project.board.emulated:
        raise UserError("--timing-model needs the emulator started by the session", "drop --port")
    proj.build(project)
    return timing.prepare_plugin(project.elf, project.board, project.dir / "build" / "timing",
                                 marks=timing.SESSION_MARKS)


def _add_timing_model(plugin, records: list[dict], project: proj.Project) -> None:
    """Modeled cycles, latency and energy per inference and phase from the QEMU plugin's instruction classes."""
    from trm_tvm.measure import energy, timing
    board = project.board
    per = timing.per_inference(plugin.snapshots(), int(project.manifest["schedule_info"]["calls_per_step"]))
    if len(per) != len(records):
        raise UserError(f"the timing plugin saw {len(per)} inferences, the session ran {len(records)}",
                        "rerun; if it persists the firmware's phase hooks are not out of line")
    for rec, inf in zip(records, per):
        row = timing.total(inf["run"])
        cyc = timing.cycles(row, board)
        rec["timing_model"] = {
            "instructions": timing.instructions(row), "cycles": cyc, "latency": timing.latency_s(cyc, board),
            "energy": energy.energy_modeled(cyc, board),
            "phases": {name: timing.cycles(timing.total(c), board) for name, c in inf["phases"].items()}}


def _new_result(project: proj.Project, settings: dict, golden_source: str) -> dict:
    m = project.manifest
    return {"schema": SCHEMA, "version": 1, "kind": "inference", "board": project.board.name,
            "board_kind": project.board.kind,
            "project": {"dir": str(project.dir), "build_id": project.build_id, "artifact": m.get("artifact"),
                        "kernels": m.get("kernels"), "schedule": m.get("schedule"), "opt": m.get("opt")},
            "settings": settings, "golden": golden_source, "inferences": [], "provenance": run_info()}


def _resume(out, project: proj.Project, settings: dict) -> dict | None:
    if not out or not Path(out).is_file():
        return None
    old = read_json(out, "session result")
    same = (old.get("schema") == SCHEMA and old.get("kind") == "inference" and
            old.get("project", {}).get("build_id") == project.build_id and old.get("settings") == settings)
    return old if same else None


def _finish(result: dict, board, out) -> dict:
    inf = result["inferences"]
    checked = [r for r in inf if r["bit_exact"] is not None]
    s: dict[str, Any] = {"inferences": len(inf), "checked": len(checked),
                         "bit_exact": sum(bool(r["bit_exact"]) for r in checked),
                         "all_bit_exact": bool(checked) and len(checked) == len(inf) and all(r["bit_exact"] for r in inf)}
    if inf:
        key = "instructions" if "instructions" in inf[0] else "cycles"
        for k in (key, "latency", "peak_stack"):
            vals = [r[k]["value"] for r in inf]
            f0 = inf[0][k]
            s[k] = {stat: figure(fn(vals), f0["unit"], f0["provenance"], f0["source"])
                    for stat, fn in (("mean", lambda v: float(np.mean(v))), ("min", min), ("max", max))}
        s["steps_mean"] = float(np.mean([r["steps"] for r in inf]))
        modeled = [r["timing_model"] for r in inf if "timing_model" in r]
        if modeled:
            s["timing_model"] = {k: figure(float(np.mean([t[k]["value"] for t in modeled])), modeled[0][k]["unit"],
                                           modeled[0][k]["provenance"], modeled[0][k]["source"])
                                 for k in ("instructions", "cycles", "latency", "energy")}
        labelled = [r for r in inf if r.get("label") is not None]
        if labelled:
            s["accuracy"] = sum(r["pred"] == r["label"] for r in labelled) / len(labelled)
    result["summary"] = s
    if out:
        write_json(out, result)
    return result


def add_power_trace(result: dict, trace: str, trigger_delay_s: float = 0.0, out=None) -> dict:
    """Measured energy from a power analyser's trace of this session (the trigger GPIO is high during each RUN)."""
    from trm_tvm.measure import energy
    meas = energy.energy_from_trace(trace, trigger_delay_s=trigger_delay_s)
    n = len(result["inferences"])
    if len(meas["windows"]) != n:
        raise UserError(f"power trace {trace} has {len(meas['windows'])} trigger windows, the session ran {n} "
                        "inferences", "capture the whole session, or rerun it with --limit to match the trace")
    result["energy_measured"] = meas
    if out:
        write_json(out, result)
    return result


# ------------------------------------------------------------------------------------------------ self-test
def run_selftests(project: proj.Project, *, port: str | None = None, batches: int = 4, seed: int = 1,
                  kernels: dict[str, list[int] | None] | None = None, out: str | Path | None = None,
                  flash: bool = True, timeout: float = 2.0, log: Callable[[str], None] = lambda m: None) -> dict:
    """Every kernel of the firmware's self-test table, or those in `kernels` ({name: params or None for the
    op's example shape}): seeded batches checked by CRC, the kernel call timed on the device."""
    board = project.board
    ents = selftest.entries(project.info["selftest_variants"])
    result = {"schema": SCHEMA, "version": 1, "kind": "self-test", "board": board.name, "board_kind": board.kind,
              "project": {"dir": str(project.dir), "build_id": project.build_id},
              "settings": {"batches": batches, "seed": seed}, "kernels": [], "provenance": run_info()}
    with Session(project, port=port, flash=flash, timeout=timeout) as s:
        listed = s.client.kernels()
        if [n for n, _ in listed] != [e.name for e in ents]:
            raise UserError("the firmware's self-test table differs from the project's", "rebuild and reflash")
        unknown = sorted(set(kernels or {}) - {e.name for e in ents})
        if unknown:
            raise UserError(f"no self-test kernel {unknown[0]}", f"known: {', '.join(e.name for e in ents)}")
        for i, (e, (name, present)) in enumerate(zip(ents, listed)):
            if kernels and name not in kernels:
                continue
            params = list((kernels or {}).get(name) or e.spec.example)
            if len(params) != len(e.spec.params):
                raise UserError(f"{name} takes {len(e.spec.params)} parameters ({', '.join(e.spec.params)}), "
                                f"got {params}", "e.g. --kernel trm_linear_s8_ref:8,64,128")
            rec: dict[str, Any] = {"kernel": name, "present": present, "params": dict(zip(e.spec.params, params))}
            if present:
                res = selftest.run_selftest(s.client, i, e, params, seed, batches)
                rec["batches"] = len(res)
                rec["passed"] = sum(r.ok for r in res)
                rec["mismatches"] = [{"batch": r.batch, **r.mismatch} for r in res if not r.ok]
                rec.update(counter_figures(board, int(np.median([r.ticks for r in res]))))
                work = rec.get("instructions") or rec["cycles"]
                log(f"{name} {rec['params']}: {rec['passed']}/{rec['batches']} batches bit-exact, {fmt(work)}")
            else:
                log(f"{name}: not linked into this firmware")
            result["kernels"].append(rec)
        result["link"] = vars(s.client.stats)
    tested = [k for k in result["kernels"] if k["present"]]
    result["summary"] = {"kernels": len(tested), "absent": len(result["kernels"]) - len(tested),
                         "all_bit_exact": bool(tested) and all(k["passed"] == k["batches"] for k in tested)}
    if out:
        write_json(out, result)
    return result


# ------------------------------------------------------------------------------------------------ CLI
def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"kernel parameters must be integers, got {text!r}", "e.g. --kernel trm_linear_s8_ref:8,64,128")



@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.session", description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", required=True, help="a project made by trm_tvm.project.generate_project")
    ap.add_argument("--port", help="socket://host:port or a tty; default: start QEMU / flash the board")
    ap.add_argument("--no-flash", action="store_true", help="hardware: do not flash, just open the board's tty")
    ap.add_argument("--data", help=".npz with `inputs` (N, *input_shape) [and `labels`]; default random inputs")
    ap.add_argument("--limit", type=int, help="at most N inferences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed-steps", type=int, help="fixed compute: K supervision steps, no halting")
    ap.add_argument("--q-threshold", type=int, help="learned halting at this int q threshold (default: artifact's)")
    ap.add_argument("--artifact", help="the artifact for the golden model (default: build.json's path)")
    ap.add_argument("--self-test", action="store_true", help="run the kernel self-tests instead of inferences")
    ap.add_argument("--batches", type=int, default=4, help="self-test batches per kernel")
    ap.add_argument("--kernel", action="append", default=[], metavar="NAME[:P1,P2,...]",
                    help="self-test only this kernel, optionally at these parameters (repeatable)")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply before retrying")
    ap.add_argument("--power-trace", help="a power analyser's CSV (time,current,voltage,trigger) captured during "
                                          "this session: measured energy per trigger window (RUN)")
    ap.add_argument("--trigger-delay-us", type=float, default=0.0, help="the current channel's lag behind the trigger")
    ap.add_argument("--timing-model", action="store_true",
                    help="QEMU: also count instruction classes (TCG plugin) for modeled cycles, latency, energy")
    ap.add_argument("--json", required=True, help="write the session result here (docs/session.md)")
    a = ap.parse_args(argv)
    project = proj.load_project(a.project)
    say = lambda msg: print(msg, file=sys.stderr)
    if a.self_test:
        kernels = {k.split(":")[0]: _int_list(k.split(":")[1]) if ":" in k else None for k in a.kernel} or None
        r = run_selftests(project, port=a.port, batches=a.batches, seed=a.seed or 1, kernels=kernels, out=a.json,
                          flash=not a.no_flash, timeout=a.timeout, log=say)
        print(f"{r['board']}: {r['summary']['kernels']} kernels self-tested, "
              f"{'all bit-exact' if r['summary']['all_bit_exact'] else 'MISMATCHES'} -> {a.json}")
        return 0 if r["summary"]["all_bit_exact"] else 1
    r = run_session(project, port=a.port, data=a.data, limit=a.limit, fixed_steps=a.fixed_steps,
                    q_threshold=a.q_threshold, seed=a.seed, artifact=a.artifact, out=a.json, flash=not a.no_flash,
                    timeout=a.timeout, timing_model=a.timing_model, log=say)
    if a.power_trace:
        r = add_power_trace(r, a.power_trace, a.trigger_delay_us * 1e-6, a.json)
        say(f"measured energy: {fmt(r['energy_measured']['energy'])} per trigger window "
            f"({len(r['energy_measured']['windows'])} windows)")
    s = r["summary"]
    lat = fmt(s["latency"]["mean"]) if "latency" in s else "n/a"
    if "timing_model" in s:
        tm = s["timing_model"]
        print(f"timing model: {fmt(tm['cycles'])}, {fmt(tm['latency'])}, {fmt(tm['energy'])} per inference "
              f"({tm['cycles']['source']})", file=sys.stderr)
    print(f"{r['board']}: {s['inferences']} inferences, {s['bit_exact']}/{s['checked']} bit-exact vs golden, "
          f"mean latency {lat} -> {a.json}")
    if s["checked"] < s["inferences"]:
        print(f"warning: {s['inferences'] - s['checked']} inferences not checked ({r['golden']})", file=sys.stderr)
    return 0 if s["all_bit_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
