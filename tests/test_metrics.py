import numpy as np
import pytest

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


def test_wilson_interval_against_hand_values_and_small_sets():
    from ecglens.metrics import wilson_interval

    low, high = wilson_interval(8, 10)  # Wilson 1927 / Newcombe 1998: 8 of 10 -> 0.490 to 0.943
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert wilson_interval(3, 3)[0] < 0.5 and wilson_interval(3, 3)[1] == 1.0  # not the bootstrap's [1, 1]
    assert wilson_interval(0, 0) is None


def test_small_classes_and_fragile_thresholds_are_flagged():
    from ecglens.metrics import threshold_flag

    y = np.zeros((40, 2))
    y[:3, 0] = 1
    y[:20, 1] = 1
    p = np.random.default_rng(0).uniform(size=(40, 2))
    result = evaluate_predictions(y, p, np.array([0.01, 0.5]), n_bootstrap=20, class_names=("A", "B"))
    a, b = result.per_class
    assert any("only 3 positives" in f for f in a.flags) and any("below 0.05" in f for f in a.flags)
    assert b.flags == ()
    assert a.ci95["recall"][0] > 0 or a.recall == 0  # Wilson: a 3-positive recall is an interval, not a point
    assert threshold_flag(0.0).startswith("threshold at 0") and threshold_flag(1.0).startswith("threshold at 1")
    assert "only 3 positives" in result.to_markdown() and result.table_rows()[0]["flags"]


def test_the_html_table_shows_intervals_thresholds_their_origin_and_flags():
    from ecglens.report.html import evaluation_table

    y = np.zeros((30, 1))
    y[:4, 0] = 1
    p = np.linspace(0, 1, 30)[:, None]
    result = evaluate_predictions(y, p, np.array([0.02]), n_bootstrap=20, class_names=("A",))
    table = evaluation_table(result, "F1-optimal on the val split of x (12 records)")
    assert "F1-optimal on the val split of x (12 records)" in table and "0.020" in table
    assert "only 4 positives" in table and "below 0.05" in table and "Wilson" in table
    assert table.count("<small>[") >= 4  # precision, recall, accuracy (Wilson) and the average's intervals


def test_calibration_error_and_brier_by_hand():
    from ecglens.metrics import brier_scores, expected_calibration_error

    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.9], [0.9], [0.2], [0.2]])  # two bins: 0.9 with half positive, 0.2 with half positive
    # |0.5 - 0.9| * 2/4 + |0.5 - 0.2| * 2/4 = 0.2 + 0.15
    assert expected_calibration_error(y, p)[0] == pytest.approx(0.35)
    assert brier_scores(y, p)[0] == pytest.approx((0.01 + 0.81 + 0.64 + 0.04) / 4)
    perfect = np.array([[1.0], [0.0], [1.0], [0.0]])
    assert expected_calibration_error(y, perfect)[0] == 0 and brier_scores(y, perfect)[0] == 0


def test_fitted_temperature_recovers_a_known_one():
    from ecglens.train.calibrate import fit_temperatures

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 2))
    y = rng.random((20000, 2)) < 1 / (1 + np.exp(-logits / np.array([2.5, 1.0])))  # over-confident by 2.5, exact
    temperatures = fit_temperatures(y, logits)
    assert temperatures[0] == pytest.approx(2.5, rel=0.05) and temperatures[1] == pytest.approx(1.0, rel=0.05)
    assert fit_temperatures(np.zeros((10, 1)), rng.normal(size=(10, 1)))[0] == 1.0  # nothing to fit


def test_out_of_scope_table_counts_decisions_on_records_with_no_class():
    from ecglens.metrics import out_of_scope_table

    y = np.array([[1, 0], [0, 0], [0, 0], [0, 0], [0, 1]])
    decided = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [1, 1]], bool)
    table = out_of_scope_table(y, decided, ("SNR", "AF"))
    assert table.n_records == 3 and table.any_class == 2 and table.normal == "SNR"
    called, share, interval = table.false_normal
    assert (called, share) == (1, 1 / 3) and interval[0] < 1 / 3 < interval[1]
    assert table.to_dict()["false_normal_rate"] == 1 / 3
    assert out_of_scope_table(y[:1], decided[:1], ("SNR", "AF")).n_records == 0


def test_sensitivity_threshold_is_the_most_specific_point_with_that_recall():
    from ecglens.metrics import sensitivity_threshold

    y = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    p = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1, 0.88, 0.2])
    t = sensitivity_threshold(y, p, 0.9)
    assert t == 0.3 and ((p >= t) & (y == 1)).sum() / 10 >= 0.9 and ((p >= 0.31) & (y == 1)).sum() / 10 < 0.9
    assert sensitivity_threshold(np.zeros(3), np.ones(3), 0.9) is None


def test_a_class_that_is_never_decided_has_the_decision_metrics_of_no_decision():
    from ecglens.metrics import evaluate_predictions

    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.8, 0.9], [0.1, 0.7], [0.2, 0.1]])
    result = evaluate_predictions(y, p, np.array([0.5, 0.5]), class_names=("SNR", "STE"), n_bootstrap=0, never=["STE"])
    ste = result.class_metrics("STE")
    assert (ste.tp, ste.fp, ste.recall) == (0, 0, 0.0) and ste.auc == 1.0 and "never decided" in ste.note
    assert result.class_metrics("SNR").recall == 1.0


@pytest.mark.slow
def test_the_macro_interval_is_over_one_class_set_or_not_given():
    """Issue 38: the macro bootstrap averaged different class sets across resamples: a class with one positive
    dropped out of the resamples that missed it, and the interval mixed averages over one class with averages
    over two (here class A's single positive is ranked last, AUC 0, and class B is perfect: the old interval
    reached 1.0). Now the interval is over both classes in every resample or not given, and the table says why;
    with enough positives it is given."""
    rng = np.random.default_rng(0)
    n = 50
    truth = np.zeros((n, 2))
    truth[0, 0] = 1
    truth[: n // 2, 1] = 1
    prob = np.column_stack([np.where(truth[:, 0] == 1, 0.0, rng.uniform(0.1, 1, n)), truth[:, 1] * 0.8 + 0.1])
    result = evaluate_predictions(truth, prob, np.array([0.5, 0.5]), class_names=("A", "B"), n_bootstrap=300)
    assert result.average["auc"] == pytest.approx(0.5) and "auc" not in result.average_ci95
    assert "No interval for the average" in result.to_markdown()
    truth[: n // 2, 0] = 1  # enough positives: the interval is given, over both classes
    prob[:, 0] = truth[:, 0] * 0.5 + rng.uniform(0, 0.5, n)
    result = evaluate_predictions(truth, prob, np.array([0.5, 0.5]), class_names=("A", "B"), n_bootstrap=300)
    low, high = result.average_ci95["auc"]
    assert low <= result.average["auc"] <= high < 1.0 + 1e-9 and "No interval" not in result.to_markdown()


def test_a_macro_average_that_is_undefined_has_no_interval_and_no_warning():
    """With no class defined (no positives anywhere), the average and its interval are None, quietly."""
    truth = np.zeros((6, 2))
    result = evaluate_predictions(truth, np.full((6, 2), 0.3), np.array([0.5, 0.5]), n_bootstrap=20)
    assert result.average["auc"] is None and "auc" not in result.average_ci95
