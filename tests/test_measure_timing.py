"""Timing model: the plugin's per-class counts against a hand-counted firmware, API refusal, CPI arithmetic."""
from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from measure_fixtures import FIXTURES, LINK_LD, QEMU_M4, build_elf
from trm_tvm.boards import load_board
from trm_tvm.errors import UserError
from trm_tvm.measure import timing

# Hand count of tests/fixtures/measure/loop.S (each instruction is annotated with its class there).
KERNEL_LOOP = {"alu": 1 + 100, "load": 1 + 100, "load_pipelined": 100, "mac": 100, "mul": 100, "store": 100,
               "branch_taken": 99, "branch_not_taken": 1, "lsm": 2, "lsm_regs": 3 + 3, "pc_load": 1,
               "insns": 3 + 7 * 100 + 1, "fetch_bytes": 2 + 2 + 2 + 100 * (2 + 2 + 4 + 4 + 2 + 2 + 2) + 2,
               "flash_data_bytes": 4}                                  # the literal-pool word of `ldr r3, =...`
KERNEL_MIX = {"alu": 7 + 4, "div": 1, "mla": 1, "load": 2, "agu_stall": 1, "lsm": 3, "lsm_regs": 4 + 2 + 4, "fp": 2,
              "fp_mac": 1, "fp_div": 1, "branch_not_taken": 1 + 1, "branch_taken": 2, "insns": 21 + 5,
              "fetch_bytes": 2 + 2 + 4 * 11 + 2 * 7 + 2 * 6, "flash_data_bytes": 4}
RESET = {"alu": 2, "load": 3, "store": 1, "system": 3, "branch_taken": 2, "insns": 11, "fetch_bytes": 32,
         "flash_data_bytes": 8}                                        # two literal loads; CPACR is not flash


def nonzero(row):
    return {k: v for k, v in row.items() if v}


@pytest.mark.qemu
def test_plugin_counts_match_the_hand_counted_firmware(tmp_path):
    elf = build_elf(tmp_path, "loop.S")
    counts = timing.run_with_plugin(QEMU_M4 + ["-kernel", str(elf)], elf, load_board("cortex-m4"))
    assert nonzero(counts["kernel_loop"]) == KERNEL_LOOP
    assert nonzero(counts["kernel_mix"]) == KERNEL_MIX
    assert nonzero(counts["reset"]) == RESET
    assert set(counts) == {"reset", "kernel_loop", "kernel_mix"}   # nothing ran outside the ELF's functions
    kernels = timing.group_regions(counts, {"kernels": ["kernel_*"]})
    assert kernels["kernels"]["insns"] == KERNEL_LOOP["insns"] + KERNEL_MIX["insns"]
    assert kernels["other"]["insns"] == RESET["insns"]


def test_function_regions_are_the_elf_functions(tmp_path):
    elf = build_elf(tmp_path, "loop.S")
    regions = {r.name: (r.lo, r.hi) for r in timing.function_regions(elf)}
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        addr, size, kind, name = line.split()
        if kind in "tT":
            assert regions[name] == (int(addr, 16) & ~1, (int(addr, 16) & ~1) + int(size, 16))


REFUSE = r"""
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_LAZY)   # lazy: QEMU's own symbols are never needed before the check
class Version(ctypes.Structure): _fields_ = [("min", ctypes.c_int), ("cur", ctypes.c_int)]
class Info(ctypes.Structure):
    _fields_ = [("target", ctypes.c_char_p), ("version", Version), ("system", ctypes.c_bool), ("vcpus", ctypes.c_int * 2)]
info = Info(b"arm", Version(int(sys.argv[2]), int(sys.argv[3])), True)
print(ctypes.c_int.in_dll(lib, "qemu_plugin_version").value, lib.qemu_plugin_install(ctypes.c_uint64(1), ctypes.byref(info), 0, None))
"""


