"""The GPU path: training at 500 Hz with mixed precision, AMP against fp32, resume, predict and explain on CUDA.

Every test but the last needs a CUDA GPU and skips with that reason without one. Tolerances:
- AMP (bf16, or fp16 with a grad scaler) against fp32: probabilities within 0.02 (bf16 keeps 8 bits of
  mantissa; a ResNet-34's logits move by a few hundredths at most);
- resume on CUDA: cuDNN autotuning may pick non-deterministic backward kernels (atomic adds), so a resumed
  run matches an uninterrupted one to float rounding (rtol 1e-3, atol 1e-4), not bit for bit as on CPU;
- CUDA against CPU (fp32): probabilities within 1e-4, Grad-CAM maps within 1e-3 of their peak.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import fit_killed_after_first_epoch, known_signal, write_challenge_mat
from ecglens.cli import main
from ecglens.data.cache import build_cache
from ecglens.io import parse_source
from ecglens.preprocess import LengthPolicy
from ecglens.train.loop import TrainConfig, fit

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
CONFIG = TrainConfig(
    model="resnet34", epochs=2, batch_size=16, seed=1, policy=LengthPolicy("crop", 10.0), device="cuda"
)


@pytest.fixture(scope="module")
def cache500(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    data = root / "data"
    data.mkdir()
    for i in range(64):
        signal = known_signal(6000, seed=i)
        if i % 2:
            signal = signal + 0.5 * np.sin(2 * np.pi * 8 * np.arange(6000) / 500)[None, :]
        write_challenge_mat(data, f"G{i:03d}", np.round(signal, 3), dx="164889003" if i % 2 else "426783006")
    build_cache([parse_source(f"challenge:{data}")], root / "cache", 500, workers=1, progress=False)
    return root / "cache"


@pytest.mark.cuda
@needs_cuda
def test_two_epochs_at_500_hz_with_amp(cache500, tmp_path):
    result = fit([cache500], tmp_path / "run", CONFIG, progress=False)
    assert result.epochs_run == 2 and result.best_val_macro_auc is not None
    weights = load_file(str(tmp_path / "run" / "best" / "model.safetensors"))
    assert all(torch.isfinite(w.float()).all() for w in weights.values())


@pytest.mark.cuda
@needs_cuda
def test_amp_logits_agree_with_fp32():
    from ecglens.models import create_model
    from ecglens.train.loop import _autocast

    torch.manual_seed(0)
    model = create_model("resnet34").cuda().eval()
    x = torch.from_numpy(np.stack([known_signal(5000, seed=s) for s in range(8)]).astype(np.float32)).cuda()
    with torch.no_grad():
        full = torch.sigmoid(model(x)).cpu()
        with _autocast(torch.device("cuda"), True):
            mixed = torch.sigmoid(model(x).float()).cpu()
    torch.testing.assert_close(mixed, full, rtol=0, atol=0.02)


@pytest.mark.cuda
@needs_cuda
def test_resume_on_cuda_matches_within_rounding(cache500, tmp_path):
    fit([cache500], tmp_path / "full", CONFIG, progress=False)

    fit_killed_after_first_epoch(cache500, tmp_path / "cut", CONFIG)
    fit([cache500], tmp_path / "cut", CONFIG, resume=True, progress=False)
    full = load_file(str(tmp_path / "full" / "state" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "cut" / "state" / "model.safetensors"))
    for key in full:
        torch.testing.assert_close(resumed[key].float(), full[key].float(), rtol=1e-3, atol=1e-4)


@pytest.mark.cuda
@needs_cuda
def test_predict_and_explain_on_cuda_match_cpu(tiny_run):
    from ecglens.explain.attribution import gradcam
    from ecglens.io import read_ref, scan_source
    from ecglens.predict import Predictor

    records = [read_ref(ref) for ref in scan_source(parse_source(f"challenge:{tiny_run.data}")).refs[:6]]
    cpu, gpu = Predictor(tiny_run.bundle, "cpu"), Predictor(tiny_run.bundle, "cuda")
    p_cpu = np.stack([s.probabilities for s in cpu.score_records(records)])
    p_gpu = np.stack([s.probabilities for s in gpu.score_records(records)])
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=0, atol=1e-4)
    item, _ = cpu.prepare(records[0])
    x = torch.from_numpy(item.signal)[None]
    on_cpu = gradcam(cpu.model, x, 1)
    on_gpu = gradcam(gpu.model, x.cuda(), 1)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-3 * max(np.abs(on_cpu).max(), 1e-6))


def test_device_cuda_without_a_gpu_is_one_line(tiny_run, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(
        [
            "train",
            "--data",
            str(tiny_run.cache),
            "--out",
            str(tmp_path / "r"),
            "--model",
            "resnet_tiny",
            "--epochs",
            "1",
            "--device",
            "cuda",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "CUDA is not available" in err


def test_default_workers_follow_the_device():
    from ecglens.train.loop import default_workers

    assert default_workers(torch.device("cpu")) == 0
    assert 0 <= default_workers(torch.device("cuda")) <= 4
    assert replace(CONFIG, workers=None).workers is None
