"""The report: builds from the committed results, every command parses, figures exist, numbers match the JSON."""
from __future__ import annotations

import dataclasses
import json
from fnmatch import fnmatch
import os
import re
import shutil
from pathlib import Path

import pytest

from trm_tvm.errors import UserError
from trm_tvm.jsonio import REPO_ROOT
from trm_tvm.report import agreement, build, regenerate
from trm_tvm.report.__main__ import main
from trm_tvm.report.manifest import FIGURES, MODELS, SECTIONS, STEPS, figure_command, step_for
from trm_tvm.report.sources import Results

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "report.md"
    build.write(out, REPO_ROOT)
    return out, out.read_text()


def test_report_builds_from_the_committed_results(report):
    out, text = report
    for title in ("## 1 ", "## 2 ", "## 3 ", "## 4 ", "## 5 ", "## Limits and open items"):
        assert title in text
    assert "ould not be rendered" not in text
    R = Results(REPO_ROOT)
    for fig in FIGURES:
        if R.available(fig):
            assert f"### {fig.title}" in text
            assert f"regenerate: `{figure_command(fig)}`" in text
    # every figure carries a provenance label: no bare percentage, step count, time, energy or cycle count
    unit = re.compile(r"(?<![\w.])\d[\d,.]* (%|steps|ms|s|uJ|mJ|J|cycles|instructions|B)\b")
    for line in text.splitlines():
        if line.startswith("| ") or line.startswith("- "):
            for cell in line.strip("|").split("|"):
                if unit.search(cell):
                    assert re.search(r"\((measured|emulated|modeled)", cell), cell


def test_every_linked_figure_exists(report):
    out, text = report
    R = Results(REPO_ROOT)

    def exists(base: Path, link: str) -> bool:
        """A plot of the repository must be committed; one the report drew must be beside it."""
        path = (base / link).resolve()
        if path.is_relative_to(REPO_ROOT) and not path.is_relative_to(REPO_ROOT / "reports/report"):
            return R.exists(path.relative_to(REPO_ROOT).as_posix())
        return path.is_file()

    links = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert len(links) >= 8
    for link in links:
        assert exists(out.parent, link), link
    committed = REPO_ROOT / "reports/report.md"
    if committed.is_file():
        for link in re.findall(r"\]\(([^)]+\.png)\)", committed.read_text()):
            assert exists(committed.parent, link), f"reports/report.md links a missing {link}"


