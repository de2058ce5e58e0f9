"""The tuner's kernel-benchmark firmware is built around a cached tiny model; that cache must not outlive the
checkout that made it (a stale base would host today's candidates with yesterday's runtime and kernels)."""
from __future__ import annotations

from trm_tvm.compile import driver
from trm_tvm.tune import firmware


def test_a_base_build_from_an_older_checkout_is_never_reused(tmp_path, monkeypatch):
    today = driver.compile_artifact

    def older_checkout(*args, **kw):          # the same model compiled by a checkout whose kernels differ
        build = today(*args, **kw)
        kernels = args[3] / "model" / "trm_kernels_ref.c"
        kernels.write_bytes(kernels.read_bytes() + b"\n/* kernels of an older checkout */\n")
        return build

    monkeypatch.setattr(firmware, "_fresh_bases", {})
    monkeypatch.setattr(driver, "compile_artifact", older_checkout)
    old = firmware.base_build_dir("cortex-m4", tmp_path)
    assert b"older checkout" in (old / "model" / "trm_kernels_ref.c").read_bytes()

    # a later process (a new tune with the same --out) compiles again and gets its own base
    monkeypatch.setattr(firmware, "_fresh_bases", {})
    monkeypatch.setattr(driver, "compile_artifact", today)
    base = firmware.base_build_dir("cortex-m4", tmp_path)
    assert base != old and b"older checkout" not in (base / "model" / "trm_kernels_ref.c").read_bytes()
    assert base.name == f"base-cortex-m4-{driver.build_fingerprint(base)[:16]}"
    # the same process keeps it (threads of an RPC worker share it), and so does a third identical compile
    assert firmware.base_build_dir("cortex-m4", tmp_path) == base
    monkeypatch.setattr(firmware, "_fresh_bases", {})
    assert firmware.base_build_dir("cortex-m4", tmp_path) == base
    assert not list(tmp_path.glob(".base-*")), "private build directories are removed"
