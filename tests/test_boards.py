"""Board files: every shipped board loads, and each kind of mistake is refused with one line naming file and field."""
import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from trm_tvm import boards
from trm_tvm.errors import UserError

CORTEX_M = ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "nucleo-l4r5zi"]


def test_every_board_file_loads():
    names = boards.known_boards()
    assert set(CORTEX_M) <= set(names)
    for name in names:
        b = boards.load_board(name)
        assert b.name == name


def test_emulated_boards_match_the_verified_qemu_maps():
    expect = {"cortex-m4": ("mps2-an386", 0x0, 0x20000000, 0x40004000),
              "cortex-m7": ("mps2-an500", 0x0, 0x20000000, 0x40004000),
              "cortex-m33": ("mps2-an505", 0x10000000, 0x38000000, 0x50200000),
              "cortex-m55": ("mps3-an547", 0x10000000, 0x30000000, 0x59303000)}
    for name, (machine, code, data, uart) in expect.items():
        b = boards.load_board(name)
        assert b.emulated and b.emulator.machine == machine and b.emulator.command[2] == machine
        assert (b.emulator.code.origin, b.emulator.data.origin, b.uart.base) == (code, data, uart)
        assert b.counter == "systick-icount" and b.counter_provenance == "emulated"


def test_fit_is_checked_against_part_and_emulator():
    b = boards.load_board("cortex-m55")
    limits = b.fit_limits()
    assert [v for _, v in limits["flash"]] == [5767168, 0x80000]
    assert [v for _, v in limits["ram"]] == [262144, 0x80000]
    code, data = b.link_regions()       # the linker enforces the smaller of the two
    assert (code.origin, code.bytes) == (0x10000000, 0x80000)
    assert (data.origin, data.bytes) == (0x30000000, 262144)
    hw = boards.load_board("nucleo-l4r5zi")
    assert hw.emulator is None and [n for n, _ in hw.fit_limits()["ram"]] == ["STM32L4R5ZI RAM"]
    assert hw.counter_provenance == "measured" and hw.link_regions()[0].origin == 0x08000000


def test_instructions_per_systick_tick():
    assert boards.load_board("cortex-m4").emulator.instructions_per_tick == 5.0      # 40 ns / 8 ns
    assert boards.load_board("cortex-m33").emulator.instructions_per_tick == 25.0    # 50 ns / 2 ns
    assert boards.load_board("cortex-m55").emulator.instructions_per_tick == 31.25


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        boards.load_board("cortex-m99")
    assert "cortex-m99" in e.value.line() and "cortex-m4, cortex-m55" in e.value.line()