def _rows_of(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for ln in lines[i + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _numbers(cell: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"-?\d[\d,]*\.?\d*(?:e[+-]?\d+)?", cell)]


def test_reference_table_numbers_match_the_eval_json(report):
    _, text = report
    rows = _rows_of(text, "| model | task (metric)")
    have = [m for m in MODELS if (REPO_ROOT / f"checkpoints/{m}/eval.json").is_file()]
    assert [r[0] for r in rows] == [f"`{m}`" for m in have] and {"ecg", "gunpoint", "sudoku"} <= set(have)
    for r in rows:
        ev = json.loads((REPO_ROOT / f"checkpoints/{r[0].strip('`')}/eval.json").read_text())
        m = "accuracy" if "accuracy" in ev["fixed"] else "cell_accuracy_blanks"
        assert _numbers(r[2]) == [ev["sizes"]["params"]["value"]]
        assert _numbers(r[3]) == [ev["sizes"]["macs_fixed_inference"]["value"]]
        for cell, fig in ((r[4], ev["fixed"][m]), (r[5], ev["halting"][m]), (r[6], ev["baseline"][m])):
            value, lo, hi = _numbers(cell)[:3]
            assert value == pytest.approx(100 * fig["value"], abs=0.005)
            assert (lo, hi) == pytest.approx([100 * x for x in fig["ci95"]], abs=0.05)
            assert cell.endswith(f"({fig['provenance']})") or f"({fig['provenance']})" in cell
        assert _numbers(r[5])[3] == pytest.approx(ev["halting"]["mean_steps"], abs=0.005)
        if "anchor" in ev:
            assert _numbers(r[7])[0] == pytest.approx(100 * ev["anchor"][m]["value"], abs=0.005)
        else:
            assert r[7] == "—"


def test_exactness_table_counts_match_the_bench_json(report):
    _, text = report
    rows = _rows_of(text, "| board | artifact | kernels | mode | bit-exact")
    res = json.loads((REPO_ROOT / "reports/bench/exactness-ecg/results.json").read_text())
    want = [(r["board"], r["kernels"], mode, f"{m['bit_exact']}/{m['checked']}", round(m["instructions"]["mean"]
                                                                                       ["value"]))
            for r in res["rows"] for mode, m in r["modes"].items()]
    got = [(r[0], r[2], r[3], r[4], _numbers(r[5])[0]) for r in rows]
    assert got == want


def test_every_manifest_command_parses_with_its_module():
    for step in STEPS:
        for command in step.commands:
            if not command.startswith("python"):
                assert command.split()[0] == "cp", command
                continue
            ns = agreement.parse_only(command)
            assert ns is not None, command


def test_parse_only_rejects_a_bad_argument():
    with pytest.raises(SystemExit):
        agreement.parse_only("python -m trm_tvm.halting --board cortex-m4 --no-such-flag --out x")


def test_commands_agree_with_what_the_results_record():
    assert agreement.all_problems(REPO_ROOT) == []


def test_agreement_catches_a_changed_command():
    gap9 = next(s for s in STEPS if s.name == "gap9:ecg_w8a8")
    wrong = dataclasses.replace(gap9, commands=(gap9.commands[0].replace("--limit 200", "--limit 20"),))
    assert any("inputs" in p for p in agreement.problems(wrong, REPO_ROOT))
    q = next(s for s in STEPS if s.name == "quantize:ecg_w8a8")
    wrong = dataclasses.replace(q, commands=(q.commands[0].replace("w8a8.yaml", "w4a8.yaml"),))
    assert any("records" in p for p in agreement.problems(wrong, REPO_ROOT))
    wi = next(s for s in STEPS if s.name == "bench:whole-inference-ecg")
    wrong = dataclasses.replace(wi, commands=(wi.commands[0].replace("--limit 1", "--limit 3"),))
    assert any("README.md records" in p for p in agreement.problems(wrong, REPO_ROOT))
    ck = next(s for s in STEPS if s.name == "evaluate:ecg")
    wrong = dataclasses.replace(ck, commands=(ck.commands[0] + " --limit 5",))
    assert any("COMMAND" in p for p in agreement.problems(wrong, REPO_ROOT))


def test_lineage_finds_a_result_made_from_another_input(tmp_path):
    step = next(s for s in STEPS if s.name == "quantize:ecg_w8a8")
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "checkpoints/ecg").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "artifacts/ecg_w8a8.npz", tmp_path / "artifacts")
    shutil.copy(REPO_ROOT / "checkpoints/ecg/model.pt", tmp_path / "checkpoints/ecg")
    assert agreement.lineage(step, tmp_path) == []
    (tmp_path / "checkpoints/ecg/model.pt").write_bytes(b"retrained")
    assert "artifacts/ecg_w8a8.npz was made from checkpoints/ecg/model.pt" in agreement.lineage(step, tmp_path)[0]


def test_steps_are_in_data_flow_order():
    made: set[str] = set()
    for step in STEPS:
        for p in step.inputs:
            assert p in made or (REPO_ROOT / p).is_file() and step_for(p) is None, (step.name, p)
        made.update(step.outputs)
    for fig in FIGURES:
        for p in fig.reads:
            assert step_for(p) is not None, f"{fig.id} reads {p}, which no step makes"
    assert {f.section for f in FIGURES} == set(SECTIONS)


