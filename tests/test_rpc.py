"""RPC frames, the shared PRNG and the host client's timeouts, retries and resynchronisation (no emulator)."""
import shutil
import socket
import struct
import subprocess
import threading
import time

import numpy as np
import pytest

from trm_tvm import rpc


def test_frame_round_trip_and_crc():
    rng = np.random.default_rng(0)
    for _ in range(200):
        payload = rng.integers(0, 256, rng.integers(0, rpc.MAX_PAYLOAD + 1)).astype(np.uint8).tobytes()
        t, seq = int(rng.integers(0, 256)), int(rng.integers(0, 256))
        frame = rpc.encode_frame(t, seq, payload)
        assert len(frame) == rpc.FRAME_OVERHEAD + len(payload)
        f = rpc.decode_frame(frame)
        assert (f.type, f.seq, f.payload) == (t, seq, payload)
        i = int(rng.integers(2, len(frame)))            # any flipped bit after the sync is caught
        bad = bytearray(frame)
        bad[i] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(ValueError):
            rpc.decode_frame(bytes(bad))


def test_crc_is_ieee_crc32():
    # the standard check value of CRC-32/ISO-HDLC, which the firmware's bitwise loop implements
    assert rpc.crc32(b"123456789") == 0xCBF43926


def test_oversized_payload_is_refused():
    with pytest.raises(ValueError):
        rpc.encode_frame(1, 0, bytes(rpc.MAX_PAYLOAD + 1))


def test_c_header_matches_the_python_layouts():
    h = rpc.c_header()
    for m in rpc.MESSAGES:
        assert f"#define TRM_RPC_{m.name} 0x{m.code:02X}" in h
        fixed = m.reply.rstrip("+")
        assert f"#define TRM_RPC_{m.name}_REPLY_BYTES {struct.calcsize(fixed) if fixed else 0}" in h
    for code, (name, _) in rpc.ERRORS.items():
        assert f"#define TRM_E_{name} {code} " in h


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
def test_generated_c_prng_matches_python(tmp_path):
    (tmp_path / "trm_rpc.h").write_text(rpc.c_header())
    (tmp_path / "p.c").write_text(
        '#include <stdio.h>\n#include "trm_rpc.h"\nint main(void) {\n'
        '  for (uint32_t i = 0; i < 64; i++) printf("%u %lld\\n", trm_prng_u32(trm_prng_batch_seed(77u, 3u), i),'
        ' (long long)trm_prng_range(5u, i, -128, 127));\n  return 0;\n}\n')
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-o", str(tmp_path / "p"), str(tmp_path / "p.c")],
                   check=True)
    out = subprocess.run([str(tmp_path / "p")], capture_output=True, text=True, check=True).stdout.split()
    c_u32, c_range = [int(v) for v in out[0::2]], [int(v) for v in out[1::2]]
    assert c_u32 == rpc.prng_u32(rpc.batch_seed(77, 3), 0, 64).tolist()
    assert c_range == rpc.prng_range(5, 0, 64, -128, 127).tolist()
    assert len(set(c_u32)) == 64


class FakePort:
    """pyserial-like: read() serves scripted bytes; `respond` maps each written frame to bytes to serve."""

    def __init__(self, respond=None):
        self.buf, self.written, self.timeout, self.respond = b"", [], 1.0, respond

    def write(self, data):
        self.written.append(bytes(data))
        if self.respond:
            self.buf += self.respond(rpc.decode_frame(bytes(data)), len(self.written))

    def flush(self):
        pass

    def read(self, n):
        if not self.buf:
            time.sleep(min(self.timeout, 0.01))
            return b""
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def test_silent_link_times_out_after_the_retries():
    port = FakePort()
    client = rpc.RpcClient(port, timeout=0.1, retries=2)
    t0 = time.monotonic()
    with pytest.raises(rpc.LinkError, match="no valid reply to PING after 3 attempts"):
        client.ping(b"x")
    assert len(port.written) == 3 and client.stats.timeouts == 3
    assert time.monotonic() - t0 < 2.0


def test_client_skips_garbage_and_damaged_replies():
    def respond(req, n):
        reply = rpc.encode_frame(req.type | rpc.REPLY, req.seq, req.payload)
        if n == 1:                        # first attempt: noise, then a reply with a broken CRC
            return b"\x00\xA5\x13garbage" + reply[:-1] + bytes([reply[-1] ^ 0xFF])
        return b"\xA5\xA5" + reply
    client = rpc.RpcClient(FakePort(respond), timeout=0.2, retries=2)
    assert client.ping(b"hello") == b"hello"
    assert client.stats.retries == 1 and client.stats.skipped_bytes > 10


def test_device_refusal_is_one_line_and_not_retried():
    def respond(req, n):
        return rpc.encode_frame(rpc.ERROR, req.seq, rpc.ERROR_REPLY.pack(rpc.ERROR_CODES["NO_INPUT"], req.type, 12))
    port = FakePort(respond)
    client = rpc.RpcClient(port, timeout=0.2)
    with pytest.raises(rpc.RpcError) as e:
        client.run(0, 1)
    assert "NO_INPUT" in e.value.line() and "\n" not in e.value.line() and len(port.written) == 1


def test_damaged_request_reported_by_device_is_resent():
    def respond(req, n):
        if n == 1:
            return rpc.encode_frame(rpc.ERROR, req.seq, rpc.ERROR_REPLY.pack(rpc.ERROR_CODES["BAD_CRC"], req.type, 0))
        return rpc.encode_frame(req.type | rpc.REPLY, req.seq, req.payload)
    client = rpc.RpcClient(FakePort(respond), timeout=0.5)
    assert client.ping(b"again") == b"again" and client.stats.retries == 1


def test_stale_reply_of_an_earlier_request_is_ignored():
    def respond(req, n):
        stale = rpc.encode_frame(req.type | rpc.REPLY, (req.seq - 1) & 0xFF, b"old")
        return stale + rpc.encode_frame(req.type | rpc.REPLY, req.seq, req.payload)
    client = rpc.RpcClient(FakePort(respond), timeout=0.5)
    assert client.ping(b"new") == b"new" and client.stats.stale_frames == 1


def test_silent_socket_peer_times_out():
    """A TCP peer that accepts and never answers (a hung emulator): LinkError, no hang."""
    import serial
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns = []
    threading.Thread(target=lambda: conns.append(srv.accept()), daemon=True).start()
    port = serial.serial_for_url(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=0.1)
    try:
        client = rpc.RpcClient(port, timeout=0.2, retries=1)
        t0 = time.monotonic()
        with pytest.raises(rpc.LinkError):
            client.info()
        assert time.monotonic() - t0 < 3.0
    finally:
        port.close()
        srv.close()
