"""Perturbations and attacks: each has the documented effect on a known signal; attacks respect budgets,
climb their loss and hurt a model more than random noise of the same norm; ``ecglens robustness`` end to end."""

import json

import numpy as np
import pytest
import torch

from ecglens.cli import main
from ecglens.leads import LEAD_NAMES
from ecglens.models import create_model
from ecglens.models.attacks import attack_loss, band_limiter, fgsm, gaussian_smoother, pgd, shaped_pgd
from ecglens.noise import snr_db
from ecglens.perturb import NOISE_KINDS, SNR_LEVELS_DB, NotApplicable, Perturbation, RandomPerturbation


def _leads_from_electrodes(ra, la, ll, chest):
    """The 12 leads from electrode potentials (Einthoven, Goldberger; precordials against Wilson's terminal)."""
    wilson = (ra + la + ll) / 3
    return np.stack(
        [
            la - ra,
            ll - ra,
            ll - la,
            ra - (la + ll) / 2,
            la - (ra + ll) / 2,
            ll - (ra + la) / 2,
            *(v - wilson for v in chest),
        ]
    )


@pytest.fixture
def electrodes():
    rng = np.random.default_rng(0)
    return [rng.normal(0, 0.5, 500) for _ in range(3)], [rng.normal(0, 1, 500) for _ in range(6)]


@pytest.mark.parametrize("variant,swap", [("LA/RA", (0, 1)), ("LA/LL", (1, 2)), ("RA/LL", (0, 2))])
def test_a_limb_reversal_maps_leads_exactly_as_swapping_the_electrodes(electrodes, variant, swap):
    limbs, chest = electrodes
    signal = _leads_from_electrodes(*limbs, chest)
    swapped = list(limbs)
    swapped[swap[0]], swapped[swap[1]] = limbs[swap[1]], limbs[swap[0]]
    expected = _leads_from_electrodes(*swapped, chest)
    got = Perturbation("reversal", 0, variant).apply(signal, 500, LEAD_NAMES, np.random.default_rng(0))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_precordial_swap_exchanges_two_leads_only(electrodes):
    signal = _leads_from_electrodes(*electrodes[0], electrodes[1]).astype(np.float32)
    got = Perturbation("swap", 0, "V2/V3").apply(signal, 500, LEAD_NAMES, np.random.default_rng(0))
    np.testing.assert_array_equal(got[7], signal[8])
    np.testing.assert_array_equal(got[8], signal[7])
    np.testing.assert_array_equal(np.delete(got, [7, 8], 0), np.delete(signal, [7, 8], 0))
    with pytest.raises(NotApplicable, match="needs lead"):
        Perturbation("reversal", 0, "LA/RA").apply(signal[:2], 500, ("I", "II"), np.random.default_rng(0))


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_every_noise_kind_meets_its_snr_within_half_a_db(kind):
    rng = np.random.default_rng(1)
    signal = np.sin(np.linspace(0, 60, 5000))[None, :].repeat(12, 0) * rng.uniform(0.5, 1.5, (12, 1))
    for level in SNR_LEVELS_DB:
        noisy = Perturbation(kind, level).apply(signal, 500, LEAD_NAMES, np.random.default_rng(2))
        assert abs(snr_db(signal, noisy - signal) - level) < 0.5, (kind, level)


def test_faults_flat_leads_gain_rate_shift_and_crop():
    rng = np.random.default_rng(3)
    signal = rng.normal(0, 1, (12, 5000)).astype(np.float32)
    flat = Perturbation("missing", 4).apply(signal, 500, LEAD_NAMES, np.random.default_rng(4))
    zero = ~flat.any(axis=1)
    assert zero.sum() == 4 and np.array_equal(flat[~zero], signal[~zero])
    np.testing.assert_allclose(Perturbation("gain", 0.5).apply(signal, 500, LEAD_NAMES, rng), signal * 0.5)
    slow = Perturbation("rate", 10.0).apply(signal, 500, LEAD_NAMES, rng)  # declared 550 Hz: read as shorter
    assert abs(slow.shape[1] - 5000 / 1.1) <= 2
    assert Perturbation("shift", 2.0).apply(signal, 500, LEAD_NAMES, rng).shape == (12, 4000)
    assert Perturbation("crop", 2.5).apply(signal, 500, LEAD_NAMES, rng).shape == (12, 1250)
    with pytest.raises(ValueError, match="unknown perturbation"):
        Perturbation("hum", 3)


def test_random_perturbation_keeps_the_length_and_is_seeded():
    signal = np.random.default_rng(5).normal(0, 1, (12, 1000)).astype(np.float32)
    augment = RandomPerturbation(("noise", "faults"), probability=1.0)
    outputs = [augment.apply(signal, 100, LEAD_NAMES, np.random.default_rng([7, i])) for i in range(20)]
    assert all(o.shape == signal.shape for o in outputs)
    assert sum(not np.array_equal(o, signal) for o in outputs) >= 15
    again = augment.apply(signal, 100, LEAD_NAMES, np.random.default_rng([7, 3]))
    np.testing.assert_array_equal(again, outputs[3])
    with pytest.raises(ValueError, match="unknown augmentation family"):
        RandomPerturbation(("blur",))


