"""A board farm for the tuner: board hosts serve our build-and-measure function over TVM RPC behind a tracker.

    python -m tvm.exec.rpc_tracker --host 127.0.0.1 --port 9190                    # needs tornado
    python -m trm_tvm.tune worker --board cortex-m4 --tracker 127.0.0.1:9190       # one per board (host)
    python -m trm_tvm.tune --board cortex-m4 --artifact ... --tracker 127.0.0.1:9190

A worker is a `tvm.rpc.Server` registered with the tracker under the board's key; its init callback registers the
global function `trm.tune.build_and_measure` (batch JSON in, results JSON out: trm_tvm.tune.firmware), which
cross-compiles the batch firmware on the board host and measures it on the board attached to it (QEMU here).
The tuner's runner splits each batch over the free workers of its key and runs the parts in parallel.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trm_tvm.errors import UserError

FUNC = "trm.tune.build_and_measure"
CACHE_ENV = "TRM_TUNE_WORKER_CACHE"


def parse_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"tracker address {addr!r} is not host:port", "e.g. --tracker 127.0.0.1:9190")
    return host, int(port)


def build_and_measure_json(batch_json: str) -> str:
    """The registered function: one batch built and measured on this host."""
    from trm_tvm.tune.firmware import Batch, build_and_measure

    cache = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "trm-tune-worker")
    with tempfile.TemporaryDirectory(prefix="trm-tune-batch-") as work:
        return json.dumps(build_and_measure(Batch.from_json(batch_json), Path(work), cache))


def register() -> None:
    """Server init callback (runs in the RPC server process): make our function callable remotely."""
    import tvm

    import trm_tvm.measure.timing  # noqa: F401  imported once here, not in every forked RPC session
    import trm_tvm.session  # noqa: F401
    import trm_tvm.tune.firmware  # noqa: F401

    tvm.register_global_func(FUNC, build_and_measure_json, override=True)


def serve(board: str, tracker: str, key: str, host: str = "127.0.0.1", port: int = 9200):
    """Start one worker (returns the tvm.rpc.Server; it serves until terminated)."""
    import tvm.rpc

    from trm_tvm.boards import load_board

    load_board(board)
    os.environ.setdefault(CACHE_ENV, str(Path(tempfile.gettempdir()) / f"trm-tune-worker-{os.getpid()}"))
    return tvm.rpc.Server(host=host, port=port, port_end=port + 100, tracker_addr=parse_addr(tracker), key=key,
                          server_init_callback=register, silent=True)


def worker_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m trm_tvm.tune worker", description="a board host for the tuner")
    ap.add_argument("--board", required=True)
    ap.add_argument("--tracker", required=True)
    ap.add_argument("--key")
    ap.add_argument("--port", type=int, default=9200)
    a = ap.parse_args(argv)
    server = serve(a.board, a.tracker, a.key or a.board, port=a.port)
    print(f"worker for {a.board} on port {server.port}, registered with tracker {a.tracker} as {a.key or a.board}",
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))      # so the server process is stopped with us
    try:
        while True:
            time.sleep(3600)
    finally:
        stop(server)


def free_workers(tracker, key: str) -> int:
    return int(tracker.summary().get("queue_info", {}).get(key, {}).get("free", 0))


def stop(server) -> None:
    """Stop a tvm.rpc.Server or Tracker: their terminate() needs psutil (not installed) to reap children first;
    an idle server has none, so its process is killed directly."""
    try:
        server.terminate()
    except ImportError:
        server.proc._proc.kill()          # noqa: SLF001  the PopenWorker's process (tvm.support.popen_pool)


def tracker_measure(addr: str, key: str, timeout: float = 600.0):
    """A `remote` for trm_tvm.tune.search.Measurer: split each batch over the key's workers, in parallel."""
    import tvm.rpc

    from trm_tvm.tune.firmware import Batch

    host, port = parse_addr(addr)
    try:
        tracker = tvm.rpc.connect_tracker(host, port)
    except Exception as e:    # noqa: BLE001
        raise UserError(f"cannot reach the RPC tracker at {addr} ({e})",
                        "start it: python -m tvm.exec.rpc_tracker --port <port>") from None

    def remote(batch: Batch) -> list[dict]:
        n = max(1, min(free_workers(tracker, key), len(batch.candidates)))   # busy farm: queue on one
        parts = [Batch(batch.board, batch.candidates[i::n], batch.c_source) for i in range(n)]
        # sessions are requested one by one (the tracker connection is not thread-safe); the calls then run in
        # parallel, one thread per board host
        funcs = [tracker.request(key, priority=1, session_timeout=timeout).get_function(FUNC) for _ in parts]
        with ThreadPoolExecutor(n) as pool:
            outs = list(pool.map(lambda fp: json.loads(fp[0](fp[1].to_json())), zip(funcs, parts)))
        by_id = {c.id: r for p, out in zip(parts, outs) for c, r in zip(p.candidates, out)}
        return [by_id[c.id] for c in batch.candidates]

    remote.workers = lambda: free_workers(tracker, key)
    return remote
