# trm-tvm: every target does its own set-up first (idempotent), so a fresh clone needs only `make demo` / `make test`.
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test fuzz report clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) -m trm_tvm.demo

# The whole suite, under 30 minutes on 2 cores. Slow studies are benchmarks / report commands, not tests.
test: setup
	@$(PY) -m pytest -q -n 2 --dist loadgroup -p no:cacheprovider tests

# The long protocol fuzz against the real firmware on QEMU (CI runs 1,000 frames inside `make test`).
fuzz: setup
	@TRM_FUZZ_FRAMES=10000 $(PY) -m pytest -q -p no:cacheprovider tests -k fuzz

# The technical report from the committed results (seconds); `$(PY) -m trm_tvm.report --regenerate` reruns them.
report: setup
	@$(PY) -m trm_tvm.report --out reports/report.md

clean:
	rm -rf build .pytest_cache
