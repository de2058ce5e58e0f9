"""The host <-> firmware RPC protocol: frame format, message types, the shared PRNG, and the C header generator.

Strictly request/response: the host sends one frame and waits for one reply frame with the same sequence number.
A frame is

    A5 5A | type u8 | seq u8 | length u16 LE | payload (length bytes) | CRC-32 u32 LE

with the CRC (IEEE 802.3, as zlib.crc32) over type, seq, length and payload. A reply's type is the request's type
| 0x80; a refused request gets an ERROR frame (type 0xFF) carrying an error code. The firmware also sends an
ERROR frame on its own when a frame stops half-way (inter-byte timeout) or when bytes that are no frame arrive
(reported once the line goes idle), so every corruption is reported. Message layouts are `struct` formats here
and #defines in the generated C header `trm_rpc.h` (`c_header()`), so host and firmware share one definition.

Everything else (retries, timeouts, resynchronisation) is in `RpcClient`.
"""
from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import serial

from trm_tvm.errors import UserError

SYNC = b"\xA5\x5A"
HEADER = struct.Struct("<BBH")            # type, seq, length (after the two sync bytes)
CRC = struct.Struct("<I")
MAX_PAYLOAD = 1024
FRAME_OVERHEAD = len(SYNC) + HEADER.size + CRC.size
PROTOCOL_VERSION = 1
REPLY = 0x80
ERROR = 0xFF
# Firmware: a frame that stops for this long is reported (TIMEOUT) and dropped; stray bytes are reported after the
# line was idle this long. On QEMU the time is virtual (-icount: instructions), which runs slower than real time.
INTER_BYTE_TIMEOUT_MS = 20


def inter_byte_timeout_ms(emulated: bool) -> int:
    return INTER_BYTE_TIMEOUT_MS


@dataclass(frozen=True)
class Message:
    name: str
    code: int
    request: str          # struct format of the fixed part of the request ("" = empty); "+" = variable tail
    reply: str            # struct format of the fixed part of the reply
    doc: str


MESSAGES = [
    Message("PING", 0x01, "+", "+", "echo the payload"),
    Message("INFO", 0x02, "", "+", "key=value lines: board, build id, artifact hash, memory map, io sizes"),
    Message("LOAD_INPUT", 0x03, "<I+", "<I", "copy payload to input[offset:]; reply: bytes of input now loaded"),
    Message("RUN", 0x04, "<iBB", "<iBxHhQ", "q_threshold, max_steps, flags -> status, steps, pred, q, ticks"),
    Message("READ_OUTPUT", 0x05, "<HH", "+", "offset, count (int16 logits) -> the logits"),
    Message("READ_STATS", 0x06, "", "<BBBxIIIIQ+", "counter, n_phases, steps, _, peak stack, model stack, stack "
                                               "size, rx errors, total ticks; then per phase: calls u32, ticks u64"),
    Message("SELF_TEST", 0x07, "<HHI6i", "<HH+", "kernel, batches, seed, params -> per batch: crc32 u32, ticks u64"),
    Message("SELF_TEST_DATA", 0x08, "<HHI6iIH", "+", "kernel, batch, seed, params, offset, count -> output bytes"),
    Message("KERNELS", 0x09, "<H", "<H+", "first index -> total, then 'index name present' lines"),
    Message("READ_LAYERS", 0x0A, "<H", "<HH+", "first op index -> ops seen, count; per op: calls u32, ticks u64 "
                                              "(builds with TRM_PROFILE_LAYERS=1; else 0 ops)"),
    Message("READ_STEPS", 0x0B, "<BHH", "<BBh+", "step (0-based), offset, count -> steps logged, n_phases, that "
                                                "step's q; per phase cumulative ticks u64 at its end; int16 logits "
                                                "(RUN with RUN_FLAG_LOG_STEPS)"),
]
BY_NAME = {m.name: m for m in MESSAGES}
BY_CODE = {m.code: m for m in MESSAGES}

