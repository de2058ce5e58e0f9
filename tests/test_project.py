"""The project API without running firmware: generation, the self-contained Makefile, fit refused before build,
one-line errors, and the hardware flash commands as a dry run."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trm_tvm import project as proj
from trm_tvm.boards import load_board
from trm_tvm.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
import stub_model  # noqa: E402

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")


@pytest.fixture
def build_dir(tmp_path):
    return stub_model.make_build_dir(tmp_path / "build", "cortex-m4")


def test_generated_project_is_self_contained(tmp_path, build_dir):
    p = proj.generate_project(build_dir, "cortex-m4", tmp_path / "proj")
    d = p.dir
    for f in ("Makefile", "project.json", "README.md", "gen/trm_config.h", "gen/trm_rpc.h", "gen/linker.ld",
              "gen/selftest_table.c", "src/startup.c", "build_dir/build.json", "build_dir/model/trm_model.h",
              "board/cortex-m4.yaml"):
        assert (d / f).is_file(), f
    shutil.rmtree(build_dir)                            # the project must not need its source any more
    assert proj.load_project(d).board.name == "cortex-m4"
    ld = (d / "gen" / "linker.ld").read_text()
    code, data = load_board("cortex-m4").link_regions()
    assert f"ORIGIN = 0x{code.origin:08X}, LENGTH = {code.bytes}" in ld
    assert f"ORIGIN = 0x{data.origin:08X}, LENGTH = {data.bytes}" in ld
    cfg = (d / "gen" / "trm_config.h").read_text()
    assert '#define TRM_BOARD_NAME "cortex-m4"' in cfg and f'"{p.build_id}"' in cfg
    assert "#define TRM_UART_BASE 0x40004000u" in cfg and "#define TRM_COUNTER_SYSTICK 1" in cfg
    # every kernel op of the interface is in the self-test table, variants from the build directory
    assert "trm_linear_s8_ref" in p.info["selftest_kernels"] and "trm_argmax_s16_ref" in p.info["selftest_kernels"]


def test_build_id_changes_with_the_build_directory(tmp_path, build_dir):
    a = proj.generate_project(build_dir, "cortex-m4", tmp_path / "a").build_id
    assert proj.generate_project(build_dir, "cortex-m4", tmp_path / "b").build_id == a
    (build_dir / "model" / "trm_model.c").write_text((build_dir / "model" / "trm_model.c").read_text() + "\n")
    assert proj.generate_project(build_dir, "cortex-m4", tmp_path / "c").build_id != a


def test_variants_found_in_the_build_directory(tmp_path):
    bd = stub_model.make_build_dir(tmp_path / "b", "cortex-m4", handwritten=("dsp",))
    p = proj.generate_project(bd, "cortex-m4", tmp_path / "p")
    assert p.info["selftest_variants"] == ["ref", "dsp", "mve"]     # both declared by E's header
    assert "trm_linear_s4_dsp" in p.info["selftest_kernels"]


@needs_gcc
def test_plain_make_builds_the_firmware_without_python(tmp_path, build_dir):
    p = proj.generate_project(build_dir, "cortex-m4", tmp_path / "proj")
    env = {"PATH": "/usr/bin:/bin"}                   # no venv on the path: make needs only the toolchain
    r = subprocess.run(["make", "-C", str(p.dir)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    elf = p.dir / "build" / "firmware.elf"
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    for s in ("trm_vectors", "trm_reset_handler", "trm_run", "trm_phase_begin", "trm_linear_s8_ref"):
        assert f" {s}\n" in syms, s
    # the reset handler touches CPACR before anything else
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True).stdout
    reset = dis.split("<trm_reset_handler>:")[1].split("\n\n")[0]
    assert "0xe000ed88" in reset.lower() or "e000ed88" in dis.split("<trm_reset_handler>:")[1][:600].lower()


def test_too_big_model_refused_before_build_with_the_numbers(tmp_path):
    bd = stub_model.make_build_dir(tmp_path / "b", "cortex-m4", weight_bytes=3 * 1024 * 1024)
    with pytest.raises(UserError) as e:
        proj.generate_project(bd, "cortex-m4", tmp_path / "p")
    line = e.value.line()
    assert "model does not fit cortex-m4: flash needs 3088.0 KiB (weights 3072.0 KiB" in line
    assert "> STM32L4R5ZI flash 2048.0 KiB" in line and "\n" not in line
    assert not (tmp_path / "p").exists()


def test_fit_is_checked_against_the_emulator_map_too(tmp_path):
    # 600 KiB of weights fit the Alif E3's 5.5 MiB MRAM but not QEMU an547's 512 KiB code memory
    bd = stub_model.make_build_dir(tmp_path / "b", "cortex-m55", weight_bytes=600 * 1024)
    with pytest.raises(UserError, match=r"> mps3-an547 code memory 512.0 KiB"):
        proj.generate_project(bd, "cortex-m55", tmp_path / "p")
    bd = stub_model.make_build_dir(tmp_path / "c", "cortex-m55", arena_bytes=300 * 1024)
    with pytest.raises(UserError, match=r"RAM needs .* > Alif Ensemble E3 \(AE302F\), M55-HE core RAM 256.0 KiB"):
        proj.generate_project(bd, "cortex-m55", tmp_path / "q")


def test_wrong_board_and_broken_build_dir_are_one_line(tmp_path, build_dir):
    with pytest.raises(UserError, match="compiled for board cortex-m4, not cortex-m7"):
        proj.generate_project(build_dir, "cortex-m7", tmp_path / "p")
    with pytest.raises(UserError, match="unknown board 'cortex-m9'"):
        proj.generate_project(build_dir, "cortex-m9", tmp_path / "p")
    m = json.loads((build_dir / "build.json").read_text())
    m["sources"].append("model/missing.c")
    (build_dir / "build.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="source model/missing.c does not exist"):
        proj.generate_project(build_dir, "cortex-m4", tmp_path / "p")
    with pytest.raises(UserError, match="does not exist"):
        proj.generate_project(tmp_path / "nowhere", "cortex-m4", tmp_path / "p")


def test_hardware_flash_commands_dry_run(tmp_path):
    bd = stub_model.make_build_dir(tmp_path / "b", "nucleo-l4r5zi")
    p = proj.generate_project(bd, "nucleo-l4r5zi", tmp_path / "p")
    elf = str(p.elf)
    dev = proj.flash(p, dry_run=True)
    assert dev.command == ["openocd", "-f", "board/st_nucleo_l4.cfg", "-c", f"program {elf} verify reset exit"]
    assert dev.url == "/dev/ttyACM0" and dev.process is None
    dev = proj.flash(p, tool="pyocd", dry_run=True, port="/dev/ttyACM3")
    assert dev.command == ["pyocd", "flash", "--target", "stm32l4r5zitx", elf] and dev.url == "/dev/ttyACM3"
    with pytest.raises(UserError, match="has no jlink command"):
        proj.flash(p, tool="jlink", dry_run=True)
    cfg = (p.dir / "gen" / "trm_config.h").read_text()
    assert "#define TRM_COUNTER_DWT 1" in cfg and "#define TRM_UART_STM32_LPUART 1" in cfg
    assert "0x40021058u" in cfg                        # the board's start-up register writes are generated


@needs_gcc
def test_hardware_firmware_links_at_the_parts_flash(tmp_path):
    bd = stub_model.make_build_dir(tmp_path / "b", "nucleo-l4r5zi")
    p = proj.generate_project(bd, "nucleo-l4r5zi", tmp_path / "p")
    elf = proj.build(p)
    hdr = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True).stdout
    vec = next(l for l in hdr.splitlines() if ".vectors" in l).split()
    assert vec[3] == "08000000"                         # VMA of the vector table = STM32 flash


def test_emulated_flash_dry_run_is_the_qemu_command(tmp_path, build_dir):
    p = proj.generate_project(build_dir, "cortex-m4", tmp_path / "p")
    dev = proj.flash(p, dry_run=True, port="5555")
    assert dev.url == "socket://127.0.0.1:5555"
    assert dev.command[:3] == ["qemu-system-arm", "-M", "mps2-an386"]
    assert "shift=3,sleep=on" in dev.command and "tcp:127.0.0.1:5555,server=on,wait=off,nodelay=on" in dev.command


def test_flash_without_build_is_one_line(tmp_path, build_dir):
    p = proj.generate_project(build_dir, "cortex-m4", tmp_path / "p")
    with pytest.raises(UserError) as e:
        proj.flash(p)
    assert "firmware.elf does not exist -- build the project first" in e.value.line()


def test_cli_generate_error_is_one_line(tmp_path, build_dir, capsys):
    from trm_tvm.project.__main__ import main
    assert main(["generate", "--build-dir", str(build_dir), "--board", "nope", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown board 'nope'" in err


@needs_gcc
def test_linker_overflow_is_one_line_with_the_numbers(tmp_path, build_dir):
    """If the pre-build estimate is ever wrong, the linker's check still ends in one line with the numbers."""
    p = proj.generate_project(build_dir, "cortex-m4", tmp_path / "p")
    ld = p.dir / "gen" / "linker.ld"
    ld.write_text(ld.read_text().replace("LENGTH = 2097152", "LENGTH = 4096"))
    with pytest.raises(UserError) as e:
        proj.build(p)
    assert "firmware for cortex-m4 does not fit: code/flash overflowed by" in e.value.line()
    assert "\n" not in e.value.line()
    (p.dir / "src" / "uart.c").write_text("#error broken on purpose\n")
    with pytest.raises(UserError, match="firmware build failed: src/uart.c:1:2: error: #error broken on purpose"):
        proj.build(p)
