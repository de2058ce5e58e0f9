"""Timing: executed instructions per class from our QEMU TCG plugin (emulated), cycles from per-class CPIs (modeled).

    counts = run_with_plugin(qemu_cmd, elf, board)          # {region: {class: n}}, one region per ELF function
    phases = group_regions(counts, {"kernels": ["trm_*"]})  # any grouping by symbol-name patterns
    cyc    = cycles(phases["kernels"], board)               # figure(..., "cycles", "modeled", ...)

For a QEMU the caller starts (the session), `prepare_plugin` gives the QEMU arguments and, with marks, snapshots
that `per_inference` splits into inferences and phases. The plugin (plugin/trm_insn_classes.c, QEMU plugin API v1)
is compiled on first use with the host gcc into a cache directory keyed by its source hash. Instruction counts are
**emulated** (exact counts of what QEMU executed); cycles are **modeled**: sum over classes of count x CPI from the
board's `timing_model`, plus flash wait states for code fetches and data reads that miss the flash accelerator.
See docs/measurement.md.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from trm_tvm.errors import UserError
from trm_tvm.measure.board_data import board_name, flash_range, has_mve, part, section, timing_model
from trm_tvm.provenance import figure

PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugin" / "trm_insn_classes.c"
PLUGIN_API = 1

# The plugin's file format, in order (mirrors CLASSES in trm_insn_classes.c).
CLASSES = ("alu", "mul", "mla", "mac", "div", "load", "load_pipelined", "store", "lsm", "lsm_regs",
           "branch_taken", "branch_not_taken", "pc_load", "agu_stall", "fp", "fp_mac", "fp_div", "mve", "lob", "system",
           "insns", "fetch_bytes", "flash_data_bytes")
# Classes that cost cycles through a CPI; the rest are totals for checks and the flash model.
CPI_CLASSES = tuple(c for c in CLASSES if c not in ("insns", "fetch_bytes", "flash_data_bytes"))
OTHER_REGION = "<other>"


def cache_dir() -> Path:
    root = os.environ.get("TRM_TVM_CACHE") or Path.home() / ".cache" / "trm-tvm"
    return Path(root) / "measure"


def build_plugin() -> Path:
    """Compile the plugin once per source version; the .so is cached by the hash of its source."""
    src = PLUGIN_SOURCE.read_bytes()
    so = cache_dir() / f"trm_insn_classes-{hashlib.sha256(src).hexdigest()[:16]}.so"
    if so.is_file():
        return so
    gcc = shutil.which("gcc")
    if gcc is None:
        raise UserError("the host C compiler gcc was not found (needed to build the QEMU timing plugin)",
                        "install it: apt-get install gcc (make setup does)")
    so.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=so.parent, suffix=".so.tmp")
    os.close(fd)
    try:
        r = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-fvisibility=hidden", "-o", tmp,
                            str(PLUGIN_SOURCE)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"building the timing plugin failed:\n{r.stderr}")
        os.replace(tmp, so)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return so


# ---- code regions from the ELF ----

@dataclass(frozen=True)
class Region:
    name: str
    lo: int
    hi: int  # exclusive


def function_regions(elf_path: str | os.PathLike) -> list[Region]:
    """Address ranges of the ELF's function symbols (Thumb bit cleared), sorted, aliases merged, no overlaps."""
    from elftools.elf.elffile import ELFFile
    from elftools.common.exceptions import ELFError

    try:
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            symtab = elf.get_section_by_name(".symtab")
            if symtab is None:
                raise UserError(f"{elf_path} has no symbol table", "build the firmware without stripping (-g not needed)")
            funcs = sorted((sym["st_value"] & ~1, sym["st_size"], sym.name) for sym in symtab.iter_symbols()
                           if sym["st_info"]["type"] == "STT_FUNC" and sym["st_shndx"] != "SHN_UNDEF")
            spans: dict[tuple[int, int], str] = {}
            for i, (lo, size, name) in enumerate(funcs):
                if size == 0:  # hand-written assembly without .size: up to the next function
                    size = next((f[0] for f in funcs[i + 1:] if f[0] > lo), lo) - lo
                if size:
                    spans.setdefault((lo, lo + size), name)
    except (OSError, ELFError) as e:
        raise UserError(f"cannot read ELF {elf_path} ({e})", "rebuild the firmware") from None
    regions: list[Region] = []
    for (lo, hi), name in sorted(spans.items()):
        if regions and lo < regions[-1].hi:  # nested/overlapping symbols: keep the first, clip the next
            if hi <= regions[-1].hi:
                continue
            lo = regions[-1].hi
        regions.append(Region(name, lo, hi))
    return regions


