"""The real firmware on QEMU through the project API: inferences bit-exact against the golden model, kernel
self-tests, device-side error frames, 1,000 fuzzed frames (TRM_FUZZ_FRAMES for more) with no hang and every one
reported, the tty transport through a pty, resumable sessions, and a real compiled model on all four boards."""
import json
import os
import pty
import socket
import sys
import threading
import time
import tty
from pathlib import Path

import numpy as np
import pytest

from trm_tvm import project as proj
from trm_tvm import rpc
from trm_tvm.errors import UserError
from trm_tvm.session import Session, main, run_selftests, run_session

sys.path.insert(0, str(Path(__file__).parent))
import stub_model  # noqa: E402

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("c1-session")]   # one worker: QEMU runs one at a time
BOARDS = ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]


@pytest.fixture(scope="module")
def stub_project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stub")
    bd = stub_model.make_build_dir(tmp / "build", "cortex-m4", handwritten=("dsp",))
    p = proj.generate_project(bd, "cortex-m4", tmp / "proj")
    proj.build(p)
    return p


def twin(inputs, q_thr, max_steps):
    rs = [stub_model.golden(x, q_thr, max_steps) for x in inputs]
    return {k: np.array([r[k] for r in rs]) for k in ("logits", "pred", "steps", "q")}


def test_stub_inferences_bit_exact_with_halting(stub_project, tmp_path):
    out = tmp_path / "s.json"
    r = run_session(stub_project, limit=3, q_threshold=0, golden=twin, golden_source="stub twin", out=out)
    s = r["summary"]
    assert s["inferences"] == 3 and s["all_bit_exact"] and s["bit_exact"] == 3
    assert {i["steps"] for i in r["inferences"]} <= {1, 2, 3, 4}
    inf = r["inferences"][0]
    assert inf["instructions"]["provenance"] == "emulated" and inf["latency"]["provenance"] == "modeled"
    assert inf["instructions"]["value"] == inf["counter_ticks"]["value"] * 5          # an386 at shift=3
    assert inf["phases"]["net"]["calls"] == inf["steps"] and inf["phases"]["prologue"]["calls"] == 1
    assert 200 < inf["model_stack"]["value"] < inf["peak_stack"]["value"] < 16384    # stub keeps 256 B on stack
    assert json.loads(out.read_text())["summary"]["all_bit_exact"]


def test_wrong_golden_is_reported_as_a_mismatch(stub_project):
    def off_by_one(inputs, q, k):
        g = twin(inputs, q, k)
        g["logits"] = g["logits"] + np.int16(1)
        return g
    r = run_session(stub_project, limit=1, fixed_steps=2, golden=off_by_one)
    inf = r["inferences"][0]
    assert inf["bit_exact"] is False and "logits differ at 5 positions" in inf["mismatch"][0]
    assert not r["summary"]["all_bit_exact"]


def test_session_resumes_after_an_interruption(stub_project, tmp_path):
    out = tmp_path / "s.json"
    run_session(stub_project, limit=3, fixed_steps=1, golden=twin, out=out)
    saved = json.loads(out.read_text())
    saved["inferences"] = saved["inferences"][:1]
    saved["inferences"][0]["host_seconds"] = -1.0               # marks the record kept from the first run
    out.write_text(json.dumps(saved))
    r = run_session(stub_project, limit=3, fixed_steps=1, golden=twin, out=out)
    assert [i["index"] for i in r["inferences"]] == [0, 1, 2] and r["inferences"][0]["host_seconds"] == -1.0
    assert r["summary"]["all_bit_exact"]


def test_kernel_self_tests_bit_exact(stub_project):
    r = run_selftests(stub_project, batches=3, seed=7)
    by = {k["kernel"]: k for k in r["kernels"]}
    assert r["summary"]["all_bit_exact"] and r["summary"]["kernels"] == 15
    assert by["trm_linear_s8_dsp"]["present"] and not by["trm_linear_s8_mve"]["present"]
    assert by["trm_linear_s8_dsp"]["passed"] == 3 and by["trm_linear_s8_dsp"]["instructions"]["provenance"] == "emulated"
    # dsp beats the plain reference on the same shapes
    assert by["trm_linear_s8_dsp"]["instructions"]["value"] < by["trm_linear_s8_ref"]["instructions"]["value"]


@pytest.fixture(scope="module")
def live(stub_project):
    with Session(stub_project) as s:
        yield s


def _expect_error(client, name, payload, err):
    with pytest.raises(rpc.RpcError, match=err):
        client.request(name, payload)


