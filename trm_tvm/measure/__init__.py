"""Measurement: emulated instruction counts and modeled cycles (timing), ELF memory report, modeled/measured energy.

Every figure is a trm_tvm.provenance.figure; see docs/measurement.md for the API and the board-file sections.
"""