def test_a_missing_result_file_gives_one_line_naming_its_command(tmp_path, capsys):
    shutil.copytree(REPO_ROOT / "checkpoints/ecg", tmp_path / "checkpoints/ecg",
                    ignore=shutil.ignore_patterns("model.pt", "eval.json"))
    assert main(["--root", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("error: result file checkpoints/ecg/eval.json is missing -- make it with: ")
    assert "python -m trm_tvm.train --config configs/ecg.yaml --out runs/ecg" in err   # its missing input too
    assert "python -m trm_tvm.evaluate --checkpoint checkpoints/ecg/model.pt" in err
    assert not (tmp_path / "r.md").exists()


def test_a_partial_checkout_reports_missing_optional_results_without_failing(tmp_path):
    """Seeds still training elsewhere: the report says which command makes them instead of failing."""
    R = Results(REPO_ROOT)
    absent = [p for f in FIGURES if f.optional for p in f.reads if not R.exists(p)]
    text = build.render(R)
    for p in absent:
        assert f"`{p}`" in text.split("## Limits and open items")[1]


def _copy_results(root: Path) -> None:
    """The committed files the report reads, written into a scratch directory (read there as a work tree)."""
    R = Results(REPO_ROOT)
    for f in FIGURES:
        for p in f.reads + ((f.png,) if f.png and not f.png.startswith("reports/report/") else ()):
            if R.exists(p):
                (root / p).parent.mkdir(parents=True, exist_ok=True)
                (root / p).write_bytes(R.bytes(p))
    for p in ("reports/quant/ecg/dynamics/steps.png", "reports/quant/ecg/dynamics/halting.png"):
        (root / p).write_bytes(R.bytes(p))


def test_a_result_in_a_new_format_is_flagged_not_fatal(tmp_path):
    """Others change their result formats during the session: that table says so, the rest still builds."""
    _copy_results(tmp_path)
    p = tmp_path / "reports/gap9/ecg_w4a8/deploy.json"
    d = json.loads(p.read_text())
    del d["modeled"]
    p.write_text(json.dumps(d))
    text = build.write(tmp_path / "reports/report.md", tmp_path).read_text()
    gap9, limits = text.split("## 5 ")[1].split("## Limits and open items")
    assert "**Could not be rendered**" in gap9 and "KeyError" in gap9
    assert "could not be rendered" in limits
    assert "**Could not be rendered**" not in text.split("## 5 ")[0]


def test_a_multi_seed_sweep_gives_means_over_checkpoints(tmp_path):
    _copy_results(tmp_path)
    p = tmp_path / "reports/quant/ecg/sweep.json"
    sweep = json.loads(p.read_text())
    first = sweep["rows"][0]["checkpoint"]
    sweep["rows"] = [r for r in sweep["rows"] if r["checkpoint"] == first and r["method"] != "qat"]
    rows = []
    for i, ck in enumerate(("ecg:aaaaaaaa", "ecg:bbbbbbbb", "ecg:cccccccc")):
        for r in sweep["rows"] + [dict(sweep["rows"][1], config="w4a8-qat-pc", recipe="w4a8", method="qat")]:
            rows.append(dict(r, checkpoint=ck, acc_halting=r["acc_halting"] + 0.01 * i * (r["config"] != "fp32")))
    p.write_text(json.dumps(dict(sweep, rows=rows)))
    text = build.write(tmp_path / "reports/report.md", tmp_path).read_text()
    table = {r[0]: r for r in _rows_of(text, "| configuration | weight bytes")}
    fp = next(r for r in sweep["rows"] if r["config"] == "fp32")["acc_halting"]
    w8 = next(r for r in sweep["rows"] if r["config"] == "w8a8-ptq-pc")["acc_halting"]
    assert "over 3 checkpoints" in table["w8a8-ptq-pc"][2]
    mean, lo, hi = _numbers(table["w8a8-ptq-pc"][2])[:3]
    assert (mean, lo, hi) == pytest.approx([100 * (w8 + 0.01), 100 * w8, 100 * (w8 + 0.02)], abs=0.05)
    assert _numbers(table["w8a8-ptq-pc"][3])[:3] == pytest.approx([100 * (w8 - fp) + 1, 100 * (w8 - fp),
                                                                    100 * (w8 - fp) + 2], abs=0.01)
    assert "w4a8-qat-pc" in table
    assert "3 ECG checkpoints" not in text.split("## Limits and open items")[1]


def test_up_to_date_compares_output_and_input_times(tmp_path):
    step = dataclasses.replace(STEPS[0], outputs=("out.json",), inputs=("in.yaml",))
    (tmp_path / "in.yaml").write_text("a")
    assert not regenerate.up_to_date(step, tmp_path)
    (tmp_path / "out.json").write_text("{}")
    os.utime(tmp_path / "in.yaml", (1, 1))
    assert regenerate.up_to_date(step, tmp_path)
    os.utime(tmp_path / "in.yaml", (4e9, 4e9))
    assert not regenerate.up_to_date(step, tmp_path)
    assert regenerate.argv_for("python -m trm_tvm.report --out x")[1:] == ["-m", "trm_tvm.report", "--out", "x"]
    assert {s.name for s in regenerate.selected("gap9")} == {"gap9:ecg_w8a8", "gap9:ecg_w4a8", "tune:gap9",
                                                              "gap9:ecg_w8a8_tuned_tir", "gap9:ecg_w4a8_tuned_tir"}


def test_dry_run_propagates_a_rerun_downstream(tmp_path, monkeypatch):
    a = dataclasses.replace(STEPS[0], name="a", commands=("python -m x",), outputs=("a.json",), inputs=("in.yaml",))
    b = dataclasses.replace(STEPS[0], name="b", commands=("python -m y",), outputs=("b.json",), inputs=("a.json",))
    c = dataclasses.replace(STEPS[0], name="c", commands=("python -m z",), outputs=("c.json",), inputs=())
    for i, f in enumerate(("in.yaml", "a.json", "b.json", "c.json")):
        (tmp_path / f).write_text("{}")
        os.utime(tmp_path / f, (1e9 + i, 1e9 + i))
    monkeypatch.setattr(regenerate, "selected", lambda only: [a, b, c])
    assert regenerate.regenerate(tmp_path, dry_run=True, log=lambda m: None) == []
    os.utime(tmp_path / "in.yaml", (2e9, 2e9))                        # a's input changed: a, then b
    assert regenerate.regenerate(tmp_path, dry_run=True, log=lambda m: None) == ["a", "b"]
    assert regenerate.regenerate(tmp_path, dry_run=True, force=True, log=lambda m: None) == ["a", "b", "c"]
    (tmp_path / "in.yaml").unlink()
    with pytest.raises(UserError, match="step a needs in.yaml"):
        regenerate.regenerate(tmp_path, force=True, log=lambda m: None)


def test_unknown_section_and_stray_flags_are_one_line_errors(capsys):
    with pytest.raises(SystemExit):
        main(["--regenerate", "--only", "nonsense"])
    with pytest.raises(SystemExit):
        main(["--force"])
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(UserError):
        Results(Path("/nonexistent")).json("reports/quant/ecg/sweep.json")


def test_agreement_catches_changed_bench_matrices():
    """Bench steps are checked combination by combination: inferences, modes, schedules and --profile."""
    rnd = next(s for s in STEPS if s.name == "bench:exactness-random")
    assert agreement.problems(rnd, REPO_ROOT) == []
    wrong = dataclasses.replace(rnd, commands=rnd.commands[1:])            # without the first fixed+halting run
    assert any("modes" in p for p in agreement.problems(wrong, REPO_ROOT))
    wrong = dataclasses.replace(rnd, commands=(rnd.commands[0], rnd.commands[1].replace("cortex-m7=50",
                                                                                       "cortex-m7=20")))
    assert any("cortex-m7 halting inferences" in p for p in agreement.problems(wrong, REPO_ROOT))
    shapes = next(s for s in STEPS if s.name == "bench:m4-kernels-ecg-shapes")
    wrong = dataclasses.replace(shapes, commands=(shapes.commands[0].replace(" --profile", ""),))
    assert any("profiled" in p for p in agreement.problems(wrong, REPO_ROOT))
    wrong = dataclasses.replace(shapes, commands=(shapes.commands[0].replace("naive,default", "default,tuned"),))
    assert any("schedule" in p for p in agreement.problems(wrong, REPO_ROOT))
    dyn = next(s for s in STEPS if s.name == "dynamics:qat_ds-ecg_seed1")
    wrong = dataclasses.replace(dyn, commands=(dyn.commands[0].replace("--limit 2000", "--limit 500"),))
    assert any("samples" in p for p in agreement.problems(wrong, REPO_ROOT))
    wrong = dataclasses.replace(dyn, commands=(dyn.commands[0].replace(" --bias", ""),))
    assert any("--bias" in p for p in agreement.problems(wrong, REPO_ROOT))
    sudoku = next(s for s in STEPS if s.name == "quantize:sweep-sudoku")
    wrong = dataclasses.replace(sudoku, commands=(sudoku.commands[0].replace("--limit 200", "--limit 100"),))
    assert any("test samples" in p for p in agreement.problems(wrong, REPO_ROOT))


def test_op_family_names_both_back_ends_alike():
    from trm_tvm.report.sections import op_family

    assert {op_family(f) for f in ("trm_linear_s8_16x48x96_tvm", "trm_linear_s4_48x32x16_T_tvm", "trm_linear_s8_dsp",
                                   "trm_linear_s4_mve", "trm_linear_s8_b_16x32x48_tvm")} == {"linear"}
    assert {op_family(f) for f in ("trm_linear_s8_o16_b_1x48x5_tvm", "trm_head_s8_ref")} == {"head"}
    assert op_family("trm_rmsnorm_scale") == op_family("trm_rmsnorm_16x48_tvm") == "rmsnorm"
    assert op_family("trm_add_s8_n3_768_tvm") == op_family("trm_add_s8_dsp") == "add_s8"
    assert op_family("trm_mean_pool_16x48_tvm") == "mean_pool"
    assert {op_family(f) for f in ("memcpy", "__aeabi_ldivmod", "trm_run", "trm_systick_irq")} == {"runtime"}


def test_per_op_table_matches_the_profiles(report):
    """Every op family the TVM profile has, the hand-written one has too (else a renamed kernel would silently
    drop out of the comparison), and the table's whole-inference ratios are the JSON's totals."""
    from trm_tvm.report.sections import op_family

    _, text = report
    path = next(p for p in next(f for f in FIGURES if f.id == "deploy-per-op").reads if (REPO_ROOT / p).is_file())
    res = json.loads((REPO_ROOT / path).read_text())
    prof = {(r["board"], Path(r["artifact"]).stem, r["kernels"], r["schedule"]): r["profile"] for r in res["rows"]}
    table = _rows_of(text, "| board | artifact | TVM schedule | whole: instructions")
    assert table
    for row in table:
        tvm, hw = prof[(row[0], row[1], "tvm", row[2])], prof[(row[0], row[1], "handwritten", "n/a")]
        assert {op_family(f) for f in tvm["kernels"]} == {op_family(f) for f in hw["kernels"]}, \
            f"{path}: an op family only one back end has -- teach sections.op_family the new kernel names"
        for cell, what in ((row[3], "instructions"), (row[4], "cycles")):
            assert _numbers(cell)[0] == pytest.approx(tvm["total"][what]["value"] / hw["total"][what]["value"],
                                                      abs=0.006)


def test_issue8_targets_name_the_shapes_that_miss():
    from trm_tvm.report.sections import issue8_targets

    def row(kernel, tokens, ipm):
        f = lambda v, u, p: {"value": v, "unit": u, "provenance": p, "source": ""}  # noqa: E731
        return {"board": "cortex-m4", "kernel": kernel, "tokens": tokens, "n_in": 16, "n_out": 32,
                "instructions_per_mac": f(ipm, "instructions/MAC", "emulated"),
                "cycles_per_mac": f(2 * ipm, "cycles/MAC", "modeled")}

    lines = issue8_targets([row("trm_linear_s8_dsp", 8, 0.9), row("trm_linear_s8_dsp", 48, 1.15),
                            row("trm_linear_s4_dsp", 8, 1.3), row("trm_linear_s8_ref", 8, 7.0)])
    assert "met at 1 of 2 shapes; not at 48x16x32 (1.15, emulated)" in lines[0]
    assert "int4 / int8 1.44-1.44x (emulated), missed at 1 of 1 shapes" in lines[1]

    # the bench's second multiplier encoding (sh fixed at 32) is checked on its own, not mixed into the first
    enc = {"multipliers": "M=2^22, sh=32"}
    lines = issue8_targets([{**row("trm_linear_s8_dsp", 48, 1.15), "multipliers": "M=2^30, sh=40"},
                            {**row("trm_linear_s8_dsp (sh=32)", 48, 0.97), **enc},
                            {**row("trm_linear_s4_dsp (sh=32)", 48, 1.1), **enc}])
    assert "(M=2^30, sh=40) <= 1.0 instruction/MAC: met at 0 of 1 shapes" in lines[0]
    assert "`trm_linear_s8_dsp (sh=32)` (M=2^22, sh=32) <= 1.0 instruction/MAC: met at 1 of 1 shapes." in lines[1]
    assert lines[2].startswith("cortex-m4 (M=2^22, sh=32) int4 <= 1.3x int8: int4 / int8 1.13-1.13x")
    assert len(lines) == 3


def test_findings_and_qat_ds_tables_match_their_json(report):
    _, text = report
    d = json.loads((REPO_ROOT / "reports/quant/ecg/findings/dynamics.json").read_text())
    rows = _rows_of(text, "| artifact | final cosine z / y vs FP")
    assert [r[0].split()[0].strip("`") for r in rows] == [x["label"] for x in d["results"]]
    for r, x in zip(rows, d["results"]):
        last = x["logit_bias"][-1]
        assert _numbers(r[3])[0] == pytest.approx(100 * last["acc_quant"], abs=0.005)
        assert _numbers(r[4])[0] == pytest.approx(100 * (last["acc_quant"] - last["acc_fp"]), abs=0.005)
        assert _numbers(r[6])[0] == pytest.approx(100 * last["acc_quant_debiased"], abs=0.005)
    rows = _rows_of(text, "| checkpoint | model | accuracy, learned halting")
    for seed, sub in (("ecg", ""), ("ecg_seed1", "/seed1"), ("ecg_seed2", "/seed2")):
        ev = json.loads((REPO_ROOT / f"reports/quant/ecg/qat_ds{sub}/w4a8-qat-pc-last-step_eval.json").read_text())
        last = next(r for r in rows if r[0] == f"`{seed}`" and r[1] == "QAT, last step only")
        assert _numbers(last[2])[0] == pytest.approx(100 * ev["halting"]["quant"]["accuracy"], abs=0.005)
        fixed = [100 * f["quant"]["accuracy"] for f in ev["fixed"]]
        assert _numbers(last[5]) == pytest.approx(fixed, abs=0.005)     # the dynamics run agrees with the eval


def test_every_result_directory_is_shown_or_left_out_with_a_documented_reason():
    from trm_tvm.report.manifest import LEFT_OUT

    cov = build.coverage(Results(REPO_ROOT))
    assert "reports/quant/ecg/qat_ds/seed2" in cov and "reports/report" not in cov
    docs = (REPO_ROOT / "docs/report.md").read_text()
    for pattern in LEFT_OUT:
        assert any(how.startswith("left out") and fnmatch(d, pattern) for d, how in cov.items()), \
            f"LEFT_OUT entry {pattern} matches no result directory"
        assert f"`{pattern}/`" in docs, f"docs/report.md does not list {pattern} and why"
