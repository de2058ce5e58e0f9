"""Autotuning of the tvm back end's kernels with TVM's meta_schedule, measured on the board (docs/tuning.md).

    python -m trm_tvm.tune --board cortex-m4 --artifact a.npz [--trials N] [--budget-min M]

space.py (tasks and knob spaces), firmware.py (one kernel-benchmark firmware per batch: build, self-test,
cycles), search.py (meta_schedule Builder/Runner/callback), database.py (schedules/<board>/, corrupted entries
skipped, `tuned` knobs for compile), farm.py (TVM RPC board hosts behind a tracker), run.py (one tuning run).
"""
