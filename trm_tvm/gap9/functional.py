"""The functional GAP9 build: the project's C plus our PMSIS compatibility layer, on qemu-system-riscv32.

It proves tiling, the per-core split and bit-exactness on 9 real harts (FC + 8 cluster cores); its instruction
counts are never GAP9 cycles (those come from `trm_tvm.gap9.cycles`, labelled modeled).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from trm_tvm.errors import UserError

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "project_templates" / "gap9"
KERNELS_COMMON = REPO / "project_templates" / "kernels"
CC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv32"
L1_BYTES = 131072            # boards/gap9.yaml gap9.memory.l1_bytes
L2_HEAP_BYTES = 1572864      # boards/gap9.yaml gap9.memory.l2_bytes
STACK_BYTES = 16384
COMPAT_ERROR = "TRM-COMPAT-ERROR"


@dataclass
class RunResult:
    exit_code: int
    output: str

    @property
    def compat_error(self) -> str | None:
        """The checker's one-line verdict, or None when the run was clean."""
        for line in self.output.splitlines():
            if line.startswith(COMPAT_ERROR):
                return line
        return None


def require_toolchain() -> None:
    for tool, pkg in ((CC, "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"), (QEMU, "qemu-system-misc")):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found", f"run `make setup` (installs {pkg})")


def _libgcc() -> str:
    """libgcc of the rv32imac/ilp32 multilib (64-bit division): gcc picks no multilib for rv32imac_zicsr itself."""
    out = subprocess.run([CC, "-march=rv32imac", "-mabi=ilp32", "-print-libgcc-file-name"], capture_output=True,
                         text=True, check=True).stdout.strip()
    return out


def build(out_elf: Path, sources: list[Path], include_dirs: list[Path], defines: dict[str, int | str],
          opt: str = "-O2") -> Path:
    """Compile `sources` with the compatibility layer into a bare-metal RV32 ELF for QEMU virt."""
    require_toolchain()
    out_elf.parent.mkdir(parents=True, exist_ok=True)
    compat = TEMPLATE / "compat"
    incs = [TEMPLATE / "pmsis", TEMPLATE / "kernels", KERNELS_COMMON, *include_dirs]
    defs = {"TRM_GAP9_COMPAT": 1, "COMPAT_L1_BYTES": L1_BYTES, "COMPAT_STACK_BYTES": STACK_BYTES, **defines}
    cmd = [CC, "-march=rv32imac_zicsr", "-mabi=ilp32", "-mcmodel=medany", opt, "-g", "-std=gnu11",
           "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-ffunction-sections", "-nostdlib",
           "-fno-tree-loop-distribute-patterns",  # mem.c must not turn its loops into calls to itself
           "--specs=picolibc.specs", "-T", str(compat / "link.ld"),
           f"-Wl,--defsym=COMPAT_L1_BYTES={L1_BYTES}", f"-Wl,--defsym=COMPAT_L2_HEAP_BYTES={L2_HEAP_BYTES}",
           f"-Wl,--defsym=COMPAT_STACK_BYTES={STACK_BYTES}", "-Wl,--gc-sections",
           *[f"-I{p}" for p in incs], *[f"-D{k}={v}" for k, v in defs.items()],
           str(compat / "start.S"), str(compat / "pmsis_compat.c"), str(compat / "mem.c"), *map(str, sources), _libgcc(),
           "-o", str(out_elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"GAP9 functional build failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return out_elf


def run(elf: Path, timeout_s: float = 120.0, icount: bool = False) -> RunResult:
    """Run on 9 harts (single-threaded TCG: light on the host, harts still interleave) and collect the UART."""
    require_toolchain()
    cmd = [QEMU, "-M", "virt", "-smp", "9", "-bios", "none", "-nographic", "-monitor", "none",
           "-accel", "tcg,thread=single", "-kernel", str(elf)]
    if icount:
        cmd[1:1] = ["-icount", "shift=0"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return RunResult(exit_code=-1, output=out + f"\n[timeout after {timeout_s} s]")
    return RunResult(exit_code=proc.returncode, output=(proc.stdout + proc.stderr).decode(errors="replace"))


def start_with_uart_socket(elf: Path, log: Path):
    """Start the firmware with its UART on a loopback TCP socket (for the shared RPC client); returns a
    trm_tvm.project.Device that trm_tvm.project.open_transport / close_transport accept."""
    import socket

    from trm_tvm.project import Device

    require_toolchain()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [QEMU, "-M", "virt", "-smp", "9", "-bios", "none", "-display", "none", "-monitor", "none",
           "-accel", "tcg,thread=single", "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on",
           "-kernel", str(elf)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Device(f"socket://127.0.0.1:{port}", cmd, proc, log)
