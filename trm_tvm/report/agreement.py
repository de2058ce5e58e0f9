"""Does each manifest command agree with what its result records about how it was made?

Where a command is written down beside the result (a checkpoint's COMMAND, an artifact's header, a JSON `run`
or top-level `command`), it must be the same line. Elsewhere the result's own metadata (boards, artifact, input
count, ...) must match the command's arguments. `problems(step, root)` lists every disagreement, empty when none.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shlex
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trm_tvm.jsonio import REPO_ROOT
from trm_tvm.report.manifest import Step
from trm_tvm.report.sources import Results


def normalise(command: str) -> str:
    """One spelling of a command line: `.venv/bin/python` and `python` are the same interpreter."""
    argv = shlex.split(command)
    if argv and argv[0].endswith("/python"):
        argv[0] = "python"
    return shlex.join(argv)


def command_file_lines(text: str) -> list[str]:
    return [normalise(ln) for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def artifact_command(data: bytes) -> str | None:
    return _artifact_header(data).get("provenance", {}).get("command")


def recorded_command(obj: Any) -> str | None:
    """A JSON result's own record of its command line, where it keeps one."""
    if not isinstance(obj, dict):
        return None
    for block in (obj, obj.get("run"), obj.get("provenance")):
        if isinstance(block, dict) and isinstance(block.get("command"), str):
            return block["command"]
    return None


def _args(command: str) -> dict[str, str]:
    """--flag value pairs of a command (multi-value flags joined by spaces)."""
    argv, out, key = shlex.split(command), {}, None
    for tok in argv[3:]:
        if tok.startswith("--"):
            key = tok[2:]
            out[key] = ""
        elif key is not None:
            out[key] = (out[key] + " " + tok).strip()
    return out


def _target(command: str) -> str | None:
    """What a command writes (its --out or --json), to match it with a README's line for the same result."""
    a = _args(command)
    return a.get("out") or a.get("json")


def readme_commands(step: Step, R: Results) -> list[tuple[str, str]]:
    """(README, command) pairs written down in a README.md beside or above the step's outputs -- inline in
    backticks or as a line of a code block -- that make the same target as the step."""
    target = _target(step.commands[-1])
    readmes = {str(d / "README.md") for o in step.outputs for d in Path(o).parents if d != Path(".")}
    found = []
    for readme in sorted(r for r in readmes if R.exists(r)):
        text = re.sub(r"\\\n\s*", " ", R.bytes(readme).decode())          # join continued lines of code blocks
        for c in re.findall(r"(?:^|`)(python -m [^`\n#]+)", text, flags=re.M):
            if target and _target(c) == target:
                found.append((readme, normalise(c)))
    return found


def _results(src: Results | Path) -> Results:
    return src if isinstance(src, Results) else Results(src)


def problems(step: Step, src: Results | Path = REPO_ROOT) -> list[str]:
    R = _results(src)
    out: list[str] = []
    mine = [normalise(c) for c in step.commands]
    if step.recorded.endswith("COMMAND") and R.exists(step.recorded):
        recorded = command_file_lines(R.bytes(step.recorded).decode())
        out += [f"{step.name}: `{c}` is not in {step.recorded}" for c in mine if c not in recorded]
    out += [f"{step.name}: {readme} records `{c}`" for readme, c in readme_commands(step, R) if c not in mine]
    for o in step.outputs:
        if not R.exists(o):
            continue
        if o.endswith(".npz"):
            rec = artifact_command(R.bytes(o))
            if rec is not None and normalise(rec) not in mine:
                out.append(f"{step.name}: {o} records `{rec}`")
        elif o.endswith(".json") and o.startswith(("reports/", "checkpoints/")):
            data = R.json(o)
            rec = recorded_command(data)
            if rec is not None and normalise(rec) not in mine:
                out.append(f"{step.name}: {o} records `{rec}`")
            out += [f"{step.name}: {o}: {m}" for m in _metadata(step, o, data, R)]
    return out


