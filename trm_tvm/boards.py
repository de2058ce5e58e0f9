"""Board files (boards/<name>.yaml): load, validate, and answer "does it fit".

One YAML file per board; the schema is a contract documented in docs/boards.md. Loading checks every field and
refuses a bad file with one line naming the file and the field. An emulated board carries two memory maps -- the
named real part's and the emulator's -- and a firmware must fit both (`Board.fit_limits`).

CLI: `python -m trm_tvm.boards [list | show <board>]`.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trm_tvm.errors import UserError, cli_main

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"
SCHEMA = "trm-tvm-board"
VERSION = 1

KINDS = ("emulated", "hardware", "modeled")
TEMPLATES = ("cortex_m", "gap9")
UART_DRIVERS = ("cmsdk", "stm32-lpuart", "gap9")
COUNTERS = ("systick-icount", "dwt")
TRANSPORTS = ("socket", "serial")
FLASH_TOOLS = ("openocd", "pyocd", "gap9")
FEATURES = ("dsp", "mve", "fpu-sp", "fpu-dp")


@dataclass(frozen=True)
class Region:
    origin: int
    bytes: int

    @property
    def end(self) -> int:
        return self.origin + self.bytes


@dataclass(frozen=True)
class RegOp:
    """One start-up register operation: read-modify-write (`set`/`clear` bits) or a poll (`mask`/`value`)."""
    reg: int
    set: int = 0
    clear: int = 0
    mask: int = 0
    value: int = 0

    @property
    def is_poll(self) -> bool:
        return self.mask != 0


@dataclass(frozen=True)
class RegWrite:
    reg: int
    value: int


@dataclass(frozen=True)
class Core:
    cpu: str
    arch: str
    features: tuple[str, ...]
    cflags: tuple[str, ...]
    tvm_target: dict[str, Any]


@dataclass(frozen=True)
class Part:
    name: str
    datasheet: str
    clock_hz: int
    flash: Region
    ram: Region
    flash_wait_states: int
    accelerator: dict[str, Any]


@dataclass(frozen=True)
class Emulator:
    machine: str
    command: tuple[str, ...]
    cpuid: int
    code: Region
    data: Region
    systick_hz: int
    icount_shift: int

    @property
    def instructions_per_tick(self) -> float:
        """SysTick ticks -> instructions under `-icount shift=N`: each instruction is 2^N ns of virtual time."""
        return (1e9 / self.systick_hz) / (1 << self.icount_shift)


@dataclass(frozen=True)
class Uart:
    driver: str
    base: int
    irq: int
    baud: int


@dataclass(frozen=True)
class Trigger:
    name: str
    init: tuple[RegOp, ...]
    set: RegWrite
    clear: RegWrite


@dataclass(frozen=True)
class Transport:
    kind: str
    host: str = "127.0.0.1"
    port: str = ""


@dataclass(frozen=True)
class Flash:
    tool: str
    commands: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Board:
    name: str
    path: Path
    kind: str
    template: str
    description: str
    core: Core
    counter: str
    transport: Transport
    raw: dict[str, Any]                      # the whole file, for template-specific sections (e.g. gap9:)
    # cortex_m template (None/empty for other templates, whose owners read `raw`):
    part: Part | None = None
    emulator: Emulator | None = None
    init: tuple[RegOp, ...] = ()
    uart: Uart | None = None
    trigger: Trigger | None = None
    flash: Flash | None = None
    timing_model: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)  # anchors shown beside ours, labelled "published"

    @property
    def emulated(self) -> bool:
        return self.kind == "emulated"

    @property
    def counter_provenance(self) -> str:
        """What the on-device cycle counter is: emulator counters are 'emulated', DWT on silicon is 'measured'."""
        return "emulated" if self.emulated else "measured"

    def link_regions(self) -> tuple[Region, Region]:
        assert self.part is not None, "cortex_m boards only"
        """(code, data) regions for the linker script: where the firmware runs, no larger than the real part."""
        if self.emulator is not None:
            code, data = self.emulator.code, self.emulator.data
        else:
            code, data = self.part.flash, self.part.ram
        return (Region(code.origin, min(code.bytes, self.part.flash.bytes)),
                Region(data.origin, min(data.bytes, self.part.ram.bytes)))

    def fit_limits(self) -> dict[str, list[tuple[str, int]]]:
        """Every limit a firmware must meet: {"flash": [(what, bytes)...], "ram": [...]}."""
        assert self.part is not None, "cortex_m boards only"
        limits = {"flash": [(f"{self.part.name} flash", self.part.flash.bytes)],
                  "ram": [(f"{self.part.name} RAM", self.part.ram.bytes)]}
        if self.emulator is not None:
            limits["flash"].append((f"{self.emulator.machine} code memory", self.emulator.code.bytes))
            limits["ram"].append((f"{self.emulator.machine} data memory", self.emulator.data.bytes))
        return limits


# ---------------------------------------------------------------------------------------------------- validation
class _Fields:
    """Typed access to one mapping of a board file; every failure names the file and the dotted field."""

    def __init__(self, data: Any, where: str, path: Path):
        self.path, self.where = path, where
        if not isinstance(data, dict):
            self.fail(where, f"must be a mapping, got {_show(data)}")
        self.data = data

    def fail(self, key: str, problem: str) -> None:
        raise UserError(f"board file {self.path}: field {key} {problem}", "fix the board file (schema: docs/boards.md)")

    def key(self, k: str) -> str:
        return f"{self.where}.{k}" if self.where else k

    def get(self, k: str, typ: type | tuple, default: Any = ...) -> Any:
        if k not in self.data:
            if default is ...:
                self.fail(self.key(k), "is missing")
            return default
        v = self.data[k]
        if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
            self.fail(self.key(k), f"must be an integer, got {_show(v)}")
        if typ is float and (isinstance(v, bool) or not isinstance(v, (int, float))):
            self.fail(self.key(k), f"must be a number, got {_show(v)}")
        if typ in (str, dict, list) and not isinstance(v, typ):
            self.fail(self.key(k), f"must be a {_TYPE_NAMES[typ]}, got {_show(v)}")
        return v

    def choice(self, k: str, choices: tuple[str, ...], default: Any = ...) -> str:
        v = self.get(k, str, default)
        if v is not default and v not in choices:
            self.fail(self.key(k), f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    def positive(self, k: str, default: Any = ...) -> int:
        v = self.get(k, int, default)
        if v is not default and v <= 0:
            self.fail(self.key(k), f"must be positive, got {v}")
        return v

    def strings(self, k: str, default: Any = ...) -> tuple[str, ...]:
        v = self.get(k, list, default)
        if v is default:
            return v
        if not v or not all(isinstance(s, str) and s for s in v):
            self.fail(self.key(k), f"must be a non-empty list of strings, got {_show(v)}")
        return tuple(v)

    def sub(self, k: str, default: Any = ...) -> "_Fields | None":
        v = self.get(k, dict, default)
        return None if v is default else _Fields(v, self.key(k), self.path)

    def no_unknown(self, known: set[str]) -> None:
        unknown = sorted(set(self.data) - known)
        if unknown:
            self.fail(self.key(unknown[0]), f"is unknown (known: {', '.join(sorted(known))})")


_TYPE_NAMES = {str: "string", dict: "mapping", list: "list"}


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _region(f: _Fields, k: str) -> Region:
    r = f.sub(k)
    r.no_unknown({"origin", "bytes"})
    origin = r.get("origin", int)
    if origin < 0 or origin % 4:
        r.fail(r.key("origin"), f"must be a non-negative multiple of 4, got {origin:#x}")
    return Region(origin, r.positive("bytes"))


def _reg_ops(f: _Fields, k: str) -> tuple[RegOp, ...]:
    ops = f.get(k, list, [])
    out = []
    for i, op in enumerate(ops):
        o = _Fields(op, f"{f.key(k)}[{i}]", f.path)
        o.no_unknown({"reg", "set", "clear", "mask", "value"})
        is_poll = "mask" in o.data
        if is_poll and ("set" in o.data or "clear" in o.data):
            o.fail(o.where, "is either a write (set/clear) or a poll (mask/value), not both")
        out.append(RegOp(o.get("reg", int), o.get("set", int, 0), o.get("clear", int, 0), o.get("mask", int, 0),
                         o.get("value", int, 0)))
    return tuple(out)


def _reg_write(f: _Fields, k: str) -> RegWrite:
    w = f.sub(k)
    w.no_unknown({"reg", "value"})
    return RegWrite(w.get("reg", int), w.get("value", int))


_COMMON = {"schema", "version", "name", "kind", "template", "description", "core", "counter", "transport"}
_CORTEX_M = {"part", "emulator", "init", "uart", "trigger", "flash", "timing_model", "energy", "published"}


def parse_board(data: Any, path: Path) -> Board:
    """Validate a parsed board file; raise a one-line UserError naming the file and the first bad field.

    The common fields are checked for every board; the sections of the `cortex_m` template strictly (unknown keys
    are errors). Other templates (gap9) keep their own sections in `Board.raw` and validate them themselves."""
    top = _Fields(data, "", path)
    if top.get("schema", str) != SCHEMA:
        top.fail("schema", f"must be {SCHEMA!r}, got {top.data['schema']!r}")
    if top.get("version", int) != VERSION:
        top.fail("version", f"must be {VERSION}, got {top.data['version']}")
    name = top.get("name", str)
    if name != path.stem:
        top.fail("name", f"must match the file name {path.stem!r}, got {name!r}")
    template = top.choice("template", TEMPLATES, "gap9" if "gap9" in top.data else "cortex_m")
    kind = top.choice("kind", KINDS)

    c = top.sub("core")
    c.no_unknown({"cpu", "arch", "features", "cflags", "tvm_target"})
    core = Core(c.get("cpu", str), c.get("arch", str), tuple(c.get("features", list, [])), c.strings("cflags"),
                c.get("tvm_target", dict))
    if "kind" not in core.tvm_target:
        c.fail(c.key("tvm_target.kind"), "is missing (a TVM target dict, e.g. {kind: llvm, mtriple: ..., mcpu: ...})")

    tr = top.sub("transport")
    tr.no_unknown({"kind", "host", "port"})
    transport = Transport(tr.choice("kind", TRANSPORTS), tr.get("host", str, "127.0.0.1"), tr.get("port", str, ""))
    if transport.kind == "serial" and not transport.port:
        tr.fail(tr.key("port"), "is missing (the board's serial device, e.g. /dev/ttyACM0)")

    common = dict(name=name, path=path, kind=kind, template=template, description=top.get("description", str, ""),
                  core=core, transport=transport, raw=data)
    if template != "cortex_m":
        return Board(counter=top.get("counter", str), **common)
    top.no_unknown(_COMMON | _CORTEX_M)
    return Board(counter=top.choice("counter", COUNTERS), **common, **_cortex_m_sections(top, kind, core))


def _cortex_m_sections(top: _Fields, kind: str, core: Core) -> dict[str, Any]:
    if kind == "modeled":
        top.fail("kind", "must be emulated or hardware for the cortex_m template")
    for feat in core.features:
        if feat not in FEATURES:
            top.fail("core.features", f"has unknown feature {feat!r} (known: {', '.join(FEATURES)})")

    p = top.sub("part")
    p.no_unknown({"name", "datasheet", "clock_hz", "flash", "ram", "flash_wait_states", "accelerator"})
    part = Part(p.get("name", str), p.get("datasheet", str), p.positive("clock_hz"), _region(p, "flash"),
                _region(p, "ram"), p.get("flash_wait_states", int), p.get("accelerator", dict, {}))
    if part.flash_wait_states < 0:
        p.fail(p.key("flash_wait_states"), f"must be >= 0, got {part.flash_wait_states}")
    hit = part.accelerator.get("hit_rate", 1.0)
    if isinstance(hit, bool) or not isinstance(hit, (int, float)) or not 0.0 <= hit <= 1.0:
        p.fail(p.key("accelerator.hit_rate"), f"must be a number in [0, 1], got {_show(hit)}")

    emulator = None
    e = top.sub("emulator", None)
    if kind == "emulated" and e is None:
        top.fail("emulator", "is missing (an emulated board needs the emulator's command and memory map)")
    if e is not None:
        e.no_unknown({"machine", "command", "cpuid", "code", "data", "systick_hz", "icount_shift"})
        emulator = Emulator(e.get("machine", str), e.strings("command"), e.get("cpuid", int, 0), _region(e, "code"),
                            _region(e, "data"), e.positive("systick_hz"), e.get("icount_shift", int))
        if not 0 <= emulator.icount_shift <= 10:
            e.fail(e.key("icount_shift"), f"must be in 0..10, got {emulator.icount_shift}")

    u = top.sub("uart")
    u.no_unknown({"driver", "base", "irq", "baud"})
    uart = Uart(u.choice("driver", UART_DRIVERS), u.get("base", int), u.get("irq", int), u.positive("baud"))
    if not 0 <= uart.irq < 480:
        u.fail(u.key("irq"), f"must be an external interrupt number in 0..479, got {uart.irq}")

    t = top.sub("trigger")
    t.no_unknown({"name", "init", "set", "clear"})
    trigger = Trigger(t.get("name", str), _reg_ops(t, "init"), _reg_write(t, "set"), _reg_write(t, "clear"))

    flash = None
    fl = top.sub("flash", None)
    if kind == "hardware" and fl is None:
        top.fail("flash", "is missing (a hardware board needs its flash tool commands)")
    if fl is not None:
        fl.no_unknown({"tool", "commands"})
        tool = fl.choice("tool", FLASH_TOOLS)
        cmds = fl.sub("commands")
        commands = {k: cmds.strings(k) for k in cmds.data}
        if tool not in commands:
            fl.fail(fl.key("commands"), f"has no command for the default tool {tool!r}")
        for k, cmd in commands.items():
            if k not in FLASH_TOOLS:
                cmds.fail(cmds.key(k), f"is not a known flash tool (known: {', '.join(FLASH_TOOLS)})")
            if not any("{elf}" in a for a in cmd):
                cmds.fail(cmds.key(k), "must contain {elf} where the firmware path goes")
        flash = Flash(tool, commands)

    timing, energy = top.get("timing_model", dict), top.get("energy", dict)
    for sec, d in (("timing_model", timing), ("energy", energy)):
        if not isinstance(d.get("source"), str) or not d["source"]:
            top.fail(f"{sec}.source", "is missing (name the datasheet or manual the figures come from)")
    published = top.get("published", dict, {})
    for k, anchor in published.items():
        if not isinstance(anchor, dict) or not isinstance(anchor.get("source"), str) or "value" not in anchor:
            top.fail(f"published.{k}", "needs `value` and `source` (a published figure is shown with where it is from)")

    return dict(part=part, emulator=emulator, init=_reg_ops(top, "init"), uart=uart, trigger=trigger, flash=flash,
                timing_model=timing, energy=energy, published=published)


def known_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))


def board_path(name: str | Path) -> Path:
    """A board name (cortex-m4) or a path to a board file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(name)) and (BOARDS_DIR / f"{name}.yaml").is_file():
        return BOARDS_DIR / f"{name}.yaml"
    raise UserError(f"unknown board {str(name)!r}", f"known boards: {', '.join(known_boards())}")