def _mutated(tmp_path: Path, name: str, edit) -> Path:
    data = yaml.safe_load((boards.BOARDS_DIR / f"{name}.yaml").read_text())
    edit(data)
    path = tmp_path / f"{data.get('name', name)}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _set(keys, value):
    def edit(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def _delete(keys):
    def edit(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return edit


@pytest.mark.parametrize("board,edit,field", [
    ("cortex-m4", _delete(["part", "clock_hz"]), "part.clock_hz is missing"),
    ("cortex-m4", _set(["part", "clock_hz"], "fast"), "part.clock_hz must be an integer"),
    ("cortex-m4", _set(["part", "clock_hz"], 0), "part.clock_hz must be positive"),
    ("cortex-m4", _set(["part", "ram", "origin"], 3), "part.ram.origin must be a non-negative multiple of 4"),
    ("cortex-m4", _set(["part", "accelerator", "hit_rate"], 1.5), "part.accelerator.hit_rate must be a number in [0, 1]"),
    ("cortex-m4", _set(["uart", "driver"], "pl011"), "uart.driver must be one of"),
    ("cortex-m4", _set(["core", "cflags"], []), "core.cflags must be a non-empty list of strings"),
    ("cortex-m4", _set(["core", "features"], ["sse"]), "core.features has unknown feature 'sse'"),
    ("cortex-m4", _set(["core", "tvm_target"], {"mcpu": "cortex-m4"}), "core.tvm_target.kind is missing"),
    ("cortex-m4", _set(["emulator", "icount_shift"], 11), "emulator.icount_shift must be in 0..10"),
    ("cortex-m4", _delete(["emulator"]), "emulator is missing"),
    ("cortex-m4", _set(["emulator", "speed"], 1), "emulator.speed is unknown"),
    ("cortex-m4", _set(["colour"], "red"), "colour is unknown"),
    ("cortex-m4", _set(["version"], 2), "version must be 1"),
    ("cortex-m4", _set(["counter"], "rdtsc"), "counter must be one of systick-icount, dwt"),
    ("cortex-m4", _delete(["energy", "source"]), "energy.source is missing"),
    ("cortex-m4", _delete(["published", "smlad_peak_macs_per_cycle", "source"]),
     "published.smlad_peak_macs_per_cycle needs `value` and `source`"),
    ("cortex-m4", _set(["trigger", "init"], [{"reg": 1, "set": 1, "mask": 1}]), "trigger.init[0] is either a write"),
    ("nucleo-l4r5zi", _delete(["flash"]), "flash is missing"),
    ("nucleo-l4r5zi", _set(["flash", "commands", "openocd"], ["openocd", "-f", "x.cfg"]),
     "flash.commands.openocd must contain {elf}"),
    ("nucleo-l4r5zi", _set(["transport", "port"], ""), "transport.port is missing"),
])
def test_bad_board_file_is_one_line_naming_file_and_field(tmp_path, board, edit, field):
    path = _mutated(tmp_path, board, edit)
    with pytest.raises(UserError) as e:
        boards.load_board(path)
    line = e.value.line()
    assert "\n" not in line and str(path) in line and f"field {field}" in line, line


def test_name_must_match_file(tmp_path):
    data = yaml.safe_load((boards.BOARDS_DIR / "cortex-m4.yaml").read_text())
    path = tmp_path / "my-board.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="field name must match the file name 'my-board'"):
        boards.load_board(path)


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("core: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        boards.load_board(path)


def test_cli_unknown_board_exits_2_with_one_line(capsys):
    assert boards.main(["show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unknown board 'nope'")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("name", CORTEX_M)
def test_cflags_compile_and_select_the_core(tmp_path, name):
    b = boards.load_board(name)
    src = tmp_path / "k.c"
    src.write_text("int f(int a, int b) { return a * b; }\n")
    obj = tmp_path / "k.o"
    subprocess.run(["arm-none-eabi-gcc", *b.core.cflags, "-O2", "-c", str(src), "-o", str(obj)], check=True)
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(obj)], capture_output=True, text=True).stdout
    assert "Tag_ABI_VFP_args: VFP registers" in attrs           # hard-float ABI everywhere (TVM objects match)
    if "mve" in b.core.features:
        assert "Tag_MVE_arch" in attrs


def test_tvm_targets_parse():
    tvm = pytest.importorskip("tvm")
    for name in CORTEX_M:
        b = boards.load_board(name)
        t = tvm.target.Target(copy.deepcopy(b.core.tvm_target))
        assert "arm_cpu" in t.keys
        assert bool(t.features.has_mve) == ("mve" in b.core.features)


def test_bench_summary_shows_the_boards_published_anchors_as_published():
    from trm_tvm.bench import published_anchors
    lines = published_anchors(["cortex-m4", "cortex-m55"])
    anchors = boards.load_board("cortex-m4").published
    assert anchors and len([ln for ln in lines if ln.startswith("- cortex-m4:")]) == len(anchors)
    assert all("(published; " in ln for ln in lines if ln.startswith("- "))
    assert not any(ln.startswith("- cortex-m55") for ln in lines)      # no anchors in its board file: none shown