def _metadata(step: Step, path: str, d: Any, R: Results) -> list[str]:
    """Disagreements between a command's arguments and the metadata its result keeps."""
    a = _args(step.commands[-1])
    kind = step.name.split(":")[0]
    bad: list[str] = []

    def same(what: str, got: Any, want: Any) -> None:
        if got != want:
            bad.append(f"{what} is {got!r}, the command says {want!r}")

    if kind == "halting" and path.endswith("halting.json") and "compare" not in a:
        m = d["meta"]
        same("board", m["board"], a["board"])
        same("artifact", Path(m["artifact"]).name, Path(a["artifact"]).name)
        if "kernels" in a:
            same("kernels", m["kernels"], a["kernels"])
        same("checkpoint", m["checkpoint"], a["checkpoint"])
        if "sample" in a:
            same("inputs", m["inputs"], int(a["sample"]))
        else:
            same("data", "all" in m["data"], True)
    elif kind == "halting" and path.endswith("compare.json"):
        same("studies", sorted({r["study"] for r in d["rows"]}), sorted(a["compare"].split()))
    elif kind == "gap9":
        same("artifact", d["artifact"]["path"], a["artifact"])
        same("inputs", d["inputs"]["count"], int(a["limit"]))
        same("board", d["board"], a["board"])
        same("schedule", d["schedule"].split()[0], a.get("schedule", "default"))
        tir = a.get("kernels", "tvm") == "tvm"                   # deploy's default; absent field: before TIR existed
        same("per-core linear compute", d.get("linear_compute", "hand-written").startswith("tir"), tir)
    elif kind == "bench" and path.endswith("results.json"):
        plan = bench_plan(step.commands)
        key = lambda r: (r["board"], r["artifact"], r["kernels"], r["schedule"])  # noqa: E731
        same("board x artifact x kernels x schedule", {key(r) for r in d["rows"]}, set(plan))
        for r in d["rows"]:
            if key(r) not in plan:
                continue
            limit, modes, profile = plan[key(r)]
            for mode, m in r["modes"].items():
                same(f"{r['board']} {mode} inferences", m["inferences"], limit)
            same(f"{' '.join(key(r))} modes", sorted(r["modes"]), modes)
            same(f"{' '.join(key(r))} profiled", "profile" in r, profile)
    elif kind == "quantize" and path.endswith("sweep.json"):
        known = {_sha(R.bytes(c))[:8]: c for c in a["checkpoint"].split() if R.exists(c)}
        for ck in sorted({r["checkpoint"] for r in d["rows"]}):
            if ck.split(":")[-1] not in known:
                bad.append(f"checkpoint {ck} is not one of the command's checkpoints")
        from trm_tvm.quant.sweep import RECIPES

        allowed = set(a["qat"].split() or RECIPES) if "qat" in a else set()      # `--qat` alone: every recipe
        extra = sorted({r["recipe"] for r in d["rows"] if r.get("method") == "qat"} - allowed)
        if extra:
            bad.append(f"QAT rows of {extra}, the command's --qat allows {sorted(allowed)}")
        if "limit" in a:
            same("test samples", sorted({r["n_test"] for r in d["rows"]}), [int(a["limit"])])
    elif kind == "tune":
        same("board", d["board"], a["board"])
        same("artifacts", sorted({w["artifact"] for w in d["whole"]}),
             sorted(Path(x).name for x in a["artifact"].split(",")))
    elif kind == "kernels":
        boards = {k.split()[0] for k in d["selftest"]}                     # keys "<board>", "<board> element-wise"
        same("boards", sorted(boards), sorted(a["boards"].split(",")))
        same("self-test cases", {s["cases"] for s in d["selftest"].values()}, {int(a["selftest"])})
    elif kind == "dynamics" and path.endswith("dynamics.json"):
        same("checkpoint", d["checkpoint"], a["checkpoint"])
        arts = [Path(x).stem for x in a["artifact"].split()]
        same("artifacts", [r["label"] for r in d["results"][:len(arts)]], arts)
        same("samples", {r["samples"] for r in d["results"]}, {int(a["limit"])})
        same("logit-bias analysis (--bias)", {"logit_bias" in r for r in d["results"]}, {"bias" in a})
    return bad


