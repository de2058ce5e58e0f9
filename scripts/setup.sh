#!/usr/bin/env bash
# Idempotent set-up: Debian toolchains/emulators when missing, then .venv with the package (editable).
# Safe to rerun; each step checks before it acts. Called by `make setup` (and so by `make demo` / `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="gcc qemu-system-arm qemu-system-misc gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.trm_tvm_setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (torch CPU wheel first, so nothing pulls a CUDA build)"
  log=.venv/setup-pip.log
  # torch is pinned for every later resolution: a dependency asking for 'torch' must not pull another build.
  echo "torch==2.13.0" > .venv/torch-pin.txt
  if ! { .venv/bin/pip install --upgrade pip && .venv/bin/pip install torch==2.13.0 &&
         .venv/bin/pip install -c .venv/torch-pin.txt -e ".[dev]"; } > "$log" 2>&1; then
    tail -n 20 "$log"
    echo "error: pip install failed (full log: $log) -- check the package registry is reachable and rerun make setup" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
