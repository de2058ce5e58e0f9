"""What the report shows and the command behind every file it reads.

A `Step` is one command line (or a short sequence, e.g. train then copy) and the files it writes; steps are listed
in data-flow order: checkpoint -> artifact -> bench/session/study -> report. A `Figure` is one table or plot of
the report: the result files it reads; its command is that of the step(s) writing them, and its provenance classes
are read from those files' own `provenance` fields (`sources.provenances`), never declared here.

`recorded` says where the command line was taken from, so a reader knows which ones were written down with the
result and which were reconstructed from the result's metadata; `tests/test_report.py` checks every command
against what the result records (COMMAND files, artifact headers, the JSONs' run/meta blocks).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    commands: tuple[str, ...]          # shell-free command lines, `python` = this venv's interpreter
    outputs: tuple[str, ...]           # files it writes (repository-relative)
    inputs: tuple[str, ...] = ()       # files it reads that other steps (or the repository) provide
    recorded: str = ""                 # where the command line is written down beside the result
    optional: bool = False             # still in progress elsewhere: the report notes its absence

    def argvs(self) -> list[list[str]]:
        return [shlex.split(c) for c in self.commands]


@dataclass(frozen=True)
class Figure:
    id: str
    section: str
    title: str
    reads: tuple[str, ...]
    png: str = ""                      # committed plot, or one this report draws into reports/report/
    optional: bool = False             # the whole figure may be absent (its results are still being made)
    may_miss: tuple[str, ...] = ()     # files of `reads` that may be absent: the figure shows the others


SECTIONS = ("reference", "quant", "deploy", "halting", "gap9")
REPORT_DIR = "reports/report"
MODELS = ("ecg", "gunpoint", "basicmotions", "japanesevowels", "sudoku",      # one checkpoint per task (seed 0)
          "sudoku_attention")                                                 # study: attention token mixing
RUN_DIRS = {"sudoku_attention": "runs/sudoku_attention_pos"}                  # where its COMMAND trained it
SEEDS = {f"{task}_seed{n}": (task, n) for task in ("ecg", "basicmotions", "sudoku") for n in (1, 2)}
CKPTS = tuple(c for m in MODELS for c in (m, *(s for s, (t, _) in SEEDS.items() if t == m)))
ECG_CKPTS = tuple(c for c in CKPTS if c == "ecg" or SEEDS.get(c, ("",))[0] == "ecg")
IN_PROGRESS: set[str] = set()          # checkpoints others are still committing: the report notes their absence
HALTING_STUDIES = ("ecg_w8a8_cortex-m4", "ecg_w4a8_cortex-m4", "ecg_w8a8_cortex-m55", "ecg_w8a8_gap9",
                   "gunpoint_w8a8_cortex-m4")
GAP9_PRECISIONS = ("w8a8", "w4a8")
GAP9_TUNED = ("schedules/gap9/database_tuning_record.json",)
# (result dir, precision, --kernels, --schedule, extra inputs, where the command is recorded); `--kernels tvm` on
# gap9 = per-core compute generated from the TIR strategy, `handwritten` = the PULP C cluster kernels
GAP9_DEPLOYS = tuple(
    [(f"ecg_{p}", p, "handwritten", "default", (), "commit 31654bb message; deploy.json artifact, inputs, schedule, "
      "linear_compute") for p in GAP9_PRECISIONS]
    + [(f"ecg_{p}_tuned_tir", p, "tvm", "tuned", GAP9_TUNED, "commit 56699fc message, docs/gap9.md; deploy.json "
        "artifact, inputs, schedule, linear_compute") for p in GAP9_PRECISIONS])


def _checkpoint_steps(name: str) -> list[Step]:
    task = SEEDS[name][0] if name in SEEDS else name
    seed = f" --seed {SEEDS[name][1]}" if name in SEEDS else ""
    ck = f"checkpoints/{name}"
    run = RUN_DIRS.get(name, f"runs/{name}")
    optional = name in IN_PROGRESS
    return [
        Step(f"train:{name}",
             (f"python -m trm_tvm.train --config configs/{task}.yaml{seed} --out {run}",
              f"cp {run}/model.pt {run}/config.yaml {ck}/"),
             (f"{ck}/model.pt", f"{ck}/config.yaml"), (f"configs/{task}.yaml",), f"{ck}/COMMAND", optional),
        Step(f"evaluate:{name}",
             (f"python -m trm_tvm.evaluate --checkpoint {ck}/model.pt --json {ck}/eval.json",),
             (f"{ck}/eval.json",), (f"{ck}/model.pt",), f"{ck}/COMMAND", optional),
    ]


def _quantize_step(name: str, ckpt: str, recipe: str, extra: str = "", json_out: str = "", art: str = "") -> Step:
    art = art or f"artifacts/{name}.npz"
    tail = f" --eval --json {json_out}" if json_out else ""
    return Step(f"quantize:{name}",
                (f"python -m trm_tvm.quantize run --checkpoint checkpoints/{ckpt}/model.pt --recipe {recipe}"
                 f"{extra} --out {art}{tail}",),
                (art,) + ((json_out,) if json_out else ()), (f"checkpoints/{ckpt}/model.pt", recipe),
                f"{art} header.provenance.command")


QUANT = "reports/quant/ecg"
# the sweep keeps each checkpoint's QAT artifact under cache/<sha256[:16] of the checkpoint>/ (trm_tvm.quant.sweep);
# the findings and deep-supervision studies reuse them
SWEEP_QAT = {"ecg": f"{QUANT}/cache/25ecd3af35a7cb7a/full/w4a8-qat-pc.npz",
             "ecg_seed1": f"{QUANT}/cache/8962ab17548ad0d2/full/w4a8-qat-pc.npz",
             "ecg_seed2": f"{QUANT}/cache/19abc1e30a53c2da/full/w4a8-qat-pc.npz"}
FINDINGS = f"{QUANT}/findings"
FINDINGS_ARTS = {"ecg_w4a8_pt": ("qat/w4a8.yaml", " --per-tensor"), "ecg_w4a4_pc": ("qat/w4a4.yaml", ""),
                 "ecg_w4a4_pt": ("qat/w4a4.yaml", " --per-tensor")}
QAT_DS = {c: f"{QUANT}/qat_ds" + ("" if c == "ecg" else f"/seed{SEEDS[c][1]}") for c in ECG_CKPTS}


def _qat_ds_steps(ckpt: str) -> list[Step]:
    """QAT without the deep-supervision loss, and the dynamics of both QATs (and PTQ on seed 0) on the test set."""
    out = QAT_DS[ckpt]
    art = f"{out}/w4a8-qat-pc-last-step.npz"
    arts = (("artifacts/ecg_w4a8.npz",) if ckpt == "ecg" else ()) + (SWEEP_QAT[ckpt], art)
    return [
        _quantize_step(f"qat_ds-{ckpt}", ckpt, "qat/w4a8.yaml", " --method qat --qat-minutes 12 --no-deep-supervision",
                       f"{out}/w4a8-qat-pc-last-step_eval.json", art),
        Step(f"dynamics:qat_ds-{ckpt}",
             (f"python -m trm_tvm.dynamics --checkpoint checkpoints/{ckpt}/model.pt --artifact {' '.join(arts)} "
              f"--bias --limit 2000 --out {out}",),
             tuple(f"{out}/{f}" for f in ("dynamics.json", "drift.png", "steps.png", "halting.png")),
             (f"checkpoints/{ckpt}/model.pt",) + arts,
             ("reports/quant/ecg/README.md" if ckpt == "ecg" else "reconstructed from reports/quant/ecg/README.md "
              "('seeds 1 and 2: the same with')") + "; dynamics.json checkpoint/results[].label"),
    ]


def _halting_step(study: str) -> Step:
    model, precision, board = study.split("_", 2)
    art = f"artifacts/{model}_{precision}.npz"
    sample = {"ecg_w4a8_cortex-m4": " --sample 500", "ecg_w8a8_cortex-m55": " --sample 300"}.get(study, "")
    out = f"reports/halting/{study}"
    kernels = "" if board == "gap9" else " --kernels handwritten"
    return Step(f"halting:{study}",
                (f"python -m trm_tvm.halting --board {board} --artifact {art}{kernels} "
                 f"--checkpoint checkpoints/{model}/model.pt{sample} --out {out}",),
                tuple(f"{out}/{f}" for f in ("halting.json", "summary.md", "pareto.png", "latency_cdf.png",
                                             "halting_steps.png")),
                (art, f"checkpoints/{model}/model.pt"), f"{out}/halting.json meta (board, artifact, kernels, inputs)")


WHOLE_ECG = "reports/kernels/handwritten/whole-inference-ecg"
WHOLE_ARTS = tuple(f"reports/kernels/handwritten/whole-inference/artifacts/ecgshape-{p}.npz" for p in ("w8a8", "w4a8"))
ECG_ARTS = tuple(f"artifacts/ecg_{p}.npz" for p in ("w8a8", "w4a8", "mixed"))

STEPS: tuple[Step, ...] = tuple(
    [s for c in CKPTS for s in _checkpoint_steps(c)]
    + [
        _quantize_step("ecg_w8a8", "ecg", "qat/w8a8.yaml"),
        _quantize_step("ecg_w4a8", "ecg", "qat/w4a8.yaml"),
        Step("quantize:ecg_mixed",
             ("python -m trm_tvm.quantize mixed --checkpoint checkpoints/ecg/model.pt --budget-kb 20 --monitor 200 "
              "--out artifacts/ecg_mixed.npz --json reports/quant/ecg/mixed.json",),
             ("artifacts/ecg_mixed.npz", "reports/quant/ecg/mixed.json"), ("checkpoints/ecg/model.pt",),
             "artifacts/ecg_mixed.npz header.provenance.command"),
        _quantize_step("ecg_w4a8_qat", "ecg", "qat/w4a8.yaml", " --method qat --qat-minutes 12",
                       "reports/quant/ecg/w4a8_qat_eval.json"),
        _quantize_step("gunpoint_w8a8", "gunpoint", "qat/w8a8.yaml"),
        Step("quantize:sweep",
             ("python -m trm_tvm.quantize sweep --checkpoint "
              + " ".join(f"checkpoints/{c}/model.pt" for c in ECG_CKPTS)
              + " --out reports/quant/ecg --qat w4a8 --qat-minutes 12",),
             ("reports/quant/ecg/sweep.json", "reports/quant/ecg/sweep.csv", "reports/quant/ecg/sweep.png",
              *SWEEP_QAT.values()),
             tuple(f"checkpoints/{c}/model.pt" for c in ECG_CKPTS),
             "reports/quant/ecg/README.md; sweep.json rows[].checkpoint (sha256 prefixes), QAT recipes"),
        Step("quantize:sweep-gunpoint",
             ("python -m trm_tvm.quantize sweep --checkpoint checkpoints/gunpoint/model.pt "
              "--out reports/quant/gunpoint",),
             tuple(f"reports/quant/gunpoint/sweep.{x}" for x in ("json", "csv", "png")),
             ("checkpoints/gunpoint/model.pt",),
             "reports/quant/README.md; sweep.json rows[].checkpoint (sha256 prefix)"),
        Step("dynamics:ecg",
             ("python -m trm_tvm.dynamics --checkpoint checkpoints/ecg/model.pt --artifact artifacts/ecg_w8a8.npz "
              "artifacts/ecg_w4a8.npz artifacts/ecg_w4a8_qat.npz --recipe qat/w8a8.yaml --variants --limit 300 "
              "--out reports/quant/ecg/dynamics",),
             tuple(f"reports/quant/ecg/dynamics/{f}" for f in ("dynamics.json", "drift.png", "steps.png",
                                                               "halting.png")),
             ("checkpoints/ecg/model.pt", "artifacts/ecg_w8a8.npz", "artifacts/ecg_w4a8.npz",
              "artifacts/ecg_w4a8_qat.npz"),
             "reports/quant/README.md; dynamics.json checkpoint/results[].label"),
        Step("quantize:sweep-sudoku",
             ("python -m trm_tvm.quantize sweep --checkpoint checkpoints/sudoku/model.pt --out reports/quant/sudoku "
              "--limit 200",),
             tuple(f"reports/quant/sudoku/sweep.{x}" for x in ("json", "csv", "png")),
             ("checkpoints/sudoku/model.pt",),
             "reports/quant/README.md; sweep.json rows[].checkpoint (sha256 prefix)"),
    ]
    + [_quantize_step(f"findings-{a}", "ecg", recipe, extra, art=f"{FINDINGS}/{a}.npz")
       for a, (recipe, extra) in FINDINGS_ARTS.items()]
    + [
        Step("dynamics:findings",
             ("python -m trm_tvm.dynamics --checkpoint checkpoints/ecg/model.pt --artifact artifacts/ecg_w8a8.npz "
              "artifacts/ecg_w4a8.npz " + " ".join(f"{FINDINGS}/{a}.npz" for a in FINDINGS_ARTS) + " "
              + SWEEP_QAT["ecg"] + f" --bias --limit 2000 --out {FINDINGS}",),
             tuple(f"{FINDINGS}/{f}" for f in ("dynamics.json", "drift.png", "steps.png", "halting.png")),
             ("checkpoints/ecg/model.pt", "artifacts/ecg_w8a8.npz", "artifacts/ecg_w4a8.npz",
              *(f"{FINDINGS}/{a}.npz" for a in FINDINGS_ARTS), SWEEP_QAT["ecg"]),
             "reports/quant/README.md; dynamics.json checkpoint/results[].label"),
    ]
    + [s for c in ECG_CKPTS for s in _qat_ds_steps(c)]
    + [
        Step("bench:exactness-random",
             ("python -m trm_tvm.bench --boards cortex-m4 --artifacts random:w8a8 --kernels reference "
              "--modes halting,fixed --limit 200 --out reports/bench/exactness-random",
              "python -m trm_tvm.bench --boards cortex-m4,cortex-m55,cortex-m7,cortex-m33 --artifacts "
              "random:w8a8,random:w4a8,random:mixed --kernels reference,tvm --modes halting "
              "--limit 200,cortex-m7=50,cortex-m33=50 --out reports/bench/exactness-random"),
             ("reports/bench/exactness-random/results.json", "reports/bench/exactness-random/summary.md"), (),
             "commit 41e26c5 message; results.json rows (boards, artifacts, kernels, modes, inferences): its first "
             "row also ran fixed compute, so a first run of that one combination precedes the matrix (bench skips "
             "finished combinations)"),
        Step("bench:m4-kernels-ecg-shapes",
             ("python -m trm_tvm.bench --boards cortex-m4 --artifacts random:ecg-w8a8 --kernels reference,tvm "
              "--schedules naive,default --limit 2 --profile --out reports/bench/m4-kernels-ecg-shapes",),
             ("reports/bench/m4-kernels-ecg-shapes/results.json", "reports/bench/m4-kernels-ecg-shapes/summary.md"),
             (), "commit 3aec578 message; results.json rows (board, artifact, kernels, schedules, modes, inferences, "
                 "profile)"),
        Step("bench:exactness-ecg",
             ("python -m trm_tvm.bench --boards cortex-m4,cortex-m55,cortex-m7,cortex-m33 --artifacts "
              + ",".join(ECG_ARTS) + " --kernels reference,tvm --modes halting --limit 200,cortex-m7=50,cortex-m33=50"
              " --out reports/bench/exactness-ecg",),
             ("reports/bench/exactness-ecg/results.json", "reports/bench/exactness-ecg/summary.md"), ECG_ARTS,
             "the commit message that landed results.json (rerun 2026-11-26 at d157c7e); results.json rows (boards, artifacts, kernels, inferences)"),
        Step("bench:exactness-random-handwritten",
             ("python -m trm_tvm.bench --boards cortex-m4,cortex-m55 --artifacts random:w8a8,random:w4a8,random:mixed"
              " --kernels handwritten --modes halting --limit 200 --out reports/bench/exactness-random-handwritten",),
             ("reports/bench/exactness-random-handwritten/results.json",
              "reports/bench/exactness-random-handwritten/summary.md"), (),
             "commit d3bb107 message; results.json rows (boards, artifacts, kernels, inferences)"),
        Step("bench:whole-inference-ecg",
             ("python -m trm_tvm.bench --boards cortex-m4,cortex-m55 --artifacts artifacts/ecg_w8a8.npz,"
              "artifacts/ecg_w4a8.npz,artifacts/ecg_w8a8_s32.npz,artifacts/ecg_w4a8_s32.npz --kernels "
              "reference,handwritten,tvm --modes fixed --limit 1 --profile "
              "--out reports/kernels/handwritten/whole-inference-ecg",),
             (f"{WHOLE_ECG}/results.json", f"{WHOLE_ECG}/summary.md"),
             ("artifacts/ecg_w8a8.npz", "artifacts/ecg_w4a8.npz", "artifacts/ecg_w8a8_s32.npz",
              "artifacts/ecg_w4a8_s32.npz"),
             "reports/kernels/handwritten/README.md; results.json rows (boards, artifacts, kernels, inferences)"),
        Step("bench:whole-inference",
             ("python -m trm_tvm.bench --boards cortex-m4,cortex-m55 --artifacts " + ",".join(WHOLE_ARTS)
              + " --kernels reference,tvm,handwritten --modes fixed --limit 1 --profile"
              " --out reports/kernels/handwritten/whole-inference",),
             ("reports/kernels/handwritten/whole-inference/results.json",
              "reports/kernels/handwritten/whole-inference/summary.md"), WHOLE_ARTS,
             "reports/kernels/handwritten/README.md; results.json rows (boards, artifacts, kernels, inferences)"),
        Step("kernels:handwritten",
             ("python -m trm_tvm.compile.backends.handwritten_bench --boards cortex-m4,cortex-m55 --selftest 1000 "
              "--out reports/kernels/handwritten",),
             ("reports/kernels/handwritten/bench.json", "reports/kernels/handwritten/bench.md"), (),
             "reports/kernels/handwritten/README.md; bench.json selftest (boards, cases)"),
        Step("tune:cortex-m4",
             ("python -m trm_tvm.tune --board cortex-m4 --artifact artifacts/ecg_w8a8.npz,artifacts/ecg_w4a8.npz",),
             ("reports/tune/cortex-m4/summary.json", "reports/tune/cortex-m4/summary.md",
              "schedules/cortex-m4/database_tuning_record.json"),
             ("artifacts/ecg_w8a8.npz", "artifacts/ecg_w4a8.npz"),
             "docs/tuning.md 'Results'; summary.json board/whole[].artifact"),
    ]
    + [Step("bench:tuned-whole-inference-ecg",
            ("python -m trm_tvm.bench --boards cortex-m4 --artifacts artifacts/ecg_w8a8.npz,artifacts/ecg_w4a8.npz "
             "--kernels tvm,handwritten --schedules default,tuned --modes fixed --limit 1 --profile "
             "--out reports/tune/cortex-m4/whole-inference-ecg",),
            ("reports/tune/cortex-m4/whole-inference-ecg/results.json",
             "reports/tune/cortex-m4/whole-inference-ecg/summary.md"),
            ("artifacts/ecg_w8a8.npz", "artifacts/ecg_w4a8.npz", "schedules/cortex-m4/database_tuning_record.json"),
            "docs/tuning.md (commit cb32050); results.json rows (board, artifact, kernels, inferences)")]
    + [Step("tune:gap9",
            ("python -m trm_tvm.tune --board gap9 --artifact artifacts/ecg_w8a8.npz,artifacts/ecg_w4a8.npz "
             "--out reports/gap9/tune",),
            ("reports/gap9/tune/summary.json", "reports/gap9/tune/summary.md",
             "schedules/gap9/database_tuning_record.json"),
            ("artifacts/ecg_w8a8.npz", "artifacts/ecg_w4a8.npz"),
            "docs/gap9.md 'Tuning' results; summary.json board/whole[].artifact")]
    + [_halting_step(s) for s in HALTING_STUDIES]
    + [
        Step("halting:ecg_compare",
             ("python -m trm_tvm.halting --compare " + " ".join(f"reports/halting/{s}" for s in HALTING_STUDIES)
              + " --out reports/halting/ecg_compare",),
             ("reports/halting/ecg_compare/compare.json", "reports/halting/ecg_compare/compare.md"),
             tuple(f"reports/halting/{s}/halting.json" for s in HALTING_STUDIES),
             "compare.json rows[].study"),
    ]
    + [Step(f"gap9:{name}",
            (f"python -m trm_tvm.deploy --board gap9 --artifact artifacts/ecg_{p}.npz --kernels {kernels} "
             f"--schedule {schedule} --limit 200 --json reports/gap9/{name}/deploy.json",),
            (f"reports/gap9/{name}/deploy.json",), (f"artifacts/ecg_{p}.npz",) + tuned, recorded)
       for name, p, kernels, schedule, tuned, recorded in GAP9_DEPLOYS]
)


def seeds_of(task: str) -> tuple[str, ...]:
    """The task's seed-0 checkpoint and its other training seeds."""
    return (task, *(s for s, (t, _) in SEEDS.items() if t == task))


