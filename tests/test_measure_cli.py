"""python -m trm_tvm.measure: each subcommand runs end to end; bad input is one line, no traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from measure_fixtures import build_elf
from test_measure_energy import synthetic_trace
from test_measure_timing import KERNEL_LOOP, KERNEL_MIX


def cli(*args):
    return subprocess.run([sys.executable, "-m", "trm_tvm.measure", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.qemu
def test_timing_cli_writes_figures_with_provenance(tmp_path):
    elf = build_elf(tmp_path, "loop.S")
    r = cli("timing", "--elf", str(elf), "--board", "cortex-m4", "--group", "kernels=kernel_*", "--json",
            str(tmp_path / "t.json"))
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "t.json").read_text())
    k = out["groups"]["kernels"]
    assert k["instructions"] == {"value": KERNEL_LOOP["insns"] + KERNEL_MIX["insns"], "unit": "instructions", "provenance": "emulated",
                                 "source": "QEMU TCG plugin trm_insn_classes"}
    assert k["cycles"]["provenance"] == k["latency"]["provenance"] == k["energy"]["provenance"] == "modeled"
    assert "(modeled)" in r.stdout and "(emulated)" in r.stdout


def test_memory_and_energy_cli(tmp_path):
    elf = build_elf(tmp_path, "model.c", "loop.S")
    r = cli("memory", "--elf", str(elf), "--board", "cortex-m4", "--peak-stack", "256")
    assert r.returncode == 0 and "weights" in r.stdout and "(measured)" in r.stdout
    r = cli("energy", "--trace", str(synthetic_trace(tmp_path / "t.csv")))
    assert r.returncode == 0 and r.stdout.startswith("3 window(s)")


@pytest.mark.parametrize("args,needle", [
    (("memory", "--elf", "/nonexistent.elf", "--board", "cortex-m4"), "cannot read ELF"),
    (("timing", "--elf", "x.elf", "--board", "no-such-board"), "unknown board"),
    (("energy", "--trace", "/nonexistent.csv"), "cannot read power trace"),
    (("timing", "--elf", "x.elf", "--board", "cortex-m4", "--group", "oops"), "NAME=PATTERN"),
])
def test_bad_input_is_one_line(args, needle):
    r = cli(*args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
