"""generate_project: a build directory (docs/build-dir.md) + a board -> a self-contained firmware project.

The project holds copies of everything it needs -- template sources, the build directory, the board file -- plus
files generated here: gen/trm_config.h (board and build facts as #defines), gen/trm_rpc.h (the protocol, from
trm_tvm.rpc), gen/linker.ld (from the board's memory), gen/selftest_table.c and a Makefile. `make` in it needs only
arm-none-eabi-gcc. Whether the model fits is checked here, before any build, against every limit of the board.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trm_tvm import rpc
from trm_tvm.boards import Board, load_board
from trm_tvm.errors import UserError
from trm_tvm.jsonio import read_json, write_json
from trm_tvm.project import selftest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "project_templates" / "cortex_m"
KERNEL_HEADER = REPO / "project_templates" / "kernels" / "trm_kernels.h"
PROJECT_SCHEMA = "trm-tvm-project"

DEFAULT_STACK_BYTES = 16 * 1024
DEFAULT_SELFTEST_BYTES = 32 * 1024
# Not known before linking; the estimate only makes the pre-build check meaningful, the linker checks exactly.
FIRMWARE_CODE_ESTIMATE = 16 * 1024          # RPC server, start-up, kernels, libc pieces
FIRMWARE_RAM_BYTES = 5 * 1024               # UART ring, frame buffers, statistics
COUNTER_CODES = {"systick-icount": 0, "dwt": 1}


def read_manifest(build_dir: Path) -> dict[str, Any]:
    """build.json of a build directory, checked for the fields the project needs."""
    m = read_json(build_dir / "build.json", "build manifest")
    where = f"build manifest {build_dir / 'build.json'}"
    if m.get("schema") != "trm-tvm-build" or m.get("version") != 1:
        raise UserError(f"{where} is not a trm-tvm-build version 1 manifest", "regenerate it with trm_tvm.compile")
    for key, typ in (("board", str), ("sources", list), ("include_dirs", list), ("arena_bytes", int),
                     ("io", dict), ("phases", list)):
        if not isinstance(m.get(key), typ):
            raise UserError(f"{where}: field {key} is missing or not a {typ.__name__}", "see docs/build-dir.md")
    for src in m["sources"]:
        if not (build_dir / src).is_file():
            raise UserError(f"{where}: source {src} does not exist", "regenerate the build directory")
    if not (build_dir / "model" / "trm_model.h").is_file():
        raise UserError(f"build directory {build_dir} has no model/trm_model.h", "see docs/build-dir.md")
    return m


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def check_fit(m: dict[str, Any], board: Board, stack_bytes: int, selftest_bytes: int) -> dict[str, Any]:
    """Refuse, with the numbers, a model that cannot fit the board's part or emulator; return the budget."""
    weights = sum(int(v) for v in (m.get("weight_bytes") or {}).values())
    work = max(int(m["arena_bytes"]), selftest_bytes)
    io_bytes = int(m["io"].get("input_bytes", 0))
    need = {"flash": weights + FIRMWARE_CODE_ESTIMATE,
            "ram": work + io_bytes + stack_bytes + FIRMWARE_RAM_BYTES}
    parts = {"flash": f"weights {_kib(weights)} + ~{_kib(FIRMWARE_CODE_ESTIMATE)} code",
             "ram": f"arena/self-test {_kib(work)} + input {_kib(io_bytes)} + stack {_kib(stack_bytes)} + "
                    f"~{_kib(FIRMWARE_RAM_BYTES)} firmware buffers"}
    for what, limits in board.fit_limits().items():
        for name, limit in limits:
            if need[what] > limit:
                label = "RAM" if what == "ram" else what
                raise UserError(f"model does not fit {board.name}: {label} needs {_kib(need[what])} "
                                f"({parts[what]}) > {name} {_kib(limit)}",
                                "use a smaller model or 4-bit weights, a board with more memory, or less stack")
    return {"flash_needed_bytes": need["flash"], "ram_needed_bytes": need["ram"], "weights_bytes": weights,
            "work_bytes": work, "limits": {k: [[n, v] for n, v in lim] for k, lim in board.fit_limits().items()}}


def build_id(build_dir: Path, board: Board, stack_bytes: int, selftest_bytes: int) -> str:
    """A hash of everything the firmware is made of: build directory, board file, template, protocol."""
    h = hashlib.sha256()
    for root in (build_dir, TEMPLATE):
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    h.update(board.path.read_bytes())
    h.update(rpc.c_header().encode() + f"{stack_bytes},{selftest_bytes}".encode())
    return h.hexdigest()[:16]


def _c_string(s: str) -> str:
    return json.dumps(s)          # a valid C string literal for printable ASCII