def load_board(name: str | Path) -> Board:
    path = board_path(name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"board file {path} is not valid YAML ({str(e).splitlines()[0]})", "fix the YAML syntax")
    return parse_board(data, path)


# ---------------------------------------------------------------------------------------------------------- CLI
def _summary(b: Board) -> str:
    if b.part is None:
        return f"{b.name} ({b.kind}, template {b.template}): {b.description}"
    code, data = b.link_regions()
    lines = [f"{b.name} ({b.kind}): {b.description}",
             f"  core {b.core.cpu} [{', '.join(b.core.features)}]  part {b.part.name} @ {b.part.clock_hz / 1e6:g} MHz",
             f"  link: code {code.origin:#010x} +{code.bytes // 1024} KiB, data {data.origin:#010x} +{data.bytes // 1024} KiB"]
    for what, limits in b.fit_limits().items():
        lines.append(f"  {what} limits: " + "; ".join(f"{n} {v // 1024} KiB" for n, v in limits))
    if b.emulator:
        lines.append(f"  emulator: {' '.join(b.emulator.command)}")
    return "\n".join(lines)


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.boards", description="List and check board files")
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("list", help="validate and list every board")
    show = sub.add_parser("show", help="validate one board and print its summary")
    show.add_argument("board")
    args = ap.parse_args(argv)
    if args.cmd == "show":
        print(_summary(load_board(args.board)))
        return 0
    for name in known_boards():
        b = load_board(name)
        print(f"{b.name:16s} {b.kind:9s} {b.core.cpu:13s} {b.part.name if b.part else b.template}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