# ---- running QEMU with the plugin ----

@dataclass
class PluginRun:
    """One plugin run: `qemu_args` go on the QEMU command line; after QEMU exits, `counts()` reads the result.

    For a caller that starts QEMU itself (the session keeps QEMU running behind a serial socket).
    """
    workdir: Path
    regions: list[Region]
    plugin: Path
    mve: bool
    marks: tuple[str, ...] = ()
    flash: tuple[int, int] | None = None

    @property
    def out_path(self) -> Path:
        return self.workdir / "insn_classes.txt"

    @property
    def qemu_args(self) -> list[str]:
        args = f"{self.plugin},ranges={self.workdir / 'ranges.txt'},out={self.out_path}"
        start = {r.name: r.lo for r in self.regions}
        args += "".join(f",mark={start[m]:x}" for m in self.marks)
        if self.flash:
            args += f",flash={self.flash[0]:x}:{self.flash[1]:x}"
        return ["-plugin", args + (",mve=on" if self.mve else "")]

    def counts(self) -> dict[str, dict[str, int]]:
        if not self.out_path.is_file():
            raise UserError(f"the timing plugin wrote no counts ({self.out_path})",
                            "QEMU did not exit normally; see its stderr")
        return parse_counts(self.out_path.read_text(), self.regions)

    def snapshots(self) -> list[tuple[str, dict[str, dict[str, int]]]]:
        """(mark function, cumulative counts per function) each time a mark function was entered, in order."""
        path = Path(f"{self.out_path}.marks")
        text = path.read_text() if path.is_file() else ""
        names = [r.name for r in self.regions] + [OTHER_REGION]
        out, rows, mark = [], {}, None
        for line in text.splitlines():
            head, *rest = line.split()
            if head == "mark":
                mark, rows = self.marks[int(rest[0])], {}
            elif head == "end":
                out.append((mark, rows))
            else:
                rows[names[int(head)]] = dict(zip(CLASSES, map(int, rest)))
        return out


def prepare_plugin(elf: str | os.PathLike, board: Any, workdir: str | os.PathLike,
                   marks: tuple[str, ...] = ()) -> PluginRun:
    """Build the plugin, write the ELF's function ranges into `workdir`, return the QEMU arguments to add.

    `marks`: function names; each entry into one snapshots the counts (see `intervals`), e.g. the firmware's
    ("trm_phase_begin", "trm_phase_end") to get counts per executed phase.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    regions = function_regions(elf)
    missing = sorted(set(marks) - {r.name for r in regions})
    if missing:
        raise UserError(f"mark function {missing[0]} is not a function of {elf}",
                        "mark only functions the firmware defines (and keep them out of line: noinline)")
    (workdir / "ranges.txt").write_text("".join(f"{r.lo:x} {r.hi:x}\n" for r in regions))
    for stale in ("insn_classes.txt", "insn_classes.txt.marks"):
        (workdir / stale).unlink(missing_ok=True)
    return PluginRun(workdir, regions, build_plugin(), has_mve(board), tuple(marks), flash_range(board))


def difference(later: Mapping[str, Mapping[str, int]], earlier: Mapping[str, Mapping[str, int]]) -> dict:
    """Counts executed between two snapshots (per function)."""
    out = {}
    for fn, row in later.items():
        base = earlier.get(fn, {})
        d = {k: v - base.get(k, 0) for k, v in row.items()}
        if d["insns"]:
            out[fn] = d
    return out


def intervals(snapshots: list[tuple[str, dict]], start: str, end: str) -> list[dict[str, dict[str, int]]]:
    """Counts of every interval from an entry into `start` to the next entry into `end`, in order."""
    out, opened = [], None
    for mark, rows in snapshots:
        if mark == start:
            opened = rows
        elif mark == end and opened is not None:
            out.append(difference(rows, opened))
            opened = None
    return out


def run_with_plugin(qemu_cmd: list[str], elf: str | os.PathLike, board: Any, workdir: str | os.PathLike | None = None,
                    timeout: float = 600) -> dict[str, dict[str, int]]:
    """Run `qemu_cmd` (which must load `elf` and exit by itself, e.g. by semihosting) under the plugin.

    Returns executed-instruction counts per ELF function: {function: {class: count}} (emulated).
    """
    with tempfile.TemporaryDirectory(prefix="trm-plugin-") as tmp:
        run = prepare_plugin(elf, board, workdir or tmp)
        try:
            r = subprocess.run(list(qemu_cmd) + run.qemu_args, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise UserError(f"{qemu_cmd[0]} was not found", "install QEMU 7.2 (make setup does)") from None
        except subprocess.TimeoutExpired:
            raise UserError(f"QEMU did not exit within {timeout:.0f} s under the timing plugin",
                            "the firmware must exit by semihosting when its run is done") from None
        check_plugin_loaded(r.stderr)
        counts = run.counts() if run.out_path.is_file() else {}
        if not counts:
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"QEMU exited ({r.returncode}) without running the firmware under the timing plugin: "
                            f"{tail}", "check the firmware and the QEMU command")
        return counts


def check_plugin_loaded(stderr: str) -> None:
    """Turn QEMU's refusal of the plugin into one clear line."""
    for line in stderr.splitlines():
        if line.startswith("trm_insn_classes:") or "Could not load plugin" in line or "plugin" in line and "version" in line:
            raise UserError(f"QEMU refused the timing plugin: {line.strip()}",
                            f"the plugin uses QEMU plugin API v{PLUGIN_API}; use QEMU 7.2 (Debian 12)")


