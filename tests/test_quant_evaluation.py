"""Statistics of the quantisation reports: McNemar, per-token correctness, ECE, halting steps from q."""
import numpy as np

from trm_tvm.quant.drift import ece, g_halt_steps
from trm_tvm.quant.evaluation import compare, correct, mcnemar


def test_mcnemar_exact():
    a = np.array([True] * 10)
    assert mcnemar(a, ~a) == {"a_only": 10, "b_only": 0, "p_value": 2 * 0.5 ** 10}
    assert mcnemar(np.array([True, True, False, False]), np.array([True, False, True, False]))["p_value"] == 1.0
    assert mcnemar(a, a)["p_value"] == 1.0


def test_correct_per_token_needs_every_token():
    y = np.array([[1, 2, 3], [1, 2, 3]])
    pred = np.array([[1, 2, 3], [1, 0, 3]])
    assert correct(pred, y).tolist() == [True, False]
    assert correct(np.array([2, 1]), np.array([2, 2])).tolist() == [True, False]


def test_compare_counts_steps_and_halting():
    y = np.array([0, 1, 2, 0])
    fp = {"step_pred": np.array([[0, 0], [1, 1], [2, 0], [1, 0]]), "pred": np.array([0, 1, 2, 0]),
          "steps": np.array([1, 1, 1, 2])}
    q = {"step_pred": np.array([[0, 0], [0, 1], [2, 2], [1, 1]]), "pred": np.array([0, 1, 2, 1]),
         "steps": np.array([1, 2, 1, 2])}
    r = compare(fp, q, y)
    assert r["halting"]["fp"]["accuracy"] == 1.0 and r["halting"]["quant"]["accuracy"] == 0.75
    assert r["halting"]["mean_steps"] == {"fp": 1.25, "quant": 1.5}
    assert [s["quant"]["accuracy"] for s in r["fixed"]] == [0.5, 0.75]
    assert r["fixed"][1]["agreement"] == 0.5


def test_ece_and_halting_steps():
    conf = np.array([0.05] * 20 + [0.95] * 20)
    outcome = np.array([0] * 19 + [1] + [1] * 19 + [0])
    assert abs(ece(conf, outcome)) < 1e-12
    assert abs(ece(np.full(10, 0.9), np.zeros(10)) - 0.9) < 1e-12
    q = np.array([[5, 9, 0], [-3, -3, -3], [-1, 7, 9]])
    assert g_halt_steps(q, 5).tolist() == [1, 3, 2]
