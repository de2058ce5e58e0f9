"""Build the bare-metal test firmware of tests/fixtures/measure/ for QEMU mps2-an386 (measurement tests)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "measure"
LINK_LD = Path(__file__).resolve().parent.parent / "trm_tvm" / "measure" / "calibration" / "link.ld"
QEMU_M4 = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config", "enable=on,target=native"]


def build_elf(out_dir: Path, *sources: str, extra: tuple[str, ...] = ()) -> Path:
    """Link `sources` (names in tests/fixtures/measure) with the minimal linker script into one ELF."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc missing (make setup installs it)")
    elf = out_dir / (Path(sources[0]).stem + ".elf")
    subprocess.run([gcc, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2",
                    "-nostdlib", "-T", str(LINK_LD), *extra, "-o", str(elf),
                    *(str(FIXTURES / s) for s in sources)], check=True)
    return elf
