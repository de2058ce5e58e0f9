"""The technical report: every table and plot built from committed results, each with the command behind it.

`manifest` lists the commands and what they write, `sources` reads results, `sections` renders them, `build`
writes reports/report.md, `regenerate` reruns the commands (python -m trm_tvm.report --regenerate).
"""
