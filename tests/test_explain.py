"""Explanations: properties (completeness, efficiency, hand-computed Grad-CAM) and faithfulness helpers."""

import json

import numpy as np
import pytest
import torch

from conftest import known_signal, write_wfdb
from ecglens.cli import main
from ecglens.explain import exact_lead_shapley, gradcam, gradient_shap, sampled_lead_shapley, threshold_map
from ecglens.explain.attribution import gradient_shap_all_classes
from ecglens.explain.faithfulness import deletion_insertion, localisation, randomized_copy, rank_correlation
from ecglens.explain.inputs import open_caches, training_background
from ecglens.explain.records import explain_inputs
from ecglens.io import read_record
from ecglens.models import class_probabilities, create_model
from ecglens.predict import Predictor


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = create_model("resnet_tiny", n_leads=12, n_classes=9)
    # A few training steps so BN statistics and outputs are not trivial.
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(3):
        x = torch.randn(8, 12, 256)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), (torch.rand(8, 9) > 0.5).float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_gradcam_equals_hand_computation(model):
    x = torch.randn(2, 12, 256)
    target = 4
    captured = {}
    handle = model.layer4.register_forward_hook(lambda m, i, o: captured.setdefault("a", o))
    logit = model(x)[:, target]  # Grad-CAM explains the score before the output non-linearity
    handle.remove()
    activations = captured["a"]
    gradients = torch.autograd.grad(logit.sum(), activations)[0]
    weights = gradients.mean(dim=2, keepdim=True)
    cam = torch.relu((weights * activations).sum(dim=1, keepdim=True))
    expected = torch.nn.functional.interpolate(cam, size=256, mode="linear")[:, 0].detach().numpy()
    result = gradcam(model, x, target)
    assert result.shape == x.shape
    np.testing.assert_allclose(result[:, 0], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(result[:, 0], result[:, 11])


def test_shap_completeness(model):
    torch.manual_seed(1)
    x = torch.randn(1, 12, 128)
    background = torch.randn(4, 12, 128) * 0.5
    values = gradient_shap(model, x, 2, background, n_samples=400, seed=3)
    with torch.no_grad():
        gap = float(torch.sigmoid(model(x))[0, 2] - torch.sigmoid(model(background))[:, 2].mean())
    # Expected gradients are complete in expectation; 400 samples keep the error within 10 % + 0.005.
    assert abs(values.sum() - gap) <= 0.1 * abs(gap) + 0.005, (values.sum(), gap)


def test_shap_all_classes_is_complete_for_every_class(model):
    torch.manual_seed(2)
    x = torch.randn(1, 12, 128)
    background = torch.randn(4, 12, 128) * 0.5
    together = gradient_shap_all_classes(model, x, background, 9, n_samples=400, seed=0)
    assert together.shape == (1, 9, 12, 128)
    with torch.no_grad():
        gaps = (torch.sigmoid(model(x))[0] - torch.sigmoid(model(background)).mean(dim=0)).numpy()
    for k, gap in enumerate(gaps):
        assert abs(together[0, k].sum() - gap) <= 0.1 * abs(gap) + 0.005, (k, together[0, k].sum(), gap)


def _long_record(directory):
    """A 15-s, 500-Hz record whose last 5 s differ from its first 10 (so a 10-s window scores differently)."""
    signal = known_signal(7500, seed=5)
    t = np.arange(2500) / 500
    signal[:, 5000:] += np.round(1.2 * np.sin(2 * np.pi * 7 * t), 3)[None, :]
    return write_wfdb(directory, "long", signal, fs=500)


def test_explanations_explain_the_input_predict_scored(tiny_run, tmp_path, capsys):
    header = _long_record(tmp_path)
    assert main(["predict", "--checkpoint", tiny_run.bundle, str(header), "--out", str(tmp_path / "p")]) == 0
    predicted = json.loads((tmp_path / "p" / "predictions.jsonl").read_text().splitlines()[0])["probabilities"]
    assert main(["explain", "gradcam", "--checkpoint", tiny_run.bundle, "--records", str(header), "--class", "AF",
                 "--out", str(tmp_path / "e")]) == 0
    explained = json.loads((tmp_path / "e" / "gradcam.json").read_text())
    assert explained and all(row["probability"] == pytest.approx(predicted[row["class"]], abs=1e-6)
                             for row in explained)


def test_shap_is_complete_against_the_predicted_probability(tiny_run, tmp_path):
    predictor = Predictor(tiny_run.bundle, "cpu")
    meta = predictor.meta
    (scored,) = predictor.score_records([read_record(_long_record(tmp_path))])
    assert scored.input.n_samples == 15 * 250  # the whole record at the model's rate, as scored
    background = training_background(open_caches([tiny_run.cache], meta), meta, 8)
    af = meta.class_names.index("AF")
    (explanation,) = explain_inputs(predictor.model, meta, [scored.input], "shap", "AF", background, n_samples=300,
                                    probabilities=scored.probabilities[None])
    base = background.tensor(scored.input.n_samples)
    expected = scored.probabilities[af] - class_probabilities(predictor.model, list(base.numpy()))[:, af].mean()
    assert abs(explanation.values.sum() - expected) <= 0.1 * abs(expected) + 0.005
    again = class_probabilities(predictor.model, [explanation.input.signal])[0]
    np.testing.assert_allclose(again, scored.probabilities, atol=1e-6)
    (cam,) = explain_inputs(predictor.model, meta, [scored.input], "gradcam", "AF")
    np.testing.assert_allclose(cam.probabilities, scored.probabilities, atol=1e-6)
    assert cam.values.shape == scored.input.signal.shape


def test_exact_lead_shapley_efficiency_and_dummy(model):
    x = torch.randn(12, 128)
    values = exact_lead_shapley(model, x, batch_size=512)
    with torch.no_grad():
        full, empty = torch.sigmoid(model(torch.stack([x, torch.zeros_like(x)]))).numpy()
    np.testing.assert_allclose(values.sum(axis=0), full - empty, atol=1e-6)
    # A lead the network cannot see gets exactly zero.
    blind = create_model("resnet_tiny")
    blind.load_state_dict(model.state_dict())
    with torch.no_grad():
        blind.conv1.weight[:, 5] = 0
    np.testing.assert_allclose(exact_lead_shapley(blind.eval(), x)[5], 0, atol=1e-7)


def test_sampled_lead_shapley_is_efficient_and_close(model):
    x = torch.randn(12, 128)
    exact = exact_lead_shapley(model, x, batch_size=512)
    sampled = sampled_lead_shapley(model, x, n_permutations=200, seed=1)
    np.testing.assert_allclose(sampled.sum(axis=0), exact.sum(axis=0), atol=1e-6)
    assert np.abs(sampled - exact).max() <= 0.2 * np.abs(exact).max() + 1e-4


def test_explainers_leave_model_and_input_unchanged(model):
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 12, 128)
    copy = x.clone()
    gradcam(model, x, 1)
    gradient_shap(model, x, 1, torch.randn(2, 12, 128), n_samples=2)
    exact_lead_shapley(model, x[0])
    assert model.training
    model.eval()
    assert torch.equal(x, copy)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_threshold_map_keeps_top_five_percent():
    values = np.arange(200, dtype=float)[None]
    shown = threshold_map(values, 95)
    assert (shown > 0).sum() == 10 and shown.max() == 1.0