@pytest.fixture(scope="module")
def model_and_input():
    torch.manual_seed(0)
    model = create_model("resnet_tiny", 12, 3).eval()
    x = torch.randn(4, 12, 500) * 0.3
    with torch.no_grad():
        reference = (torch.sigmoid(model(x)) > 0.5).float()
    return model, x, reference


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_respects_its_budget_and_never_lowers_its_loss(model_and_input, norm):
    model, x, reference = model_and_input
    eps = 0.01 if norm == "linf" else 0.5
    result = pgd(model, x, reference, eps, norm, steps=8)
    delta = (result.inputs - x).flatten(1)
    size = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps * (1 + 1e-5)
    assert all(b >= a - 1e-7 for a, b in zip(result.loss_history, result.loss_history[1:], strict=False))
    assert result.loss_history[-1] > result.loss_history[0]  # it climbs
    with torch.no_grad():
        reached = float(attack_loss(model, result.inputs, reference).mean())
    assert reached == pytest.approx(result.loss_history[-1], rel=1e-4)


def test_a_zero_budget_changes_nothing_and_fgsm_is_one_signed_step(model_and_input):
    model, x, reference = model_and_input
    assert torch.equal(pgd(model, x, reference, 0.0).inputs, x)
    step = fgsm(model, x, reference, 0.005).inputs - x
    assert torch.allclose(step.abs()[step != 0], torch.tensor(0.005), atol=1e-7)
    with pytest.raises(ValueError, match="unknown norm"):
        pgd(model, x, reference, 0.1, "l1")


@pytest.mark.parametrize("rate", [100.0, 500.0])
def test_smooth_and_band_limited_attacks_keep_their_power_below_40_hz_and_their_budget(model_and_input, rate):
    """Han et al.'s point, measured: plain PGD puts much of its power above 40 Hz, the smooth and band-limited
    attacks at most 5 %; all stay within the L-inf budget and climb their loss."""
    from ecglens.robustness import SMOOTH_SIGMA_MS, attack_spectrum

    model, x, reference = model_and_input
    eps = 0.025
    clean = list(x.numpy())
    shares = {}
    for name, shape in (
        ("smooth", gaussian_smoother(SMOOTH_SIGMA_MS / 1000 * rate)),
        ("pgd-band", band_limiter(rate, 0.5, 40.0)),
    ):
        result = shaped_pgd(model, x, reference, eps, shape, steps=6)
        delta = result.inputs - x
        assert float(delta.abs().max()) <= eps * (1 + 1e-5) and float(delta.abs().max()) > eps / 4
        assert result.loss_history[-1] > result.loss_history[0]
        assert all(b >= a - 1e-7 for a, b in zip(result.loss_history, result.loss_history[1:], strict=False))
        shares[name] = attack_spectrum(name, 25.0, clean, list(result.inputs.numpy()), rate).share_above_40hz
    plain = attack_spectrum("pgd", 25.0, clean, list(pgd(model, x, reference, eps, steps=6).inputs.numpy()), rate)
    assert shares["smooth"] <= 0.05 and shares["pgd-band"] <= 0.05, shares
    assert plain.share_above_40hz > 0.15  # the high-frequency attack, for contrast
    assert torch.equal(shaped_pgd(model, x, reference, 0.0, band_limiter(rate)).inputs, x)


def test_flipping_budgets_are_survival_curves_with_censored_records():
    from ecglens.robustness import FLIP_GRID_UV, FlipBudget

    budgets = (5.0, None, 25.0, None, None, 1.0)
    flip = FlipBudget("STD", "smooth", 0.01, FLIP_GRID_UV, (True, True, True, False, False, False), budgets)
    assert flip.n_records == 6 and flip.n_positive == 3 and flip.n_flipped == 3
    curve = dict(zip(FLIP_GRID_UV, flip.survival(), strict=True))
    assert curve[1.0] == 5 / 6 and curve[25.0] == 3 / 6 and curve[250.0] == 3 / 6  # censored stay at the end
    assert flip.median_text() == "25 uV" and flip.median_text(True) == "25 uV"
    assert flip.median_uv(False) is None and flip.median_text(False) == ">250 uV"  # never reached one half
    data = flip.to_dict()
    assert data["survival_negative"][-1] == 2 / 3 and data["median_negative"] == ">250 uV"
    empty = FlipBudget("PAC", "smooth", 0.3, FLIP_GRID_UV, (False,), (None,))
    assert empty.median_text(True) == "n/a"


