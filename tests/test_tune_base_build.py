"""The tuner's kernel-benchmark firmware is built around a cached tiny model; that cache must not outlive the
checkout that made it (a stale base would host today's candidates with yesterday's runtime and kernels), and
must not be rebuilt by every forked RPC session of the same checkout."""
from __future__ import annotations

import pytest

from trm_tvm.compile import driver
from trm_tvm.tune import firmware


def test_a_base_build_from_an_older_checkout_is_never_reused(tmp_path, monkeypatch):
    today, today_sources = driver.compile_artifact, firmware.sources_fingerprint()

    def older_checkout(*args, **kw):          # the same model compiled by a checkout whose kernels differ
        build = today(*args, **kw)
        kernels = args[3] / "model" / "trm_kernels_ref.c"
        kernels.write_bytes(kernels.read_bytes() + b"\n/* kernels of an older checkout */\n")
        return build

    monkeypatch.setattr(firmware, "_fresh_bases", {})
    monkeypatch.setattr(firmware, "sources_fingerprint", lambda: "0" * 64)
    monkeypatch.setattr(driver, "compile_artifact", older_checkout)
    old = firmware.base_build_dir("cortex-m4", tmp_path)
    assert b"older checkout" in (old / "model" / "trm_kernels_ref.c").read_bytes()

    # a later process of today's checkout (a new tune with the same --out) compiles its own base
    monkeypatch.setattr(firmware, "_fresh_bases", {})
    monkeypatch.setattr(firmware, "sources_fingerprint", lambda: today_sources)
    monkeypatch.setattr(driver, "compile_artifact", today)
    base = firmware.base_build_dir("cortex-m4", tmp_path)
    assert base != old and b"older checkout" not in (base / "model" / "trm_kernels_ref.c").read_bytes()
    assert not list(tmp_path.glob(".base-*")), "private build directories are removed"

    # the same process (threads of an RPC worker) and other processes of this checkout (forked RPC sessions, one
    # per batch) reuse it without compiling again
    def no_compile(*args, **kw):
        pytest.fail("the base of this checkout was compiled again")

    monkeypatch.setattr(driver, "compile_artifact", no_compile)
    assert firmware.base_build_dir("cortex-m4", tmp_path) == base
    monkeypatch.setattr(firmware, "_fresh_bases", {})
    assert firmware.base_build_dir("cortex-m4", tmp_path) == base


def test_the_sources_fingerprint_sees_a_changed_template(tmp_path, monkeypatch):
    (tmp_path / "trm_tvm").mkdir()
    (tmp_path / "project_templates" / "kernels").mkdir(parents=True)
    (tmp_path / "trm_tvm" / "a.py").write_text("x = 1\n")
    kernel = tmp_path / "project_templates" / "kernels" / "k.c"
    kernel.write_text("int k;\n")
    monkeypatch.setattr(firmware, "REPO_ROOT", tmp_path)
    before = firmware.sources_fingerprint()
    kernel.write_text("int k2;\n")
    assert firmware.sources_fingerprint() != before
