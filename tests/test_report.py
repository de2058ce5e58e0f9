"""The report: builds from the committed results, every command parses, figures exist, numbers match the JSON."""
from __future__ import annotations

import dataclasses
import json
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