def test_device_refusals_come_back_as_error_frames(live):
    c = live.client
    _expect_error(c, "RUN", b"\x00" * 6, "NO_INPUT")                        # nothing loaded yet
    _expect_error(c, "LOAD_INPUT", (1499).to_bytes(4, "little") + b"ab", "RANGE")
    _expect_error(c, "READ_OUTPUT", bytes([0, 0, 6, 0]), "RANGE")           # 6 > TRM_OUTPUT_LEN
    _expect_error(c, "INFO", b"x", "BAD_PAYLOAD")
    _expect_error(c, "SELF_TEST", bytes(32).replace(b"\x00\x00", b"\xff\x00", 1), "RANGE")
    with pytest.raises(rpc.RpcError, match="UNKNOWN_TYPE"):
        seq = c.send_frame(0x42, b"")
        f = c.read_frame(2.0)
        assert f.seq == seq
        raise rpc.RpcError(f"device refused: {f.error()[0]}")
    c.load_input(bytes(1500))
    _expect_error(c, "RUN", (0).to_bytes(4, "little") + bytes([9, 0]), "RANGE")  # max_steps > N_sup
    assert c.ping(b"still alive") == b"still alive"


def _mutate(frame: bytes, rng) -> bytes:
    f = bytearray(frame)
    kind = rng.integers(0, 8)
    if kind == 0:                                                # flip 1-3 bits
        for i in rng.choice(len(f), size=min(len(f), int(rng.integers(1, 4))), replace=False):
            f[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:                                              # truncate
        f = f[:int(rng.integers(1, len(f)))]
    elif kind == 2:                                              # drop a byte
        del f[int(rng.integers(0, len(f)))]
    elif kind == 3:                                              # insert a byte
        f.insert(int(rng.integers(0, len(f) + 1)), int(rng.integers(0, 256)))
    elif kind == 4:                                              # random length field
        f[4:6] = int(rng.integers(0, 65536)).to_bytes(2, "little")
    elif kind == 5:                                              # corrupt the CRC
        f[-1 - int(rng.integers(0, 4))] ^= 0xFF
    elif kind == 6:                                              # line noise
        f = bytearray(rng.integers(0, 256, int(rng.integers(1, 40))).astype(np.uint8).tobytes())
    else:                                                        # a damaged sync
        f[int(rng.integers(0, 2))] ^= 1 << int(rng.integers(0, 8))
    return bytes(f)


def _frames_in(data: bytes) -> int:
    """Valid frames inside `data` (a mutation can leave one intact, e.g. noise inserted before the sync)."""
    n = 0
    for i in range(len(data) - rpc.FRAME_OVERHEAD + 1):
        if data[i:i + 2] == rpc.SYNC:
            length = int.from_bytes(data[i + 4:i + 6], "little")
            try:
                rpc.decode_frame(data[i:i + rpc.FRAME_OVERHEAD + length])
                n += 1
            except ValueError:
                pass
    return n


def _random_valid_frame(c, rng) -> tuple[bytes, int]:
    """A well-formed frame of a random type (0..15) with a random payload: the device must answer it once."""
    t = int(rng.integers(0, 16))
    payload = rng.integers(0, 256, int(rng.integers(0, 48))).astype(np.uint8).tobytes()
    if t == rpc.BY_NAME["SELF_TEST"].code:                      # keep random self-tests short: few batches
        payload = bytes(2) + bytes([int(rng.integers(0, 4)), 0]) + payload[4:]
    seq = c._next_seq()
    return rpc.encode_frame(t, seq, payload), seq


def test_fuzzed_frames_never_hang_and_are_all_reported(live):
    n = int(os.environ.get("TRM_FUZZ_FRAMES", "1000"))
    rng = np.random.default_rng(2026)
    c = live.client
    requests = [(rpc.BY_NAME["PING"].code, None), (rpc.BY_NAME["INFO"].code, b""),
                (rpc.BY_NAME["READ_STATS"].code, b""), (rpc.BY_NAME["KERNELS"].code, b"\x00\x00")]
    unreported, t0 = [], time.monotonic()
    for case in range(n):
        if case % 10 == 9:                                      # every 10th: valid framing, random content
            frame, seq = _random_valid_frame(c, rng)
            c.write_raw(frame)
            while (f := c.read_frame(5.0)) is not None and f.seq != seq:
                pass
            assert f is not None, f"case {case}: no answer to a well-formed frame {frame.hex()}"
            assert f.type in (frame[2] | rpc.REPLY, rpc.ERROR)
            continue
        code, payload = requests[int(rng.integers(0, len(requests)))]
        if payload is None:
            payload = rng.integers(0, 256, int(rng.integers(0, 64))).astype(np.uint8).tobytes()
        bad = _mutate(rpc.encode_frame(code, 200, payload), rng)
        c.write_raw(bad)
        errors, replies = [], 0
        deadline = time.monotonic() + 1.0
        while not errors and time.monotonic() < deadline:
            f = c.read_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                break
            if f.is_error:
                errors.append(f.error()[0])
            elif (f.type, f.seq) == (code | rpc.REPLY, 200) and (code != 1 or f.payload == payload):
                replies += 1                  # (other frames: late duplicates of an earlier ping, which retried)
        intact = _frames_in(bad)
        if not errors and not (intact and replies == intact):
            unreported.append((case, bad.hex()))
        assert replies <= intact, f"case {case}: a reply to a damaged frame: {bad.hex()}"
        token = case.to_bytes(4, "little")
        assert c.ping(token) == token, f"case {case}: link did not recover"   # no hang, resynchronised
    assert not unreported, f"{len(unreported)} of {n} damaged frames were not reported: {unreported[:3]}"
    assert time.monotonic() - t0 < n * 0.5
    stats = c.read_stats()
    assert stats["rx_errors"] >= n * 0.8                              # the firmware counted them too


def test_tty_transport_through_a_pty_bridged_to_qemu(stub_project):
    """The hardware path (a tty) against the real firmware: a pty whose other end is QEMU's UART socket."""
    dev = proj.flash(stub_project)
    master, slave = pty.openpty()
    tty.setraw(slave)
    sock = None
    try:
        for _ in range(100):
            try:
                sock = socket.create_connection(tuple(dev.url[len("socket://"):].split(":")), timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        stop = threading.Event()

        def pump(src, dst):
            while not stop.is_set():
                try:
                    data = src()
                except (OSError, socket.timeout):
                    continue
                if not data:
                    return
                dst(data)
        sock.settimeout(0.1)
        threading.Thread(target=pump, args=(lambda: sock.recv(4096), lambda d: os.write(master, d)), daemon=True).start()

        def read_master():
            import select
            if select.select([master], [], [], 0.1)[0]:
                return os.read(master, 4096)
            raise OSError
        threading.Thread(target=pump, args=(read_master, sock.sendall), daemon=True).start()
        port = proj.open_transport(os.ttyname(slave))
        try:
            c = rpc.RpcClient(port, timeout=3)
            assert c.info()["build_id"] == stub_project.build_id
            x = np.arange(1500).astype(np.int8)
            c.load_input(x.tobytes())
            r = c.run(2**31 - 1, 3)
            want = stub_model.golden(x, 2**31 - 1, 3)
            assert r["steps"] == 3 and np.array_equal(c.read_output(5), want["logits"])
        finally:
            proj.close_transport(port)
            stop.set()
    finally:
        if sock:
            sock.close()
        os.close(master)
        os.close(slave)
        proj.close_transport(None, dev)


def test_session_cli_on_a_silent_port_is_one_line(stub_project, tmp_path, capsys):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        rc = main(["--project", str(stub_project.dir), "--port", f"socket://127.0.0.1:{srv.getsockname()[1]}",
                   "--timeout", "0.3", "--json", str(tmp_path / "s.json")])
    finally:
        srv.close()
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no valid reply to INFO" in err


def test_session_refuses_a_device_running_another_build(stub_project, tmp_path):
    other = proj.generate_project(stub_model.make_build_dir(tmp_path / "b", "cortex-m4"), "cortex-m4", tmp_path / "p")
    proj.build(other)
    dev = proj.flash(other)
    try:
        with pytest.raises(UserError, match=f"the device runs cortex-m4 build {other.build_id}"):
            Session(stub_project, port=dev.url)
    finally:
        proj.close_transport(None, dev)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from trm_tvm.quant.fixtures import random_artifact
    art, _, _ = random_artifact(hidden=16, tokens=8)
    path = tmp_path_factory.mktemp("art") / "a.npz"
    art.save(path)
    return path


@pytest.mark.parametrize("board", BOARDS)
def test_compiled_model_and_kernel_self_tests_on_every_emulated_board(board, artifact, tmp_path):
    """The full chain: artifact -> trm_tvm.compile (hand-written kernels: dsp, or mve on the M55) -> project ->
    QEMU -> session checked by the golden model; then the same firmware's kernel self-tests."""
    from trm_tvm.compile.driver import compile_artifact
    compile_artifact(artifact, board, "handwritten", tmp_path / "build")
    p = proj.generate_project(tmp_path / "build", board, tmp_path / "proj")
    r = run_session(p, limit=2, seed=1, out=tmp_path / "s.json")
    assert r["golden"].startswith("trm_tvm.quant.golden") and r["summary"]["all_bit_exact"], r["inferences"][0]
    assert r["summary"]["checked"] == 2 and r["device"]["info"]["board"] == board
    st = run_selftests(p, batches=2)
    present = {k["kernel"] for k in st["kernels"] if k["present"]}
    fast = "trm_linear_s8_mve" if board == "cortex-m55" else "trm_linear_s8_dsp"
    assert st["summary"]["all_bit_exact"] and {fast, "trm_linear_s8_ref", "trm_rmsnorm_s32_ref"} <= present


def test_timing_model_and_memory_in_the_session_result(artifact, tmp_path):
    """--timing-model: the QEMU plugin's instructions agree with the firmware's SysTick count, and the modeled
    cycles, latency and energy come with their sources; the memory report sums match the ELF."""
    from trm_tvm.compile.driver import compile_artifact
    compile_artifact(artifact, "cortex-m4", "reference", tmp_path / "build")
    p = proj.generate_project(tmp_path / "build", "cortex-m4", tmp_path / "proj")
    r = run_session(p, limit=1, fixed_steps=2, timing_model=True)
    inf = r["inferences"][0]
    tm = inf["timing_model"]
    assert inf["bit_exact"] and tm["cycles"]["provenance"] == "modeled" and tm["energy"]["unit"] == "J"
    assert "boards/cortex-m4.yaml timing_model" in tm["cycles"]["source"]
    assert abs(tm["instructions"]["value"] - inf["instructions"]["value"]) <= 5 * 40     # +-1 tick per phase call
    assert tm["cycles"]["value"] > tm["instructions"]["value"]                           # loads, branches, waits
    mem = r["memory"]
    assert mem["flash"]["value"] == mem["text"]["value"] + mem["rodata"]["value"] + mem["data"]["value"]
    assert mem["peak_stack"]["value"] == inf["peak_stack"]["value"] and mem["flash"]["provenance"] == "measured"


def test_layer_profile_of_a_profiled_build(artifact, tmp_path):
    """compile --profile-layers: the firmware times every kernel call site; the sites add up to the net phases."""
    from trm_tvm.compile.driver import compile_artifact
    compile_artifact(artifact, "cortex-m4", "reference", tmp_path / "build", profile_layers=True)
    p = proj.generate_project(tmp_path / "build", "cortex-m4", tmp_path / "proj")
    r = run_session(p, limit=1, fixed_steps=1)
    inf = r["inferences"][0]
    layers = inf["layers"]
    assert inf["bit_exact"] and len(layers) > 10 and all(l["instructions"]["provenance"] == "emulated" for l in layers)
    total = sum(l["instructions"]["value"] for l in layers)
    assert 0.5 * inf["instructions"]["value"] < total < inf["instructions"]["value"]


def test_a_firmware_fault_is_one_line_and_stops_the_emulator(stub_project):
    """The fault handler reports over the link (FAULT + CFSR) and exits QEMU; the host says so in one line."""
    with Session(stub_project) as s:
        x = np.zeros(1500, np.int8)
        x[:3] = [127, -128, 127]                               # the stub model's deliberate bus fault
        s.client.load_input(x.tobytes())
        with pytest.raises(rpc.RpcError) as e:
            s.client.run(0, 1)
        assert "the firmware faulted during RUN (CFSR 0x" in e.value.line() and "\n" not in e.value.line()
        assert s.device.process.wait(timeout=10) == 3                      # semihosting exit code of the handler
        with pytest.raises(rpc.LinkError, match="the link closed"):
            s.client.ping(b"x")


def test_token_input_with_per_token_logits_over_several_frames(tmp_path):
    """Sudoku-shaped model: uint8 digits in, 81 x 10 int16 logits out (1620 bytes: READ_OUTPUT in chunks)."""
    from trm_tvm.compile.driver import compile_artifact
    from trm_tvm.quant.fixtures import random_artifact
    art, _, _ = random_artifact(hidden=16, tokens=81, classes=10, input_kind="tokens")
    art.save(tmp_path / "tok.npz")
    compile_artifact(tmp_path / "tok.npz", "cortex-m4", "reference", tmp_path / "build")
    p = proj.generate_project(tmp_path / "build", "cortex-m4", tmp_path / "proj")
    r = run_session(p, limit=2)
    assert r["summary"]["all_bit_exact"] and len(r["inferences"][0]["logits"]) == 810