def bench_plan(commands: tuple[str, ...]) -> dict[tuple, tuple[int, list[str], bool]]:
    """(board, artifact, kernels, schedule) -> (inferences, modes, profiled) that a bench step's commands run; the
    first command naming a combination makes it (`trm_tvm.bench` skips combinations already in results.json)."""
    plan: dict[tuple, tuple[int, list[str], bool]] = {}
    for command in commands:
        a = _args(command)
        arts = [f"{a['out']}/artifacts/random-{x[7:]}.npz" if x.startswith("random:") else x
                for x in a["artifacts"].split(",")]
        limits = dict(x.split("=") if "=" in x else ("*", x) for x in a["limit"].split(","))
        modes = sorted(a.get("modes", "fixed,halting").split(","))
        for b in a["boards"].split(","):
            for art in arts:
                for k in a.get("kernels", "reference,tvm").split(","):
                    for sched in a.get("schedules", "default").split(",") if k == "tvm" else ["n/a"]:
                        plan.setdefault((b, art, k, sched), (int(limits.get(b, limits["*"])), modes, "profile" in a))
    return plan


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _artifact_header(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(np.load(io.BytesIO(z.read("__header__.npy"))).tobytes().decode())


def lineage(step: Step, src: Results | Path = REPO_ROOT) -> list[str]:
    """Results made from another version of an input than the file the command names now (sha256 recorded by the
    result vs the committed file): the command is right, but rerunning it may not give the committed numbers."""
    R = _results(src)
    a = _args(step.commands[-1])
    out: list[str] = []

    def check(what: str, recorded: str | None, path: str) -> None:
        if recorded and R.exists(path) and not (now := _sha(R.bytes(path))).startswith(recorded[:16]):
            out.append(f"{step.name}: {what} was made from {path} with sha256 {recorded[:8]}, the file now has "
                       f"{now[:8]}")

    kind = step.name.split(":")[0]
    records = f"{a.get('out')}/records.json"
    if kind == "quantize" and "checkpoint" in a and R.exists(a["out"]):
        src_ = _artifact_header(R.bytes(a["out"])).get("provenance", {}).get("source", {})
        check(a["out"], src_.get("sha256"), a["checkpoint"])
    elif kind == "halting" and "compare" not in a and R.exists(records):
        check(records, R.json(records).get("artifact", {}).get("sha256"), a["artifact"])
    elif kind == "gap9" and R.exists(a["json"]):
        src_ = R.json(a["json"])["artifact"].get("source", {})
        check(a["json"], src_.get("sha256"), src_.get("checkpoint", ""))
    return out


def all_problems(src: Results | Path = REPO_ROOT) -> list[str]:
    from trm_tvm.report.manifest import STEPS

    R = _results(src)
    return [p for s in STEPS for p in problems(s, R)]


def parse_only(command: str) -> argparse.Namespace:
    """Parse a `python -m <module> ...` command with that module's own argparse, without running it.

    The module's `main(argv)` builds its parser and calls `parse_args`; that call is intercepted right after
    parsing. An unknown flag or a bad value raises SystemExit from argparse, as on the command line.
    """
    import importlib

    argv = shlex.split(command)
    if argv[:2] != ["python", "-m"]:
        raise ValueError(f"not a python -m command: {command}")
    mod = importlib.import_module(argv[2])
    if hasattr(mod, "__path__"):                      # a package runs its __main__
        mod = importlib.import_module(argv[2] + ".__main__")

    class Parsed(Exception):
        pass

    original = argparse.ArgumentParser.parse_args

    def intercept(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    argparse.ArgumentParser.parse_args = intercept
    try:
        mod.main(argv[3:])
    except Parsed as p:
        return p.args[0]
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{module}.main returned without parsing its arguments")

