import numpy as np

from ecglens.metrics import evaluate_predictions, tune_thresholds


def test_tuned_threshold_maximises_f1():
    y = np.array([[0], [0], [1], [1], [1]])
    p = np.array([[0.1], [0.6], [0.4], [0.7], [0.9]])
    threshold = tune_thresholds(y, p)[0]
    assert threshold == 0.4  # predicts 0.4, 0.6, 0.7, 0.9 positive: F1 = 6/7, the best


def test_hand_computed_scores_and_no_positive_class():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    p = np.array([[0.9, 0.8], [0.2, 0.1], [0.6, 0.2], [0.1, 0.3]])
    result = evaluate_predictions(y, p, np.array([0.5, 0.5]), n_bootstrap=50, class_names=("A", "B"))
    a, b = result.per_class
    assert (a.tp, a.fp, a.fn, a.tn) == (1, 1, 1, 1)
    assert a.precision == 0.5 and a.recall == 0.5 and a.f1 == 0.5 and a.accuracy == 0.5 and a.auc == 0.75
    assert b.note == "no positives in this set" and b.auc is None and b.f1 is None and b.accuracy == 0.75
    assert result.macro_auc == 0.75 and result.average["f1"] == 0.5
    assert "n/a" in result.to_markdown() and "no positives" in result.to_markdown()
    low, high = a.ci95["accuracy"]
    assert 0 <= low <= 0.5 <= high <= 1