def test_plugin_refuses_another_api_version_with_one_line():
    so = timing.build_plugin()
    r = subprocess.run([sys.executable, "-c", REFUSE, str(so), "2", "3"], capture_output=True, text=True)
    assert r.stdout.split() == ["1", "-1"]                        # declares v1, install fails on a v3 QEMU
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "plugin API v3" in lines[0] and "QEMU 7.2" in lines[0]
    with pytest.raises(UserError, match="QEMU refused the timing plugin"):
        timing.check_plugin_loaded(lines[0] + "\nqemu-system-arm: Could not load plugin x.so: ...\n")


@pytest.mark.qemu
def test_qemu_refusal_is_one_user_error(tmp_path):
    """A real QEMU that refuses the plugin (here: a bad argument makes install fail) ends in one UserError line."""
    elf = build_elf(tmp_path, "loop.S")
    run = timing.prepare_plugin(elf, load_board("cortex-m4"), tmp_path / "w")
    r = subprocess.run(QEMU_M4 + ["-kernel", str(elf), "-plugin", f"{run.plugin},bogus=1"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    with pytest.raises(UserError) as e:
        timing.check_plugin_loaded(r.stderr)
    assert "\n" not in e.value.line()


def test_cpi_arithmetic_on_a_hand_computed_case():
    board = {"name": "toy", "part": {"clock_hz": 100_000_000, "flash_wait_states": 4,
                                     "accelerator": {"hit_rate": 0.75}},
             "timing_model": {"source": "toy", "flash_line_bytes": 8,
                              "cpi": {c: 1 for c in timing.CPI_CLASSES} | {"load": 2, "branch_taken": 3, "div": 7}}}
    row = dict.fromkeys(timing.CLASSES, 0) | {"alu": 10, "load": 5, "branch_taken": 2, "div": 1, "lsm": 1,
                                               "lsm_regs": 4, "insns": 19, "fetch_bytes": 64, "flash_data_bytes": 16}
    # CPI: 10*1 + 5*2 + 2*3 + 1*7 + 1*1 + 4*1 = 38
    # flash: 4 ws * (0.25 code miss * (64/8 lines + 2 taken) + 1.0 data miss * 16/8 lines) = 10 + 8 = 18
    parts = timing.cycle_breakdown(row, board)
    assert parts["flash_wait"] == 18.0 and sum(parts.values()) == 56.0
    fig = timing.cycles(row, board)
    assert fig["value"] == 56 and fig["provenance"] == "modeled" and "toy" in fig["source"]
    assert timing.latency_s(fig, board)["value"] == pytest.approx(56 / 100e6)
    board["timing_model"]["flash_data_hit_rate"] = 0.5
    assert timing.cycle_breakdown(row, board)["flash_wait"] == 14.0
    assert timing.instructions(row)["provenance"] == "emulated"


def test_low_fidelity_boards_say_so_and_every_board_has_every_cpi():
    for name in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "nucleo-l4r5zi"):
        fig = timing.cycles(dict.fromkeys(timing.CLASSES, 1), load_board(name))
        assert ("LOW FIDELITY" in fig["source"]) == (name in ("cortex-m7", "cortex-m55")), name


@pytest.mark.parametrize("change,needle", [
    (lambda tm: tm["cpi"].pop("load"), "timing_model.cpi.load must be a number"),
    (lambda tm: tm["cpi"].update(ldr=1), "cpi.ldr is not an instruction class"),
    (lambda tm: tm.update(fidelity="medium"), "fidelity must be one of"),
])
def test_bad_timing_model_is_one_user_error(change, needle):
    b = load_board("cortex-m4")
    board = {"name": b.name, "part": b.part, "timing_model": {**b.timing_model, "cpi": dict(b.timing_model["cpi"])}}
    change(board["timing_model"])
    with pytest.raises(UserError, match=needle):
        timing.cycles(dict.fromkeys(timing.CLASSES, 1), board)


def test_icount_systick_conversion():
    # shared notes: at shift=0 one 25 MHz SysTick tick is 40 instructions
    fig = timing.icount_ticks_to_instructions(50, shift=0, systick_hz=25e6)
    assert fig["value"] == 2000 and fig["provenance"] == "emulated"
    assert timing.icount_ticks_to_instructions(8, shift=3, systick_hz=25e6)["value"] == 40


@pytest.mark.qemu
def test_model_against_published_cortex_m4_figures():
    """Arm-documented sequence timings and a measured loop (trm_tvm/measure/calibration): within 1 %."""
    from trm_tvm.measure import calibration

    rows = calibration.check_published(load_board("cortex-m4"))
    assert {r["case"] for r in rows} == set(calibration.PUBLISHED)
    for r in rows:
        assert abs(r["error"]) <= 0.01, calibration.format_rows(rows)


@pytest.mark.qemu
def test_marks_split_the_run_into_intervals(tmp_path):
    """Snapshots at function entries: the interval kernel_loop -> kernel_mix is kernel_loop plus the `bl` to mix."""
    elf = build_elf(tmp_path, "loop.S")
    run = timing.prepare_plugin(elf, load_board("cortex-m4"), tmp_path / "w", marks=("kernel_loop", "kernel_mix"))
    subprocess.run(QEMU_M4 + ["-kernel", str(elf)] + run.qemu_args, check=True, timeout=60)
    snaps = run.snapshots()
    assert [m for m, _ in snaps] == ["kernel_loop", "kernel_mix"]
    (between,) = timing.intervals(snaps, "kernel_loop", "kernel_mix")
    assert nonzero(between["kernel_loop"]) == KERNEL_LOOP
    assert nonzero(between["reset"]) == {"branch_taken": 1, "insns": 1, "fetch_bytes": 4}
    assert set(between) == {"kernel_loop", "reset"}
    with pytest.raises(UserError, match="not a function"):
        timing.prepare_plugin(elf, load_board("cortex-m4"), tmp_path / "w", marks=("trm_phase_begin",))


@pytest.mark.qemu
def test_plugin_counts_mve_and_low_overhead_loops_on_cortex_m55(tmp_path):
    elf = tmp_path / "mve.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-nostdlib", "-T", str(LINK_LD), "-o",
                    str(elf), str(FIXTURES / "mve.S")], check=True)
    qemu = ["qemu-system-arm", "-M", "mps3-an547", "-nographic", "-semihosting-config", "enable=on,target=native"]
    board = load_board("cortex-m55")
    counts = timing.run_with_plugin(qemu + ["-kernel", str(elf)], elf, board, timeout=60)
    assert nonzero(counts["kernel_mve"]) == {"alu": 2, "load": 1, "lsm": 2, "lsm_regs": 2, "pc_load": 1,
                                             "mve": 3 * 8, "lob": 1 + 8, "insns": 5 + 4 * 8 + 1,
                                             "fetch_bytes": 2 + 2 + 2 + 2 + 4 + 8 * 16 + 2}
    assert "LOW FIDELITY" in timing.cycles(counts["kernel_mve"], board)["source"]


def test_functions_without_size_extend_to_the_next_function(tmp_path):
    src = tmp_path / "nosize.S"
    src.write_text(".syntax unified\n.thumb\n.text\n.thumb_func\n.type a, %function\na: nop\nnop\n"
                   ".thumb_func\n.type b, %function\nb: bx lr\n.size b, .-b\n")
    elf = tmp_path / "nosize.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-T", str(LINK_LD), "-o",
                    str(elf), str(src)], check=True)
    regions = {r.name: (r.lo, r.hi) for r in timing.function_regions(elf)}
    assert regions["a"][1] == regions["b"][0] == regions["a"][0] + 4 and regions["b"][1] == regions["b"][0] + 2


@pytest.mark.qemu
def test_qemu_failing_without_counts_is_one_user_error(tmp_path):
    elf = build_elf(tmp_path, "loop.S")
    with pytest.raises(UserError, match="without running the firmware .*missing.elf"):
        timing.run_with_plugin(QEMU_M4 + ["-kernel", str(tmp_path / "missing.elf")], elf, load_board("cortex-m4"))
