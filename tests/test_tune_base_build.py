"""The tuner's kernel-benchmark firmware is built around a cached tiny model; that cache must not outlive the
checkout that made it (a stale base would host today's candidates with yesterday's runtime and kernels)."""
from __future__ import annotations

from trm_tvm.tune import firmware


def test_a_base_build_from_an_older_checkout_is_recompiled_once_per_process(tmp_path, monkeypatch):
    monkeypatch.setattr(firmware, "_fresh_bases", set())
    base = firmware.base_build_dir("cortex-m4", tmp_path)
    kernels = base / "model" / "trm_kernels_ref.c"
    fresh = kernels.read_bytes()
    kernels.write_bytes(fresh + b"\n/* kernels of an older checkout */\n")
    # the same process trusts the base it refreshed (threads of an RPC worker share it) ...
    assert firmware.base_build_dir("cortex-m4", tmp_path) == base
    assert kernels.read_bytes() != fresh
    # ... a new process (a later tune with the same --out) recompiles it
    monkeypatch.setattr(firmware, "_fresh_bases", set())
    assert firmware.base_build_dir("cortex-m4", tmp_path) == base
    assert kernels.read_bytes() == fresh
