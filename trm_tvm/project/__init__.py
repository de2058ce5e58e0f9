"""The project API: the verbs microTVM's Project API had, for bare-metal Cortex-M boards.

    project = generate_project(build_dir, "cortex-m4", out_dir)   # self-contained firmware project (Makefile)
    elf = build(project)                                         # make; too big = one line with the numbers
    device = flash(project)                                      # QEMU: start it; hardware: openocd / pyOCD
    port = open_transport(device)                                # pyserial: socket://... or a tty
    ...                                                          # trm_tvm.rpc.RpcClient(port)
    close_transport(port, device)                                # close; stop the emulator

Emulated boards run under QEMU with `-icount` (deterministic instruction counts) and the UART on a loopback
socket with nodelay=on; real boards are flashed with the board file's command and reached through its tty.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import serial

from trm_tvm.boards import Board, load_board
from trm_tvm.errors import UserError
from trm_tvm.jsonio import read_json
from trm_tvm.project.generate import PROJECT_SCHEMA, qemu_command, write_project

__all__ = ["Project", "Device", "generate_project", "load_project", "build", "flash", "open_transport",
           "close_transport"]


@dataclass
class Project:
    dir: Path
    board: Board
    info: dict[str, Any]          # project.json

    @property
    def elf(self) -> Path:
        return self.dir / self.info["elf"]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.info["manifest"]

    @property
    def build_id(self) -> str:
        return self.info["build_id"]


@dataclass
class Device:
    """A flashed board: where to reach it, and for QEMU the running emulator."""
    url: str
    command: list[str]
    process: subprocess.Popen | None = None
    log: Path | None = None
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def log_tail(self, lines: int = 3) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])


def generate_project(build_dir: str | os.PathLike, board: str | Board, out_dir: str | os.PathLike, **kw) -> Project:
    """Turn a build directory into a self-contained project for `board` in `out_dir` (replaced atomically)."""
    return load_project(write_project(build_dir, board, out_dir, **kw))


def load_project(project_dir: str | os.PathLike) -> Project:
    d = Path(project_dir)
    info = read_json(d / "project.json", "project file")
    if info.get("schema") != PROJECT_SCHEMA:
        raise UserError(f"{d / 'project.json'} is not a trm-tvm project", "generate it with trm_tvm.project")
    return Project(d, load_board(d / info["board_file"]), info)


def _require(tool: str, fix: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise UserError(f"{tool} is not installed", fix)
    return path


def build(project: Project, jobs: int = 1, opt: str | None = None) -> Path:
    """`make` the firmware; a memory overflow or a compile error is one line (the full log in build/build.log)."""
    _require("arm-none-eabi-gcc", "run `make setup` (installs gcc-arm-none-eabi)")
    _require("make", "apt-get install make")
    cmd = ["make", "-C", str(project.dir), f"-j{jobs}"] + ([f"OPT={opt}"] if opt else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    log = project.dir / "build" / "build.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        over = re.search(r"region `(\w+)' overflowed by (\d+) bytes", r.stderr)
        if over:
            region = {"CODE": "code/flash", "DATA": "RAM"}.get(over.group(1), over.group(1))
            raise UserError(f"firmware for {project.board.name} does not fit: {region} overflowed by "
                            f"{int(over.group(2))} bytes (limits: {project.info['fit']['limits']})",
                            "use a smaller model or stack (--stack-bytes), or a board with more memory")
        lines = r.stderr.strip().splitlines() or ["(no output)"]
        first = next((l for l in lines if "error" in l), lines[-1])
        raise UserError(f"firmware build failed: {first}", f"see {log}")
    return project.elf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flash_command(project: Project, tool: str | None = None) -> list[str]:
    """The hardware flash command of the board file with the firmware path filled in."""
    b = project.board
    if b.flash is None:
        raise UserError(f"board {b.name} has no flash commands", "emulated boards are started with flash()")
    tool = tool or b.flash.tool
    if tool not in b.flash.commands:
        raise UserError(f"board {b.name} has no {tool} command", f"known: {', '.join(b.flash.commands)}")
    return [a.replace("{elf}", str(project.elf)) for a in b.flash.commands[tool]]


def flash(project: Project, *, port: str | None = None, tool: str | None = None, dry_run: bool = False,
          extra_args: tuple[str, ...] | list[str] = ()) -> Device:
    """Put the firmware on the board. QEMU: start the emulator (UART on a free loopback port unless `port` is
    given; `extra_args` e.g. a timing plugin); hardware: run openocd/pyOCD (`dry_run` only builds the command)
    and use the board's tty (or `port`)."""
    b = project.board
    if not dry_run and not project.elf.is_file():
        raise UserError(f"{project.elf} does not exist", "build the project first (trm_tvm.project.build)")
    if b.emulated and tool is None:
        host = b.transport.host
        tcp = port or str(_free_port())
        cmd = qemu_command(b, str(project.elf), f"tcp:{host}:{tcp},server=on,wait=off,nodelay=on") + list(extra_args)
        url = f"socket://{host}:{tcp}"
        if dry_run:
            return Device(url, cmd, dry_run=True)
        _require(cmd[0], "run `make setup` (installs qemu-system-arm)")
        log = project.dir / "build" / "qemu.log"
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return Device(url, cmd, proc, log)
    cmd = flash_command(project, tool)
    url = port or b.transport.port
    if dry_run:
        return Device(url, cmd, dry_run=True)
    _require(cmd[0], f"install {cmd[0]} (see docs/boards.md) or flash {project.elf} another way")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        raise UserError(f"{cmd[0]} failed to flash {b.name}: {tail[0]}", "check the board is connected and powered")
    return Device(url, cmd)


def open_transport(device: Device | str, timeout: float = 10.0, baud: int | None = None) -> serial.SerialBase:
    """A pyserial port to the device: `socket://host:port` (QEMU, retried until the emulator listens) or a tty."""
    dev = device if isinstance(device, Device) else None
    url = device.url if dev else str(device)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if url.startswith("socket://"):
                return serial.serial_for_url(url, timeout=1.0)
            return serial.Serial(url, baudrate=baud or 115200, timeout=1.0)
        except (serial.SerialException, OSError) as e:
            if dev is not None and not dev.alive():
                raise UserError(f"the emulator exited before its UART opened ({dev.log_tail()})",
                                f"see {dev.log}")
            if time.monotonic() > deadline or not url.startswith("socket://"):
                raise UserError(f"cannot open {url}: {e}", "check the port (--port) and that the board is connected")
            time.sleep(0.05)


def close_transport(port: serial.SerialBase | None, device: Device | None = None) -> None:
    """Close the port; stop the emulator if one was started (terminate, then kill)."""
    if port is not None:
        try:
            port.close()
        except (serial.SerialException, OSError):
            pass
    if device is not None and device.process is not None and device.process.poll() is None:
        device.process.terminate()
        try:
            device.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            device.process.kill()
            device.process.wait()
