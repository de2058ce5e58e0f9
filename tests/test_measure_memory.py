"""Memory report: sums match the ELF (arm-none-eabi-size, nm), weights split out, too big is one clear error."""
from __future__ import annotations

import subprocess

import pytest

from measure_fixtures import build_elf
from trm_tvm.boards import load_board
from trm_tvm.errors import UserError
from trm_tvm.measure import memory


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    return build_elf(tmp_path_factory.mktemp("mem"), "model.c", "loop.S")


def toy_board(flash, ram, code=4 << 20, data=4 << 20):
    return {"name": "toy", "kind": "emulated",
            "part": {"name": "PART1", "flash": {"bytes": flash}, "ram": {"bytes": ram}},
            "emulator": {"machine": "mps2-an386", "code": {"bytes": code}, "data": {"bytes": data}}}


def test_sums_match_arm_none_eabi_size(elf):
    rep = memory.memory_report(elf, load_board("cortex-m4"))
    berkeley = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = map(int, berkeley.splitlines()[1].split()[:3])
    assert rep["text"]["value"] + rep["rodata"]["value"] == text      # size's "text" = every read-only section
    assert rep["data"]["value"] == data and rep["bss"]["value"] == bss
    sysv = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {ln.split()[0]: int(ln.split()[1]) for ln in sysv.splitlines()[2:] if ln.strip() and "Total" not in ln}
    assert {s["name"]: s["size"] for s in rep["sections"]} == {k: v for k, v in sizes.items()
                                                                if k in (".text", ".rodata", ".data", ".bss")}
    assert rep["flash"]["value"] == text + data and rep["ram"]["value"] == data + bss
    assert rep["flash"]["provenance"] == "measured"


def test_weights_are_the_weight_symbols(elf):
    rep = memory.memory_report(elf, load_board("cortex-m4"))
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    expect = {ln.split()[3]: int(ln.split()[1], 16) for ln in nm.splitlines()
              if len(ln.split()) == 4 and ln.split()[3].startswith(("trm_w_", "trm_weights_"))}
    assert rep["weight_symbols"] == expect == {"trm_w_layer0": 3000, "trm_w_bias0": 400, "trm_weights_lut": 512}
    assert rep["weights"]["value"] == 3912
    assert rep["code"]["value"] == rep["flash"]["value"] - 3912        # trm_version, trm_counter are not weights


def test_peak_stack_counts_in_ram_with_its_own_provenance(elf):
    rep = memory.memory_report(elf, load_board("cortex-m4"), peak_stack=1000)
    assert rep["ram"]["value"] == rep["data"]["value"] + rep["bss"]["value"] + 1000
    assert rep["peak_stack"]["provenance"] == "emulated"
    hw = memory.memory_report(elf, load_board("nucleo-l4r5zi"), peak_stack=1000)
    assert hw["peak_stack"]["provenance"] == "measured"


def test_too_big_for_the_part_is_one_error_with_the_numbers(elf):
    with pytest.raises(UserError) as e:
        memory.memory_report(elf, toy_board(flash=2048, ram=1 << 20))
    line = e.value.line()
    assert "\n" not in line
    assert "needs 4.1 KiB flash (weights 3.8 KiB" in line and "toy has 2.0 KiB (PART1 flash)" in line


def test_too_big_for_the_emulator_is_refused_too(elf):
    with pytest.raises(UserError, match=r"needs 5.9 KiB ram .* stack 1.0 KiB.* has 4.0 KiB \(mps2-an386 data memory\)"):
        memory.memory_report(elf, toy_board(flash=1 << 20, ram=1 << 20, data=4096), peak_stack=1024)


def test_not_an_elf_is_a_user_error(tmp_path):
    bad = tmp_path / "x.elf"
    bad.write_bytes(b"not an elf")
    with pytest.raises(UserError, match="cannot read ELF"):
        memory.memory_report(bad, load_board("cortex-m4"))