def parse_counts(text: str, regions: list[Region]) -> dict[str, dict[str, int]]:
    lines = text.splitlines()
    if len(lines) < 2 or lines[0] != "trm-insn-classes 1" or tuple(lines[1].split()[1:]) != CLASSES:
        raise UserError("the timing plugin's output has an unknown format",
                        "the cached plugin is stale: delete " + str(cache_dir()))
    names = [r.name for r in regions] + [OTHER_REGION]
    out: dict[str, dict[str, int]] = {}
    for line in lines[2:]:
        idx, *vals = line.split()
        row = dict(zip(CLASSES, map(int, vals)))
        if row["insns"]:
            out[names[int(idx)]] = row
    return out


# The firmware's marks and the order in which the model's executor runs its phases (docs/build-dir.md).
SESSION_MARKS = ("trm_run", "trm_phase_begin", "trm_phase_end")


def inference_spans(snapshots: list[tuple[str, dict]], calls_per_step: int) -> list[tuple[list, list[dict]]]:
    """Per inference (each entry into `trm_run` starts one): its snapshots and its phase intervals, checked to be
    prologue + k x (`calls_per_step` net calls + heads)."""
    runs: list[list[tuple[str, dict]]] = []
    for mark, rows in snapshots:
        if mark == "trm_run":
            runs.append([])
        if runs:
            runs[-1].append((mark, rows))
    out = []
    for i, snaps in enumerate(runs):
        spans = intervals(snaps, "trm_phase_begin", "trm_phase_end")
        if not spans or (len(spans) - 1) % (calls_per_step + 1):
            raise UserError(f"inference {i}: {len(spans)} phase intervals do not fit prologue + k x "
                            f"({calls_per_step} net + heads)", "the firmware's phase hooks and build.json disagree")
        out.append((snaps, spans))
    return out


