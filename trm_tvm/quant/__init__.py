"""Quantisation: the integer spec (`spec`), the golden model (`golden`), the artifact format (`artifact`),
random-weight test artifacts (`fixtures`), the numpy float reference (`float_ref`) and PTQ (`ptq`)."""
