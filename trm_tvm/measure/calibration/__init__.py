"""Check the timing model against published Cortex-M3/M4 cycle figures.

`published.S` holds instruction sequences whose cycle counts Arm documents (and one loop measured on silicon);
`check_published(board)` runs them on the emulated board under the plugin and compares the modeled cycles with the
published ones. Flash wait states are set to zero because every figure is for zero-wait-state memory.

These are the same documents the M4 CPIs come from, so agreement shows that the plugin classifies the
instructions and composes the pipelining rules right; it does not show the model's fidelity on whole kernels
(address-dependency stalls, bus contention and flash line effects are not modeled). See docs/measurement.md.
"""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from trm_tvm.errors import UserError
from trm_tvm.measure import timing

HERE = Path(__file__).resolve().parent
ARM_TRM = "Arm Cortex-M3 TRM (DDI 0337I) p. 3-9, load-store timings (the M4 shares the pipeline)"
LOOP_SOURCE = ("blaatschaap.be 'Wait a microsecond': subs/bhi loop from RAM on an STM32F103 (Cortex-M3), "
               "4 cycles per iteration")

# symbol in published.S -> (published cycles, times the case runs, exact or a lower bound, source)
PUBLISHED = {
    "arm_ldr_ldr": (3, 1, "exact", ARM_TRM),
    "arm_ldr_ldr_ldr": (4, 1, "exact", ARM_TRM),
    "arm_ldr_str": (3, 1, "exact", ARM_TRM),
    "arm_ldr_pc": (5, 1, "at least", ARM_TRM),
    "arm_tbb": (6, 1, "at least", ARM_TRM),
    "arm_alu_ldr": (4, 1, "exact", ARM_TRM),
    "loop_subs_bhi": (4, 100, "exact", LOOP_SOURCE),
}


def build_firmware(out_dir: Path) -> Path:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise UserError("arm-none-eabi-gcc was not found", "install the Arm toolchain (make setup does)")
    elf = out_dir / "published.elf"
    subprocess.run([gcc, "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-T", str(HERE / "link.ld"), "-o", str(elf),
                    str(HERE / "published.S")], check=True)
    return elf


def _zero_wait(board: Any) -> dict:
    """The board's timing model with zero flash wait states (the published figures are for zero-wait memory)."""
    part = board.part if not isinstance(board, dict) else board["part"]
    part = dataclasses.replace(part, flash_wait_states=0) if dataclasses.is_dataclass(part) else {**part, "flash_wait_states": 0}
    get = (lambda k: board[k]) if isinstance(board, dict) else (lambda k: getattr(board, k))
    return {"name": get("name"), "part": part, "timing_model": get("timing_model"), "core": get("core")}


def check_published(board: Any, qemu_cmd: list[str] | None = None) -> list[dict]:
    """Rows {case, published, bound, modeled, error, source}: modeled cycles per run of each case vs published."""
    qemu_cmd = qemu_cmd or ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config",
                            "enable=on,target=native"]
    with tempfile.TemporaryDirectory(prefix="trm-published-") as tmp:
        elf = build_firmware(Path(tmp))
        counts = timing.run_with_plugin(qemu_cmd + ["-kernel", str(elf)], elf, board)
    model_board = _zero_wait(board)
    rows = []
    for case, (cycles, runs, bound, source) in PUBLISHED.items():
        modeled = timing.cycles(counts[case], model_board)["value"] / runs
        rows.append({"case": case, "published": cycles, "bound": bound, "modeled": modeled,
                     "error": (modeled - cycles) / cycles, "source": source})
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'case':18s} {'published':>14s} {'modeled':>8s} {'error':>7s}"]
    for r in rows:
        pub = f"{'>=' if r['bound'] == 'at least' else ''}{r['published']}"
        lines.append(f"{r['case']:18s} {pub:>14s} {r['modeled']:8.2f} {r['error']:+7.1%}")
    lines.append("published cycles: " + "; ".join(sorted({r['source'] for r in rows})))
    return "\n".join(lines)