def per_inference(snapshots: list[tuple[str, dict]], calls_per_step: int) -> list[dict[str, Any]]:
    """Split a session's snapshots (marks SESSION_MARKS) into inferences, and each into its phases.

    Every entry into `trm_run` starts an inference; inside it the phase intervals come in the executor's order:
    prologue, then per supervision step `calls_per_step` net calls and the heads (build.json schedule_info).
    Returns per inference {"phases": {"prologue"|"net"|"heads": counts per function}, "calls": {...},
    "steps": n, "run": counts from trm_run entry to the end of the last phase}.
    """
    out = []
    for snaps, spans in inference_spans(snapshots, calls_per_step):
        labels = ["prologue"] + (["net"] * calls_per_step + ["heads"]) * ((len(spans) - 1) // (calls_per_step + 1))
        phases: dict[str, dict] = {}
        for label, span in zip(labels, spans):
            acc = phases.setdefault(label, {})
            for fn, row in span.items():
                tot = acc.setdefault(fn, dict.fromkeys(CLASSES, 0))
                for k, v in row.items():
                    tot[k] += v
        last_end = [rows for mark, rows in snaps if mark == "trm_phase_end"][-1]
        out.append({"phases": phases, "calls": {lab: labels.count(lab) for lab in phases},
                    "steps": labels.count("heads"), "run": difference(last_end, snaps[0][1])})
    return out


# ---- grouping into phases ----

def group_regions(counts: Mapping[str, Mapping[str, int]], groups: Mapping[str, list[str]],
                  rest: str = "other") -> dict[str, dict[str, int]]:
    """Sum function counts into named groups by fnmatch patterns (first matching group wins; the rest -> `rest`)."""
    out: dict[str, dict[str, int]] = {}
    for fn, row in counts.items():
        name = next((g for g, pats in groups.items() if any(fnmatch.fnmatchcase(fn, p) for p in pats)), rest)
        acc = out.setdefault(name, dict.fromkeys(CLASSES, 0))
        for k, v in row.items():
            acc[k] += v
    return out


def total(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    return group_regions(counts, {}, rest="total")["total"] if counts else dict.fromkeys(CLASSES, 0)


# ---- the cycle model ----

def instructions(row: Mapping[str, int], source: str = "QEMU TCG plugin trm_insn_classes") -> dict:
    return figure(int(row["insns"]), "instructions", "emulated", source)


def cycle_breakdown(row: Mapping[str, int], board: Any) -> dict[str, float]:
    """Modeled cycles per class (count x CPI) plus `flash_wait` for instruction fetches that miss the accelerator."""
    cpi = timing_model(board, CPI_CLASSES)["cpi"]
    out = {c: row.get(c, 0) * float(cpi[c]) for c in CPI_CLASSES if row.get(c, 0)}
    out["flash_wait"] = flash_wait_cycles(row, board)
    return out


def flash_wait_cycles(row: Mapping[str, int], board: Any) -> float:
    """Wait states for every flash line read that the accelerator does not serve.

    Instruction side: lines = code bytes executed / line size + one new line per taken branch or PC load, missing
    at 1 - `part.accelerator.hit_rate`. Data side (weights and constants read from flash): lines = bytes loaded
    from flash / line size, missing at 1 - `timing_model.flash_data_hit_rate` (default 0: weights stream through
    a few-line data cache once per use). Wait states from `part.flash_wait_states`, line size from
    `timing_model.flash_line_bytes`. Sequential use of each line is assumed (scattered byte reads cost more).
    """
    ws = float(part(board, "flash_wait_states", 0))
    if ws == 0:
        return 0.0
    tm = section(board, "timing_model")
    line = float(tm.get("flash_line_bytes", 16))
    code_miss = 1.0 - float(part(board, "accelerator", {}).get("hit_rate", 0.0))
    data_miss = 1.0 - float(tm.get("flash_data_hit_rate", 0.0))
    code_lines = row.get("fetch_bytes", 0) / line + row.get("branch_taken", 0) + row.get("pc_load", 0)
    data_lines = row.get("flash_data_bytes", 0) / line
    return ws * (code_miss * code_lines + data_miss * data_lines)


def cycles(row: Mapping[str, int], board: Any) -> dict:
    """Modeled cycles of one count row (a function, a phase or a total) on `board`, as a provenance figure."""
    tm = timing_model(board, CPI_CLASSES)
    value = sum(cycle_breakdown(row, board).values())
    low = ", LOW FIDELITY" if tm.get("fidelity", "high") != "high" else ""
    return figure(round(value), "cycles", "modeled",
                  f"boards/{board_name(board)}.yaml timing_model: {tm.get('source', 'per-class CPI')}{low}")


def latency_s(cycle_fig: dict, board: Any) -> dict:
    """Cycles at the real part's clock (`part.clock_hz`), in seconds, keeping the cycles' provenance."""
    hz = float(part(board, "clock_hz") or section(board, "energy")["clock_hz"])
    return figure(cycle_fig["value"] / hz, "s", cycle_fig["provenance"], cycle_fig["source"] + f" at {hz / 1e6:g} MHz")


# ---- SysTick under -icount: the firmware's own count, a cross-check of the plugin ----

def icount_ticks_to_instructions(ticks: int, shift: int, systick_hz: float) -> dict:
    """Instructions executed during `ticks` SysTick ticks under `-icount shift=N` (each instruction = 2^N ns).

    `systick_hz` is the emulated SysTick clock of the QEMU machine (mps2-an386/an500 25 MHz, an505 20 MHz,
    an547 32 MHz with CLKSOURCE=1). The result is emulated and has +-1 tick of quantisation.
    """
    insns_per_tick = 1e9 / (systick_hz * 2 ** shift)
    return figure(ticks * insns_per_tick, "instructions", "emulated",
                  f"SysTick at {systick_hz / 1e6:g} MHz under QEMU -icount shift={shift} "
                  f"(+-{insns_per_tick:.3g} instructions)")