@pytest.mark.slow
def test_robustness_end_to_end_attacks_hurt_more_than_random_noise(tiny_run, tmp_path, capsys):
    import shutil

    # the tiny bundle has too few positives to validate any class; here every class but STE counts as validated,
    # so there are decisions to attack, and STE, never decided, has no flipping budget
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_run.bundle, bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["not_validated"] = [row for row in meta["not_validated"] if row[0] == "STE"]
    (bundle / "bundle.json").write_text(json.dumps(meta))
    out = tmp_path / "rob"
    assert (
        main(
            [
                "-q",
                "robustness",
                "--checkpoint",
                str(bundle),
                "--data",
                str(tiny_run.cache),
                "--split",
                "train",
                "--quick",
                "--n",
                "12",
                "--n-flip",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "robustness.json").read_text())  # strict JSON: no NaN
    conditions = {
        (c["kind"], c["level"]): c for c in result["conditions"] if c["family"] != "adversarial, then filtered"
    }
    for eps in (10.0, 50.0):
        assert conditions[("pgd", eps)]["changed"] > conditions[("random", eps)]["changed"]
    assert conditions[("reversal", 0.0)]["label"] == "LA/RA electrode reversal"
    assert {f["name"] for f in result["flip_budgets"]} == {"SNR", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC", "STD"}
    assert result["left_out"] and result["left_out"][0].startswith("STE: ")
    for flip in result["flip_budgets"]:  # positives and negatives drawn separately, at most 3 of each
        assert flip["attack"] == "smooth" and flip["n_positive"] <= 3 and flip["n_records"] - flip["n_positive"] <= 3
        assert len(flip["survival"]) == len(flip["grid_uv"]) and flip["median"].endswith("uV")
    assert ("smooth", 50.0) in conditions and ("pgd-band", 50.0) in conditions
    filtered = [c for c in result["conditions"] if c["family"] == "adversarial, then filtered"]
    assert len(filtered) == 2 * 6 and all("then the 0.5-40 Hz filter" in c["label"] for c in filtered)
    spectra = {s["kind"]: s["share_above_40hz"] for s in result["spectra"]}
    assert spectra["smooth"] <= 0.05 and spectra["pgd-band"] <= 0.05
    for name in (
        "robustness.csv",
        "robustness_curves.png",
        "adversarial_example.png",
        "robustness.html",
        "attack_spectra.png",
        "flipping_budgets.png",
    ):
        assert (out / name).stat().st_size > 0
    assert "Worst adversarial" in (out / "robustness.html").read_text()
    assert "PGD (high-frequency), 50 uV L-inf" in capsys.readouterr().out
    empty = tmp_path / "not-a-cache"
    empty.mkdir()
    assert (
        main(["robustness", "--checkpoint", tiny_run.bundle, "--data", str(empty), "--out", str(tmp_path / "x")]) == 1
    )
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_training_with_perturbation_augmentation_and_pgd_adversarial_training(tiny_run, tmp_path):
    from ecglens.data import CacheDataset, split_caches
    from ecglens.data.cache import EcgCache
    from ecglens.preprocess import LengthPolicy
    from ecglens.train.loop import TrainConfig, fit

    cache = EcgCache(tiny_run.cache)
    items = split_caches([cache]).train[:6]
    plain = CacheDataset([cache], items, LengthPolicy("crop", 2.0), True, seed=1)
    augmented = CacheDataset(
        [cache],
        items,
        LengthPolicy("crop", 2.0),
        True,
        seed=1,
        perturbation=RandomPerturbation(("noise", "faults"), probability=1.0),
    )
    assert sum(not torch.equal(plain[i][0], augmented[i][0]) for i in range(len(items))) >= 5
    assert all(plain[i][0].shape == augmented[i][0].shape for i in range(len(items)))
    config = TrainConfig(model="resnet_tiny", epochs=1, batch_size=8, augment=("noise", "faults"), adversarial="pgd:25")
    result = fit([tiny_run.cache], tmp_path / "run", config, progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["augment"] == ["noise", "faults"] and saved["adversarial"] == "pgd:25"
    assert result.epochs_run == 1
    with pytest.raises(ValueError, match="pgd:EPS"):
        TrainConfig(adversarial="pgd:-3")


def test_mains_hum_does_not_exist_below_twice_its_frequency():
    signal = np.random.default_rng(8).normal(0, 1, (12, 1000))
    for kind in ("powerline50", "powerline60"):
        with pytest.raises(NotApplicable, match="Nyquist"):
            Perturbation(kind, 12.0).apply(signal, 100, LEAD_NAMES, np.random.default_rng(0))
    hum = Perturbation("powerline60", 12.0).apply(signal, 500, LEAD_NAMES, np.random.default_rng(0)) - signal
    spectrum = np.abs(np.fft.rfft(hum[0]))
    assert np.argmax(spectrum) * 500 / 1000 == pytest.approx(60.0)