def _f(id, section, title, reads, png="", optional=False, may_miss=()) -> Figure:
    return Figure(id, section, title, tuple(reads), png, optional, tuple(may_miss))


def _ckpt_reads(names) -> list[str]:
    return [f"checkpoints/{c}/eval.json" for c in names]


IN_PROGRESS_READS = _ckpt_reads(sorted(IN_PROGRESS))
# the trained ECG artifacts' run replaces the ECG-shaped random one (being rerun now); the first present is shown
WHOLE_READS = (f"{WHOLE_ECG}/results.json", "reports/kernels/handwritten/whole-inference/results.json")

FIGURES: tuple[Figure, ...] = (
    _f("reference-accuracy", "reference", "Accuracy of the float TRM, the non-recursive baseline and MiniRocket",
       _ckpt_reads(MODELS), may_miss=IN_PROGRESS_READS),
    *(_f(f"reference-seeds-{task}", "reference", f"{task} over training seeds",
         _ckpt_reads(seeds_of(task)), optional=bool(IN_PROGRESS.intersection(seeds_of(task))))
      for task in dict.fromkeys(t for t, _ in SEEDS.values())),
    _f("reference-per-step", "reference", "Accuracy per supervision step (fixed compute)",
       _ckpt_reads(MODELS), f"{REPORT_DIR}/reference_per_step.png", may_miss=IN_PROGRESS_READS),
    _f("quant-sweep", "quant", "Accuracy vs precision (golden model, ECG test set)",
       ["reports/quant/ecg/sweep.json"], "reports/quant/ecg/sweep.png"),
    _f("quant-sweep-gunpoint", "quant", "Accuracy vs precision, UCR GunPoint (one seed, 150 test series)",
       ["reports/quant/gunpoint/sweep.json"], "reports/quant/gunpoint/sweep.png"),
    _f("quant-sweep-sudoku", "quant",
       "Accuracy vs precision, Sudoku (one seed, puzzles solved, first 200 test puzzles)",
       ["reports/quant/sudoku/sweep.json"], "reports/quant/sudoku/sweep.png"),
    _f("quant-qat", "quant", "W4A8 after QAT vs FP32", ["reports/quant/ecg/w4a8_qat_eval.json"]),
    _f("quant-mixed", "quant", "Mixed precision within a weight budget", ["reports/quant/ecg/mixed.json"]),
    _f("quant-dynamics", "quant", "Recursion dynamics: drift of y, z from the float trajectory",
       ["reports/quant/ecg/dynamics/dynamics.json"], "reports/quant/ecg/dynamics/drift.png"),
    _f("quant-findings", "quant", "Published quantisation findings checked on the ECG model (seed 0, fixed compute)",
       [f"{FINDINGS}/dynamics.json"], f"{FINDINGS}/drift.png"),
    _f("quant-qat-ds", "quant", "W4A8 QAT with vs without the deep-supervision loss (3 seeds)",
       [f"{QAT_DS[c]}/{f}" for c in ECG_CKPTS for f in ("w4a8-qat-pc-last-step_eval.json", "dynamics.json")]
       + ["reports/quant/ecg/sweep.json"]),
    _f("deploy-exactness", "deploy", "Bit-exactness, instructions, latency and memory of the trained ECG artifacts",
       ["reports/bench/exactness-ecg/results.json"]),
    _f("deploy-exactness-random", "deploy",
       "Reference and TVM kernels on four boards (random-weight artifacts, learned halting)",
       ["reports/bench/exactness-random/results.json"]),
    _f("deploy-exactness-handwritten", "deploy",
       "Hand-written kernels through the generated executor (random-weight artifacts)",
       ["reports/bench/exactness-random-handwritten/results.json"]),
    _f("deploy-whole", "deploy", "Reference vs TVM vs hand-written kernels, whole inference on M4 and M55",
       WHOLE_READS, f"{REPORT_DIR}/backends_whole_inference.png", may_miss=WHOLE_READS),
    _f("deploy-per-op", "deploy", "TVM vs hand-written per op family, whole inference (modeled cycles)",
       WHOLE_READS, may_miss=WHOLE_READS),
    _f("deploy-ecg-shapes", "deploy",
       "Reference vs TVM naive / default schedules at the ECG shapes (M4, random weights, early TVM strategy)",
       ["reports/bench/m4-kernels-ecg-shapes/results.json"]),
    _f("deploy-backends", "deploy",
       "TVM schedules (naive / default / tuned) vs hand-written kernels, whole inference (trained ECG)",
       ["reports/tune/cortex-m4/summary.json"]),
    _f("deploy-tuned-whole", "deploy", "Tuned TVM vs hand-written, whole inference on the M4 (current kernels)",
       ["reports/tune/cortex-m4/whole-inference-ecg/results.json"]),
    _f("deploy-kernels", "deploy", "Hand-written linear kernels per call at the model's shapes, vs the issue-8 targets",
       ["reports/kernels/handwritten/bench.json"]),
    _f("deploy-tuning", "deploy", "Tuning: per-kernel cycles naive / default / tuned",
       ["reports/tune/cortex-m4/summary.json"]),
    _f("deploy-boards", "deploy", "Latency and energy per board (fixed compute and learned halting)",
       [f"reports/halting/{s}/halting.json" for s in HALTING_STUDIES if s.startswith("ecg_w8a8")],
       f"{REPORT_DIR}/boards_latency_energy.png"),
    _f("halting-compare", "halting", "Learned halting vs fixed compute on the device",
       ["reports/halting/ecg_compare/compare.json"]
       + [f"reports/halting/{s}/halting.json" for s in HALTING_STUDIES],
       "reports/halting/ecg_w8a8_cortex-m4/pareto.png"),
    _f("gap9-deploy", "gap9", "GAP9: functional exactness, memory and modeled cost",
       [f"reports/gap9/{d[0]}/deploy.json" for d in GAP9_DEPLOYS]),
    _f("gap9-tuning", "gap9", "GAP9 tuning: cluster linear kernels naive / default / tuned (modeled)",
       ["reports/gap9/tune/summary.json"]),
)


