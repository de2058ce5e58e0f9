"""Read what measurement needs from a board, whatever form the board comes in.

Boards come from trm_tvm.boards.load_board (a `Board` object) or straight from YAML (a dict, e.g. in tests);
measurement only needs the `timing_model` and `energy` sections and a few `part` fields, so it accepts both and
stays independent of the loader's class layout.
"""
from __future__ import annotations

from typing import Any

from trm_tvm.errors import UserError


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def board_name(board: Any) -> str:
    return str(_get(board, "name") or "board")


def section(board: Any, key: str) -> dict:
    """A mapping section of the board (`timing_model`, `energy`); a missing one is a user error."""
    value = _get(board, key)
    if not value:
        raise UserError(f"board {board_name(board)} has no `{key}` section",
                        "add it to the board file (fields: docs/measurement.md)")
    return dict(value)


def part(board: Any, key: str, default: Any = None) -> Any:
    """A field of the board's real part (`clock_hz`, `flash_wait_states`, `accelerator`, `name`, `flash`, `ram`)."""
    p = _get(board, "part")
    value = _get(p, key) if p is not None else None
    return default if value is None else value


def has_mve(board: Any) -> bool:
    return "mve" in (_get(_get(board, "core"), "features") or ())


FIDELITIES = ("high", "low")


def timing_model(board: Any, classes: tuple[str, ...]) -> dict:
    """The validated `timing_model` section: a CPI (number >= 0) for every class, fidelity, source, line size."""
    tm = section(board, "timing_model")
    where = f"board {board_name(board)}: field timing_model"
    fix = "fix the board file (fields: docs/measurement.md)"
    cpi = tm.get("cpi")
    if not isinstance(cpi, dict):
        raise UserError(f"{where}.cpi is missing or not a mapping", fix)
    for c in classes:
        v = cpi.get(c)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise UserError(f"{where}.cpi.{c} must be a number >= 0, got {v!r}", fix)
    unknown = sorted(set(cpi) - set(classes))
    if unknown:
        raise UserError(f"{where}.cpi.{unknown[0]} is not an instruction class (known: {', '.join(classes)})", fix)
    if tm.get("fidelity", "high") not in FIDELITIES:
        raise UserError(f"{where}.fidelity must be one of {', '.join(FIDELITIES)}, got {tm.get('fidelity')!r}", fix)
    hit = tm.get("flash_data_hit_rate", 0.0)
    if isinstance(hit, bool) or not isinstance(hit, (int, float)) or not 0 <= hit <= 1:
        raise UserError(f"{where}.flash_data_hit_rate must be a number in [0, 1], got {hit!r}", fix)
    line = tm.get("flash_line_bytes", 16)
    if isinstance(line, bool) or not isinstance(line, int) or line <= 0:
        raise UserError(f"{where}.flash_line_bytes must be a positive integer, got {line!r}", fix)
    return tm


def energy_data(board: Any) -> dict:
    """The validated `energy` section: supply voltage, clock and supply current at that operating point."""
    en = section(board, "energy")
    for k in ("voltage_v", "clock_hz", "current_a"):
        v = en.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise UserError(f"board {board_name(board)}: field energy.{k} must be a number > 0, got {v!r}",
                            "fix the board file (fields: docs/measurement.md)")
    return en


def fit_limits(board: Any) -> dict[str, list[tuple[str, int]]]:
    """{"flash": [(what, bytes)...], "ram": [...]}: the real part's memory and, when emulated, the emulator's."""
    if hasattr(board, "fit_limits"):
        return board.fit_limits()
    p, e = board.get("part", {}), board.get("emulator")
    limits = {"flash": [(f"{p['name']} flash", p["flash"]["bytes"])], "ram": [(f"{p['name']} RAM", p["ram"]["bytes"])]}
    if e:
        limits["flash"].append((f"{e['machine']} code memory", e["code"]["bytes"]))
        limits["ram"].append((f"{e['machine']} data memory", e["data"]["bytes"]))
    return limits


def flash_range(board: Any) -> tuple[int, int] | None:
    """[lo, hi) of the memory the firmware's flash image runs from: the emulator's code memory, else the part's flash."""
    region = _get(_get(board, "emulator"), "code") or _get(_get(board, "part"), "flash")
    origin, size = _get(region, "origin"), _get(region, "bytes")
    return (origin, origin + size) if origin is not None and size else None
