import pytest
import torch

from ecglens.models import create_model, model_names


def test_resnet34_has_the_studys_parameter_count():
    model = create_model("resnet34", n_leads=12, n_classes=9)
    assert sum(p.numel() for p in model.parameters()) == 16_610_185


def test_features_head_split_and_any_length():
    model = create_model("resnet_tiny").eval()
    x = torch.randn(2, 12, 777)
    features = model.forward_features(x)
    assert features.shape[:2] == (2, 128)
    torch.testing.assert_close(model.forward_head(features), model(x))
    assert model.layer4 is not None and model.num_features == 256


def test_lead_subset_and_shape_check():
    model = create_model("resnet_tiny", n_leads=2, n_classes=3)
    assert model(torch.randn(1, 2, 500)).shape == (1, 3)
    with pytest.raises(ValueError, match="2 leads"):
        model(torch.randn(1, 12, 500))


def test_no_inplace_operations():
    model = create_model("resnet34")
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    assert len(model_names()) >= 3
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg")