# result directories under reports/ that no figure shows, each with the reason (docs/report.md lists them too);
# any other directory no figure reads is listed under Limits. Keys are fnmatch patterns.
LEFT_OUT = {
    "reports/quant": "README.md only: the commands (checked by agreement.py) and the verdicts on the published "
                     "findings, prose over the numbers of the quant-findings table",
    "reports/quant/*/cache/*": "the sweep's cache, one entry per checkpoint x configuration (and its QAT artifacts); "
                               "sweep.json holds every row of it",
    "reports/*/*/artifacts": "random-weight input artifacts a bench made (trm_tvm.quant.fixtures); its results.json "
                             "names them",
    "reports/kernels/handwritten/whole-inference": "the same whole inferences with random ECG-shaped weights, "
                                                   "superseded by whole-inference-ecg (trained weights); deploy-whole "
                                                   "and deploy-per-op show it only when that is absent",
}


def step_for(path: str) -> Step | None:
    return next((s for s in STEPS if path in s.outputs), None)


def figure_steps(fig: Figure) -> list[Step]:
    """The steps writing a figure's files, in data-flow order."""
    names = {s.name for p in fig.reads if (s := step_for(p))}
    return [s for s in STEPS if s.name in names]


def figure_command(fig: Figure) -> str:
    return " && ".join(c for s in figure_steps(fig) for c in s.commands)


def steps_of_section(section: str) -> list[Step]:
    names = {s.name for f in FIGURES if f.section == section for s in figure_steps(f)}
    return [s for s in STEPS if s.name in names]