def test_deletion_of_everything_reaches_the_baseline(model):
    x = torch.randn(12, 128)
    attribution = np.abs(np.random.default_rng(0).normal(size=(12, 128)))
    curves = deletion_insertion(model, x, 3, attribution, steps=4)
    with torch.no_grad():
        full, empty = torch.sigmoid(model(torch.stack([x, torch.zeros_like(x)])))[:, 3].numpy()
    assert curves.deletion[0] == pytest.approx(full, abs=1e-6)
    assert curves.deletion[-1] == pytest.approx(empty, abs=1e-6)
    assert curves.insertion[0] == pytest.approx(empty, abs=1e-6)
    assert curves.insertion[-1] == pytest.approx(full, abs=1e-6)
    leads = deletion_insertion(model, x, 3, attribution.sum(axis=1), steps=12, unit="lead")
    assert leads.deletion.shape == (13,)


def test_localisation_and_sanity_helpers(model):
    mask = np.zeros((2, 10), bool)
    mask[0, 3:5] = True
    attribution = np.zeros((2, 10))
    attribution[0, 4] = 1.0
    auroc, hit = localisation(attribution, mask)
    assert hit and auroc == pytest.approx(0.75)  # one mask point above every other point, one tied
    assert localisation(attribution, np.zeros((2, 10), bool)) == (None, None)
    random_model = randomized_copy(model)
    assert not torch.equal(random_model.conv1.weight, model.conv1.weight)
    assert rank_correlation(np.arange(10), np.arange(10)) == pytest.approx(1.0)
    assert rank_correlation(np.ones(10), np.arange(10)) == 0.0


def test_gradcam_of_a_certain_prediction_is_not_blank(model):
    x = torch.randn(1, 12, 256)
    target = next(k for k in range(9) if gradcam(model, x, k).max() > 0)
    certain = create_model("resnet_tiny")
    certain.load_state_dict(model.state_dict())
    with torch.no_grad():  # a bias shift leaves every gradient as it was but saturates the probability
        certain.fc.bias[target] += 60
        assert torch.sigmoid(certain.eval()(x))[0, target] == 1.0
    np.testing.assert_allclose(gradcam(certain, x, target), gradcam(model, x, target), rtol=1e-5, atol=1e-7)


def test_guided_gradcam_is_gradcam_times_the_guided_gradient_per_lead(model):
    from ecglens.explain.attribution import guided_gradcam

    x = torch.randn(1, 12, 256, generator=torch.Generator().manual_seed(3))
    target = int(np.argmax([gradcam(model, x, k).max() for k in range(9)]))  # a class with positive evidence
    values = guided_gradcam(model, x, target)
    cam = gradcam(model, x, target)
    assert values.shape == x.shape and cam.max() > 0
    assert not np.allclose(values[0, 0], values[0, 5])  # lead-resolved, unlike Grad-CAM
    assert np.all(values[cam == 0] == 0)  # zero wherever Grad-CAM is zero: it only refines Grad-CAM's times


def test_population_normalised_view_is_relative_to_the_class_average():
    from ecglens.explain.population import PopulationImportance

    matrix = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [np.nan] * 3])
    result = PopulationImportance(matrix, (4, 6, 0), matrix, ("A", "B", "C"), ("I", "II", "V1"))
    relative = result.relative()
    np.testing.assert_allclose(np.nanmean(relative[:2], axis=0), 1.0)  # the average over classes is 1
    np.testing.assert_allclose(relative[0], [0.5 / 0.35, 1.0, 0.2 / 0.35])
    assert result.to_dict()["relative_to_average"][2] == [None, None, None]
