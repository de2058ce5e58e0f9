"""Memory report from the firmware ELF: flash and RAM by section kind, weights split from code, peak stack, fit check.

    rep = memory_report(elf, board, peak_stack=1234)   # figures; raises UserError if it does not fit
    print(format_report(rep))

Section sizes are exact static data read with pyelftools (provenance "measured", like `arm-none-eabi-size`); the
painted peak stack is whatever counted it: the firmware on QEMU (emulated) or on silicon (measured).
Weights are the data objects named like the model library's weight arrays (`WEIGHT_PATTERNS`, docs/measurement.md).
"""
from __future__ import annotations

import fnmatch
import os
from typing import Any, Iterable

from trm_tvm.errors import UserError
from trm_tvm.measure.board_data import board_name, fit_limits
from trm_tvm.provenance import figure, fmt

# Symbols of the weight/bias/multiplier/LUT arrays the compiler writes into model/trm_weights.c (build-dir.md).
WEIGHT_PATTERNS = ("trm_w_*", "trm_weights_*")
ELF_SOURCE = "ELF section sizes (pyelftools)"
KINDS = ("text", "rodata", "data", "bss")


def _read_elf(elf_path: str | os.PathLike, weight_patterns: Iterable[str]) -> tuple[list[dict], dict[str, int]]:
    """Allocated sections (name, kind, addr, size) and the sizes of weight symbols in them."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    patterns = tuple(weight_patterns)
    try:
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            sections = []
            for s in elf.iter_sections():
                flags = s["sh_flags"]
                if not flags & SH_FLAGS.SHF_ALLOC or s["sh_size"] == 0:
                    continue
                if flags & SH_FLAGS.SHF_EXECINSTR:
                    kind = "text"
                elif s["sh_type"] == "SHT_NOBITS":
                    kind = "bss"
                elif flags & SH_FLAGS.SHF_WRITE:
                    kind = "data"
                else:
                    kind = "rodata"
                sections.append({"name": s.name, "kind": kind, "addr": s["sh_addr"], "size": s["sh_size"]})
            weights: dict[str, int] = {}
            symtab = elf.get_section_by_name(".symtab")
            for sym in symtab.iter_symbols() if symtab is not None else ():
                if sym["st_info"]["type"] == "STT_OBJECT" and any(fnmatch.fnmatchcase(sym.name, p) for p in patterns):
                    weights[sym.name] = sym["st_size"]
    except (OSError, ELFError) as e:
        raise UserError(f"cannot read ELF {elf_path} ({e})", "rebuild the firmware") from None
    return sections, weights


def memory_report(elf: str | os.PathLike, board: Any, peak_stack: int | None = None,
                  stack_provenance: str | None = None, weight_patterns: Iterable[str] = WEIGHT_PATTERNS,
                  check: bool = True) -> dict[str, Any]:
    """Flash/RAM use of `elf` as provenance figures; with `check`, refuse (UserError) if it does not fit `board`.

    flash = text + rodata + data (the initial values are stored in flash); ram = data + bss + peak stack, unless
    the linker reserves the stack as a section (a NOBITS section named like *stack*), which bss then includes.
    """
    sections, weights = _read_elf(elf, weight_patterns)
    size = {k: sum(s["size"] for s in sections if s["kind"] == k) for k in KINDS}
    weight_bytes = sum(weights.values())
    stack_section = sum(s["size"] for s in sections if s["kind"] == "bss" and "stack" in s["name"].lower())
    stack = peak_stack or 0
    flash = size["text"] + size["rodata"] + size["data"]
    ram = size["data"] + size["bss"] + (0 if stack_section else stack)

    def fig(v: int, source: str = ELF_SOURCE) -> dict:
        return figure(int(v), "B", "measured", source)

    rep = {
        "elf": str(elf),
        "board": board_name(board),
        "sections": [dict(s) for s in sections],
        **{k: fig(v) for k, v in size.items()},
        "weights": fig(weight_bytes, f"{ELF_SOURCE}: sizes of symbols {', '.join(weight_patterns)}"),
        "code": fig(flash - weight_bytes, f"{ELF_SOURCE}: flash minus weights"),
        "flash": fig(flash),
        "ram": fig(ram, ELF_SOURCE + ("" if stack_section or peak_stack is None else " + painted peak stack")),
        "weight_symbols": weights,
    }
    if peak_stack is not None:
        prov = stack_provenance or _counter_provenance(board)
        rep["peak_stack"] = figure(int(peak_stack), "B", prov, "stack painting (firmware)")
        if stack_section and peak_stack > stack_section:
            raise UserError(f"peak stack {peak_stack} B overflows the {stack_section} B stack reserved in {elf}",
                            "enlarge the stack in the linker script or use a smaller model")
    if check:
        check_fits(rep, board)
    return rep


def _counter_provenance(board: Any) -> str:
    kind = board.get("kind") if isinstance(board, dict) else getattr(board, "kind", None)
    return "measured" if kind == "hardware" else "emulated"


def check_fits(rep: dict[str, Any], board: Any) -> None:
    """One UserError with the numbers if flash or RAM exceeds any limit of the board (real part and emulator)."""
    for what, limits in fit_limits(board).items():
        need = rep[what]["value"]
        for name, limit in limits:
            if need > limit:
                detail = (f"weights {kib(rep['weights']['value'])}, code {kib(rep['code']['value'])}" if what == "flash"
                          else f"data {kib(rep['data']['value'])}, bss {kib(rep['bss']['value'])}, "
                               f"stack {kib(rep['peak_stack']['value']) if 'peak_stack' in rep else 'not counted'}")
                raise UserError(f"the firmware needs {kib(need)} {what} ({detail}) but {board_name(board)} has "
                                f"{kib(limit)} ({name})",
                                "use a smaller model or precision, or a board with more memory")


def kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def format_report(rep: dict[str, Any]) -> str:
    lines = [f"memory of {rep['elf']} on {rep['board']}:"]
    for k in ("flash", "weights", "code", "ram", "text", "rodata", "data", "bss", "peak_stack"):
        if k in rep:
            lines.append(f"  {k:10s} {fmt(rep[k]):>24s}  {kib(rep[k]['value']):>11s}")
    return "\n".join(lines)
