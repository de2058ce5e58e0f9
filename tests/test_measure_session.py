"""The measurement chain on a real model firmware (random-weight artifact -> compile -> project -> QEMU session) on
all four emulated boards: plugin phase counts agree with the firmware's own SysTick counts, the memory report with
the ELF and build.json."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from trm_tvm.measure import memory, report, timing

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from trm_tvm.quant.fixtures import golden_inputs, random_artifact

    tmp = tmp_path_factory.mktemp("art")
    art, _, _ = random_artifact(hidden=16, tokens=8)
    art.save(tmp / "a.npz")
    x, _ = golden_inputs(art, 1)
    return tmp / "a.npz", np.asarray(x[0]).astype(np.int8).tobytes()


@pytest.fixture(scope="module", params=["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"])
def firmware(request, artifact, tmp_path_factory):
    from trm_tvm import project as proj
    from trm_tvm.compile.driver import compile_artifact

    path, x = artifact
    tmp = tmp_path_factory.mktemp(request.param)
    compile_artifact(path, request.param, "reference", tmp / "build")
    project = proj.generate_project(tmp / "build", request.param, tmp / "proj")
    proj.build(project)
    return project, x, json.loads((tmp / "build" / "build.json").read_text())


def test_plugin_phases_match_the_firmware_systick(firmware, tmp_path):
    from trm_tvm.session import Session

    project, x, build = firmware
    board = project.board
    run = timing.prepare_plugin(project.elf, board, tmp_path, marks=timing.SESSION_MARKS)
    with Session(project, qemu_args=tuple(run.qemu_args)) as s:
        s.client.load_input(x)
        s.client.run(2**31 - 1, 2)                               # fixed compute: 2 supervision steps
        stats = s.client.read_stats()
    (inf,) = timing.per_inference(run.snapshots(), build["schedule_info"]["calls_per_step"])
    cps = build["schedule_info"]["calls_per_step"]
    assert inf["steps"] == 2 and inf["calls"] == {"prologue": 1, "net": 2 * cps, "heads": 2}
    ipt = board.emulator.instructions_per_tick
    for name, fw in zip(build["phases"], stats["phases"]):
        plugin = timing.total(inf["phases"][name])["insns"]
        systick = fw["ticks"] * ipt
        # +-1 tick per call of quantisation, the few instructions of the hooks between counter reads, and a SysTick
        # wrap interrupt that may fall inside a phase
        assert abs(plugin - systick) <= fw["calls"] * (ipt + 30), (name, plugin, systick)
    (figs,) = report.session_figures(run, board, cps)
    assert figs["steps"] == 2 and figs["phases"]["net"]["calls"] == 2 * cps
    per_net = figs["phases"]["net"]["instructions"]["value"]
    assert per_net == round(timing.total(inf["phases"]["net"])["insns"] / (2 * cps))
    assert figs["energy"]["provenance"] == "modeled" and figs["latency"]["unit"] == "s"
    summary = report.summarize(inf["run"], board, {"kernels": ["trm_*_ref"]})
    k = summary["groups"]["kernels"]
    assert k["cycles"]["provenance"] == "modeled" and k["instructions"]["provenance"] == "emulated"
    if board.name in ("cortex-m4", "cortex-m33"):
        assert k["cycles"]["value"] > k["instructions"]["value"]  # loads cost 2 cycles on these cores
    assert ("LOW FIDELITY" in k["cycles"]["source"]) == (board.name in ("cortex-m7", "cortex-m55"))


def test_memory_report_of_the_firmware_matches_elf_and_build_json(firmware):
    project, _, build = firmware
    rep = memory.memory_report(project.elf, project.board, peak_stack=384)
    wb = build["weight_bytes"]
    assert rep["weights"]["value"] == sum(v for k, v in wb.items() if k != "padding")
    berkeley = subprocess.run(["arm-none-eabi-size", str(project.elf)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()
    text, data, bss = map(int, berkeley[:3])
    assert rep["flash"]["value"] == text + data and rep["ram"]["value"] == data + bss   # stack is a section