def config_header(board: Board, m: dict[str, Any], bid: str, stack_bytes: int, selftest_bytes: int) -> str:
    code, data = board.link_regions()
    artifact = (m.get("artifact") or {}).get("sha256", "")
    io = m["io"]
    counter_hz = board.emulator.systick_hz if board.counter == "systick-icount" else board.part.clock_hz
    uart_clock = board.emulator.systick_hz if board.emulated else board.part.clock_hz
    ops = list(board.init) + list(board.trigger.init)
    op_rows = "".join(f"{{0x{o.reg:08X}u, 0x{o.set:08X}u, 0x{o.clear:08X}u, 0x{o.mask:08X}u, 0x{o.value:08X}u}}, "
                      for o in ops)
    info = "".join(f"{k}={v}\n" for k, v in [
        ("board", board.name), ("build_id", bid), ("artifact_sha256", artifact), ("kernels", m.get("kernels", "")),
        ("counter", board.counter), ("counter_hz", counter_hz), ("clock_hz", board.part.clock_hz),
        ("code", f"0x{code.origin:08x}+{code.bytes}"), ("data", f"0x{data.origin:08x}+{data.bytes}"),
        ("arena_bytes", m["arena_bytes"]), ("input_bytes", io.get("input_bytes", 0)),
        ("output_len", io.get("output_len", 0)), ("phases", ",".join(m["phases"])), ("stack_bytes", stack_bytes),
        ("inter_byte_timeout_ms", rpc.inter_byte_timeout_ms(board.emulated))])
    defs = [
        ("TRM_BOARD_NAME", _c_string(board.name)), ("TRM_BOARD_EMULATED", int(board.emulated)),
        ("TRM_BUILD_ID", _c_string(bid)), ("TRM_ARTIFACT_SHA256", _c_string(artifact)),
        ("TRM_CLOCK_HZ", f"{board.part.clock_hz}u"),
        ("TRM_COUNTER_SYSTICK", int(board.counter == "systick-icount")), ("TRM_COUNTER_DWT", int(board.counter == "dwt")),
        ("TRM_COUNTER_KIND", COUNTER_CODES[board.counter]), ("TRM_COUNTER_HZ", f"{counter_hz}u"),
        ("TRM_UART_CMSDK", int(board.uart.driver == "cmsdk")),
        ("TRM_UART_STM32_LPUART", int(board.uart.driver == "stm32-lpuart")),
        ("TRM_UART_BASE", f"0x{board.uart.base:08X}u"), ("TRM_UART_IRQ", board.uart.irq),
        ("TRM_UART_CLOCK_HZ", f"{uart_clock}u"), ("TRM_UART_BAUD", f"{board.uart.baud}u"),
        ("TRM_TRIGGER_SET_REG", f"0x{board.trigger.set.reg:08X}u"),
        ("TRM_TRIGGER_SET_VALUE", f"0x{board.trigger.set.value:08X}u"),
        ("TRM_TRIGGER_CLEAR_REG", f"0x{board.trigger.clear.reg:08X}u"),
        ("TRM_TRIGGER_CLEAR_VALUE", f"0x{board.trigger.clear.value:08X}u"),
        ("TRM_INIT_OP_COUNT", len(ops)), ("TRM_INIT_OPS", "{" + op_rows + "{0, 0, 0, 0, 0}}"),
        ("TRM_CODE_ORIGIN", f"0x{code.origin:08X}u"), ("TRM_DATA_ORIGIN", f"0x{data.origin:08X}u"),
        ("TRM_STACK_BYTES", stack_bytes), ("TRM_SELFTEST_BYTES", selftest_bytes),
        ("TRM_PHASE_COUNT", len(m["phases"])), ("TRM_INFO_TEXT", _c_string(info)),
        ("TRM_INTER_BYTE_TIMEOUT_MS", rpc.inter_byte_timeout_ms(board.emulated)),
    ]
    lines = [f"/* Generated by trm_tvm/project/generate.py for board {board.name} (boards/{board.name}.yaml) and "
             f"build {bid} -- do not edit. */", "#ifndef TRM_CONFIG_H", "#define TRM_CONFIG_H"]
    lines += [f"#define {k} {v}" for k, v in defs]
    lines += ["#endif", ""]
    return "\n".join(lines)


def linker_script(board: Board, stack_bytes: int) -> str:
    code, data = board.link_regions()
    subs = {"@BOARD@": board.name, "@PART@": board.part.name, "@CODE_ORIGIN@": f"0x{code.origin:08X}",
            "@CODE_BYTES@": str(code.bytes), "@DATA_ORIGIN@": f"0x{data.origin:08X}", "@DATA_BYTES@": str(data.bytes),
            "@STACK_BYTES@": str(stack_bytes)}
    return _substitute((TEMPLATE / "linker.ld.in").read_text(), subs)


def qemu_command(board: Board, elf: str, serial: str) -> list[str]:
    """The emulator command line: the board's base command, the firmware, deterministic -icount, the UART."""
    assert board.emulator is not None
    return [*board.emulator.command, "-kernel", elf, "-icount", f"shift={board.emulator.icount_shift},sleep=on",
            "-display", "none", "-monitor", "none", "-serial", serial]


