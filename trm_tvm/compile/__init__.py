"""The compile stage: quantised artifact -> Relax/TIR -> plain C model library (see docs/compile.md)."""