ERRORS = {                                 # code: (name, meaning); ERROR payload: code u8, request type u8, detail u32
    1: ("BAD_CRC", "CRC mismatch; detail = received CRC"),
    2: ("BAD_LENGTH", "length field above the firmware's maximum; detail = length"),
    3: ("TIMEOUT", "frame stopped half-way (inter-byte timeout); detail = bytes received of the frame"),
    4: ("GARBAGE", "bytes outside any frame, reported when the line went idle; detail = count"),
    5: ("UNKNOWN_TYPE", "no such request type"),
    6: ("BAD_PAYLOAD", "payload length wrong for the type; detail = length"),
    7: ("RANGE", "offset/count/index out of range; detail = the bad value"),
    8: ("NO_INPUT", "RUN before the whole input was loaded; detail = bytes loaded"),
    9: ("MODEL", "trm_init/trm_run failed; detail = its negative return code"),
    10: ("ABSENT", "self-test kernel not linked into this firmware; detail = kernel index"),
    11: ("OVERFLOW", "UART receive ring overflowed; detail = bytes lost"),
    12: ("FAULT", "the core faulted; detail = CFSR (firmware halts)"),
}
ERROR_CODES = {name: code for code, (name, _) in ERRORS.items()}
ERROR_REPLY = struct.Struct("<BBI")
LINK_ERRORS = {"BAD_CRC", "BAD_LENGTH", "TIMEOUT", "GARBAGE", "OVERFLOW"}   # the request was damaged: retry
COUNTERS = {0: "systick-icount", 1: "dwt"}
RUN_FLAG_PAINT_STACK = 1
RUN_FLAG_LOG_STEPS = 2       # keep every supervision step's logits, q and phase ticks for READ_STEPS


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(type_: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = HEADER.pack(type_, seq & 0xFF, len(payload)) + payload
    return SYNC + body + CRC.pack(crc32(body))


@dataclass
class Frame:
    type: int
    seq: int
    payload: bytes

    @property
    def is_error(self) -> bool:
        return self.type == ERROR

    def error(self) -> tuple[str, int, int]:
        """(error name, request type, detail) of an ERROR frame."""
        code, req, detail = ERROR_REPLY.unpack_from(self.payload.ljust(ERROR_REPLY.size, b"\0"))
        return ERRORS.get(code, (f"E{code}", ""))[0], req, detail


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one complete frame (tests, and the reader after it collected the bytes)."""
    if data[:2] != SYNC or len(data) < FRAME_OVERHEAD:
        raise ValueError("not a frame")
    type_, seq, length = HEADER.unpack_from(data, 2)
    if len(data) != FRAME_OVERHEAD + length:
        raise ValueError(f"frame length {len(data)} does not match its length field {length}")
    body = data[2:2 + HEADER.size + length]
    if CRC.unpack_from(data, 2 + HEADER.size + length)[0] != crc32(body):
        raise ValueError("CRC mismatch")
    return Frame(type_, seq, body[HEADER.size:])


# ------------------------------------------------------------------------------------------------------ the PRNG
# Counter-based, so numpy can vectorise it: value i of a stream with seed s is mix(s + i * GOLDEN) (mod 2^32);
# batch b of a self-test uses the seed mix(seed ^ mix(b + 1)). MIX is the murmur3 finaliser, written once as an op
# list that numpy runs here and `c_header()` prints as C.
GOLDEN = 0x9E3779B9
MIX = [("xorshr", 16), ("mul", 0x85EBCA6B), ("xorshr", 13), ("mul", 0xC2B2AE35), ("xorshr", 16)]


def prng_mix(x: np.ndarray | int) -> np.ndarray:
    h = np.asarray(x, dtype=np.uint64) & 0xFFFFFFFF
    for op, k in MIX:
        h = h ^ (h >> k) if op == "xorshr" else (h * k) & 0xFFFFFFFF
    return h.astype(np.uint32)


def prng_u32(seed: int, start: int, n: int) -> np.ndarray:
    """Values start..start+n-1 of the stream `seed`."""
    i = np.arange(start, start + n, dtype=np.uint64)
    return prng_mix((np.uint64(seed) + i * np.uint64(GOLDEN)) & np.uint64(0xFFFFFFFF))


def batch_seed(seed: int, batch: int) -> int:
    return int(prng_mix(seed ^ int(prng_mix(batch + 1))))


def prng_range(seed: int, start: int, n: int, lo: int, hi: int) -> np.ndarray:
    """n integers in [lo, hi] (int64): lo + (u32 % (hi - lo + 1)); the C side does the same in uint32."""
    span = hi - lo + 1
    assert 1 <= span <= 0xFFFFFFFF
    return lo + (prng_u32(seed, start, n).astype(np.int64) % span)


def _c_mix() -> str:
    lines = [f"  h {'^= h >> ' + str(k) if op == 'xorshr' else '*= ' + hex(k) + 'u'};" for op, k in MIX]
    return "\n".join(lines)


def c_header() -> str:
    """trm_rpc.h: protocol constants, message codes, fixed payload sizes, error codes and the PRNG, for the firmware."""
    out = ["/* Generated by trm_tvm/rpc.py -- do not edit. The RPC protocol shared with the host (docs/session.md). */",
           "#ifndef TRM_RPC_H", "#define TRM_RPC_H", "#include <stdint.h>", "",
           f"#define TRM_RPC_VERSION {PROTOCOL_VERSION}",
           "#define TRM_RPC_SYNC0 0xA5", "#define TRM_RPC_SYNC1 0x5A",
           f"#define TRM_RPC_MAX_PAYLOAD {MAX_PAYLOAD}", f"#define TRM_RPC_HEADER_BYTES {len(SYNC) + HEADER.size}",
           f"#define TRM_RPC_OVERHEAD {FRAME_OVERHEAD}", f"#define TRM_RPC_REPLY 0x{REPLY:02X}",
           f"#define TRM_RPC_ERROR 0x{ERROR:02X}",
           f"#define TRM_RPC_RUN_FLAG_PAINT_STACK {RUN_FLAG_PAINT_STACK}",
           f"#define TRM_RPC_RUN_FLAG_LOG_STEPS {RUN_FLAG_LOG_STEPS}", ""]
    for m in MESSAGES:
        out.append(f"#define TRM_RPC_{m.name} 0x{m.code:02X}  /* {m.doc} */")
        for side, fmt in (("REQ", m.request), ("REPLY", m.reply)):
            fixed = fmt.rstrip("+")
            out.append(f"#define TRM_RPC_{m.name}_{side}_BYTES {struct.calcsize(fixed) if fixed else 0}"
                       f"{'  /* + variable tail */' if fmt.endswith('+') else ''}")
    out.append("")
    for code, (name, doc) in ERRORS.items():
        out.append(f"#define TRM_E_{name} {code}  /* {doc} */")
    out.append(f"#define TRM_RPC_ERROR_BYTES {ERROR_REPLY.size}")
    out += ["", "/* The shared PRNG (trm_tvm.rpc.prng_*): value i of stream s = mix(s + i * GOLDEN). */",
            f"#define TRM_PRNG_GOLDEN 0x{GOLDEN:08X}u",
            "static inline uint32_t trm_prng_mix(uint32_t h) {", _c_mix(), "  return h;", "}",
            "static inline uint32_t trm_prng_u32(uint32_t seed, uint32_t i) { "
            "return trm_prng_mix(seed + i * TRM_PRNG_GOLDEN); }",
            "static inline uint32_t trm_prng_batch_seed(uint32_t seed, uint32_t b) { "
            "return trm_prng_mix(seed ^ trm_prng_mix(b + 1u)); }",
            "/* lo + (u32 % (hi - lo + 1)), the span computed in uint32 */",
            "static inline int64_t trm_prng_range(uint32_t seed, uint32_t i, int64_t lo, int64_t hi) {",
            "  return lo + (int64_t)(trm_prng_u32(seed, i) % (uint32_t)(hi - lo + 1));", "}",
            "", "#endif", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------- the client
class RpcError(UserError):
    """The device refused a request (an ERROR frame that retrying does not fix)."""


class LinkError(UserError):
    """No valid reply after every retry: the link is silent or broken."""


@dataclass
class LinkStats:
    sent: int = 0
    retries: int = 0
    timeouts: int = 0
    error_frames: int = 0
    skipped_bytes: int = 0
    stale_frames: int = 0


class RpcClient:
    """Request/response over any object with pyserial's read(n)/write(b)/timeout (a serial port or socket://).

    Every call retries on a silent link, a damaged request (device reports BAD_CRC/TIMEOUT/...) or a damaged reply
    (bad CRC here), resynchronising on the sync bytes; after `retries` it raises a one-line LinkError."""

    def __init__(self, port, timeout: float = 2.0, retries: int = 3, log: Callable[[str], None] | None = None):
        self.port, self.timeout, self.retries = port, timeout, retries
        self.seq = 0
        self.stats = LinkStats()
        self.log = log or (lambda _msg: None)

    # -- raw frames
    def send_frame(self, type_: int, payload: bytes = b"", seq: int | None = None) -> int:
        seq = self._next_seq() if seq is None else seq
        self.write_raw(encode_frame(type_, seq, payload))
        self.stats.sent += 1
        return seq

    def write_raw(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"the link closed ({e})", "the device stopped or was unplugged") from None

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def _read_exact(self, n: int, deadline: float) -> bytes | None:
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.port.timeout = left
            try:
                chunk = self.port.read(n - len(buf))
            except (serial.SerialException, OSError) as e:
                raise LinkError(f"the link closed ({e})", "the device stopped or was unplugged; for QEMU see "
                                "build/qemu.log in the project") from None
            if not chunk:
                return None
            buf += chunk
        return buf

    def read_frame(self, timeout: float | None = None) -> Frame | None:
        """The next valid frame, skipping garbage and frames with a bad CRC; None when `timeout` passes."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            b = self._read_exact(1, deadline)
            if b is None:
                return None
            if b != SYNC[:1]:
                self.stats.skipped_bytes += 1
                continue
            b2 = self._read_exact(1, deadline)
            if b2 is None:
                return None
            if b2 != SYNC[1:]:
                self.stats.skipped_bytes += 1 + (b2 != SYNC[:1])
                continue
            head = self._read_exact(HEADER.size, deadline)
            if head is None:
                return None
            type_, seq, length = HEADER.unpack(head)
            if length > MAX_PAYLOAD:
                self.stats.skipped_bytes += 2 + HEADER.size
                continue
            rest = self._read_exact(length + CRC.size, deadline)
            if rest is None:
                return None
            body = head + rest[:length]
            if CRC.unpack(rest[length:])[0] != crc32(body):
                self.stats.skipped_bytes += FRAME_OVERHEAD + length
                continue
            return Frame(type_, seq, rest[:length])

    def drain(self, quiet: float = 0.2) -> list[Frame]:
        """Read frames until the line is quiet for `quiet` seconds (after fuzzing, or to resynchronise)."""
        frames = []
        while (f := self.read_frame(quiet)) is not None:
            frames.append(f)
        return frames

    # -- requests
    def request(self, name: str, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send request `name`, return the reply payload; device refusals raise RpcError, a dead link LinkError."""
        msg = BY_NAME[name]
        seq = self._next_seq()
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                self.log(f"rpc: retry {attempt} of {name}")
            self.send_frame(msg.code, payload, seq)
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            while True:
                frame = self.read_frame(max(0.0, deadline - time.monotonic()))
                if frame is None:
                    self.stats.timeouts += 1
                    break                                           # silent: retry
                if frame.is_error:
                    self.stats.error_frames += 1
                    err, req_type, detail = frame.error()
                    if err == "FAULT":
                        raise RpcError(f"the firmware faulted during {name} (CFSR 0x{detail:08x}) and stopped",
                                       _ERROR_FIXES["FAULT"])
                    if err in LINK_ERRORS:
                        if frame.seq == seq and err != "GARBAGE":
                            break                                   # our request was damaged: resend
                        # damage elsewhere on the line, perhaps our frame's sync: wait briefly, then resend
                        deadline = min(deadline, time.monotonic() + 4 * INTER_BYTE_TIMEOUT_MS * 1e-3)
                        continue
                    if frame.seq == seq:
                        raise RpcError(f"device refused {name}: {err} (detail {detail})",
                                       _ERROR_FIXES.get(err, "see docs/session.md"))
                    self.stats.stale_frames += 1
                    continue
                if frame.seq == seq and frame.type == msg.code | REPLY:
                    return frame.payload
                self.stats.stale_frames += 1                        # a late reply to an earlier request
            # let a half-received frame time out on the device before resending
            self.drain(quiet=INTER_BYTE_TIMEOUT_MS * 2e-3)
        raise LinkError(f"no valid reply to {name} after {self.retries + 1} attempts "
                        f"({self.stats.timeouts} timeouts, {self.stats.error_frames} error frames)",
                        "check that the firmware runs and the port/baud are right (python -m trm_tvm.session --help)")

    # -- typed calls
    def ping(self, data: bytes = b"") -> bytes:
        return self.request("PING", data)

    def info(self) -> dict[str, str]:
        text = self.request("INFO").decode("utf-8", errors="replace")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def load_input(self, data: bytes, chunk: int = MAX_PAYLOAD - 4) -> None:
        for off in range(0, len(data), chunk):
            part = data[off:off + chunk]
            loaded = struct.unpack("<I", self.request("LOAD_INPUT", struct.pack("<I", off) + part))[0]
            if loaded < off + len(part):
                raise RpcError(f"LOAD_INPUT acknowledged {loaded} bytes, expected {off + len(part)}",
                               "rebuild and reflash the firmware")

    def run(self, q_threshold: int, max_steps: int, paint_stack: bool = True, timeout: float = 120.0,
            log_steps: bool = False) -> dict:
        flags = (RUN_FLAG_PAINT_STACK if paint_stack else 0) | (RUN_FLAG_LOG_STEPS if log_steps else 0)
        reply = self.request("RUN", struct.pack("<iBB", q_threshold, max_steps, flags), timeout=timeout)
        status, steps, pred, q, ticks = struct.unpack("<iBxHhQ", reply)
        return {"status": status, "steps": steps, "pred": pred, "q": q, "ticks": ticks}

    def read_output(self, count: int) -> np.ndarray:
        out, per = [], (MAX_PAYLOAD // 2)
        for off in range(0, count, per):
            n = min(per, count - off)
            out.append(np.frombuffer(self.request("READ_OUTPUT", struct.pack("<HH", off, n)), dtype="<i2"))
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def read_stats(self) -> dict:
        p = self.request("READ_STATS")
        fixed = struct.Struct(BY_NAME["READ_STATS"].reply.rstrip("+"))
        counter, n, steps, peak, model_stack, stack_size, rx_errors, total = fixed.unpack_from(p)
        phases = [struct.unpack_from("<IQ", p, fixed.size + 12 * i) for i in range(n)]
        return {"counter": COUNTERS.get(counter, str(counter)), "steps": steps, "peak_stack_bytes": peak,
                "model_stack_bytes": model_stack, "stack_bytes": stack_size, "rx_errors": rx_errors,
                "total_ticks": total, "phases": [{"calls": c, "ticks": t} for c, t in phases]}

    def read_steps(self, count: int) -> list[dict]:
        """Every supervision step of the last RUN (made with log_steps): q, cumulative phase ticks, `count` logits."""
        out: list[dict] = []
        fixed = struct.calcsize("<BBh")
        while True:
            logits = []
            for off in range(0, max(count, 1), MAX_PAYLOAD // 2 - 16):
                n = min(MAX_PAYLOAD // 2 - 16, count - off)
                p = self.request("READ_STEPS", struct.pack("<BHH", len(out), off, n))
                logged, n_ph, q = struct.unpack_from("<BBh", p)
                ticks = list(struct.unpack_from(f"<{n_ph}Q", p, fixed))
                logits.append(np.frombuffer(p, dtype="<i2", offset=fixed + 8 * n_ph))
            out.append({"q": q, "phase_ticks": ticks, "logits": np.concatenate(logits)})
            if len(out) >= logged:
                return out

    def read_layers(self) -> list[dict]:
        """Per kernel call site (op_index of the executor) of the last RUN: calls and counter ticks."""
        out: list[dict] = []
        while True:
            p = self.request("READ_LAYERS", struct.pack("<H", len(out)))
            total, n = struct.unpack_from("<HH", p)
            out += [dict(zip(("calls", "ticks"), struct.unpack_from("<IQ", p, 4 + 12 * i))) for i in range(n)]
            if len(out) >= total or n == 0:
                return out

    def kernels(self) -> list[tuple[str, bool]]:
        entries: list[tuple[str, bool]] = []
        while True:
            p = self.request("KERNELS", struct.pack("<H", len(entries)))
            total = struct.unpack_from("<H", p)[0]
            for line in p[2:].decode().splitlines():
                _idx, name, present = line.split()
                entries.append((name, present == "1"))
            if len(entries) >= total or not p[2:]:
                return entries

    def self_test(self, kernel: int, batches: int, seed: int, params: list[int], timeout: float = 60.0
                  ) -> list[tuple[int, int]]:
        """[(crc32, ticks)] per batch."""
        req = struct.pack("<HHI6i", kernel, batches, seed, *(list(params) + [0] * (6 - len(params))))
        p = self.request("SELF_TEST", req, timeout=timeout)
        k, n = struct.unpack_from("<HH", p)
        return [struct.unpack_from("<IQ", p, 4 + 12 * i) for i in range(n)]

    def self_test_data(self, kernel: int, batch: int, seed: int, params: list[int], nbytes: int) -> bytes:
        out = b""
        while len(out) < nbytes:
            n = min(MAX_PAYLOAD, nbytes - len(out))
            out += self.request("SELF_TEST_DATA", struct.pack("<HHI6iIH", kernel, batch, seed,
                                                              *(list(params) + [0] * (6 - len(params))),
                                                              len(out), n))
        return out


_ERROR_FIXES = {
    "NO_INPUT": "load the whole input (LOAD_INPUT) before RUN",
    "MODEL": "the model library returned an error code: check the build directory",
    "ABSENT": "the kernel is not linked into this firmware: rebuild with its back end",
    "RANGE": "a request asked beyond a buffer: check input/output sizes against INFO",
    "FAULT": "debug the firmware (QEMU: add -d guest_errors,int; the fault address is in build/qemu.log)",
}