def makefile(board: Board, m: dict[str, Any], sources: list[str], includes: list[str]) -> str:
    defines = " ".join(f"-D{k}={v}" for k, v in (m.get("defines") or {}).items())
    if board.emulated:
        run = " ".join(qemu_command(board, "build/firmware.elf",
                                    "tcp:127.0.0.1:$(PORT),server=on,wait=off,nodelay=on"))
        run = f"@echo 'UART on socket://127.0.0.1:$(PORT)'; {run}"
    else:
        run = " ".join(a.replace("{elf}", "build/firmware.elf") for a in board.flash.commands[board.flash.tool])
    subs = {"@BOARD@": board.name, "@OPT@": m.get("opt", "-O2"), "@CPUFLAGS@": " ".join(board.core.cflags),
            "@DEFINES@": defines, "@INCLUDES@": " ".join(f"-I{i}" for i in includes),
            "@SOURCES@": " \\\n           ".join(sources), "@QEMU_RUN@": run}
    text = _substitute((TEMPLATE / "Makefile.in").read_text(), subs)
    return text.replace("run: build/firmware.elf", "PORT ?= 5555\nrun: build/firmware.elf" if board.emulated
                        else "run: build/firmware.elf")


def _substitute(text: str, subs: dict[str, str]) -> str:
    for k, v in subs.items():
        text = text.replace(k, v)
    return text


def write_project(build_dir: str | os.PathLike, board: str | Board, out_dir: str | os.PathLike, *,
             stack_bytes: int = DEFAULT_STACK_BYTES, selftest_bytes: int = DEFAULT_SELFTEST_BYTES) -> Path:
    build_dir, out_dir = Path(build_dir).resolve(), Path(out_dir).resolve()
    board = board if isinstance(board, Board) else load_board(board)
    if board.template != "cortex_m":
        raise UserError(f"board {board.name} uses the {board.template} template, not cortex_m",
                        "use that template's own project generator")
    if not build_dir.is_dir():
        raise UserError(f"build directory {build_dir} does not exist", "run python -m trm_tvm.compile first")
    m = read_manifest(build_dir)
    if m["board"] != board.name:
        raise UserError(f"build directory {build_dir} was compiled for board {m['board']}, not {board.name}",
                        f"recompile with --board {board.name}")
    budget = check_fit(m, board, stack_bytes, selftest_bytes)
    bid = build_id(build_dir, board, stack_bytes, selftest_bytes)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        shutil.copytree(TEMPLATE / "src", tmp / "src")
        shutil.copytree(build_dir, tmp / "build_dir", ignore=shutil.ignore_patterns("*.o", "*.elf", "__pycache__"))
        (tmp / "board").mkdir()
        shutil.copy2(board.path, tmp / "board" / f"{board.name}.yaml")
        gen = tmp / "gen"
        gen.mkdir()
        includes = [f"build_dir/{d}" for d in m["include_dirs"]]
        inc_dirs = [build_dir / d for d in m["include_dirs"]]
        if not any((d / "trm_kernels.h").is_file() for d in inc_dirs):
            shutil.copy2(KERNEL_HEADER, gen / "trm_kernels.h")      # declarations only; absent kernels are NULL
        variants = selftest.find_variants(inc_dirs)
        (gen / "trm_config.h").write_text(config_header(board, m, bid, stack_bytes, selftest_bytes))
        (gen / "trm_rpc.h").write_text(rpc.c_header())
        (gen / "linker.ld").write_text(linker_script(board, stack_bytes))
        (gen / "selftest_table.c").write_text(selftest.c_table(variants))
        sources = sorted(f"src/{p.name}" for p in (TEMPLATE / "src").glob("*.c")) + ["gen/selftest_table.c"]
        sources += [f"build_dir/{s}" for s in m["sources"]]
        (tmp / "Makefile").write_text(makefile(board, m, sources, includes))
        project = {"schema": PROJECT_SCHEMA, "version": 1, "board": board.name, "build_id": bid,
                   "board_file": f"board/{board.name}.yaml", "build_dir": "build_dir", "source_build_dir": str(build_dir),
                   "manifest": m, "stack_bytes": stack_bytes, "selftest_bytes": selftest_bytes,
                   "selftest_variants": variants, "selftest_kernels": [e.name for e in selftest.entries(variants)],
                   "fit": budget, "elf": "build/firmware.elf"}
        write_json(tmp / "project.json", project)
        (tmp / "README.md").write_text(_readme(board, bid))
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a finished directory into place so readers never see a half-written project."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


def _readme(board: Board, bid: str) -> str:
    how = ("make run            # QEMU, UART on socket://127.0.0.1:5555 (PORT=...)\n"
           if board.emulated else "make run            # flash with " + board.flash.tool + "\n")
    return (f"# Firmware project for {board.name} (build {bid})\n\nGenerated by trm_tvm.project from a build directory "
            f"(build_dir/) and boards/{board.name}.yaml (board/).\n\n```\nmake               # needs only arm-none-eabi-gcc\n"
            f"{how}```\n\nThen drive it with `python -m trm_tvm.session --project <this dir> --port ...`. "
            "The RPC protocol: docs/session.md of trm-tvm.\n")

