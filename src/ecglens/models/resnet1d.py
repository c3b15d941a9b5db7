"""The 1D ResNet of Zhang et al. 2020 ("Interpretable deep learning for automatic diagnosis of 12-lead ECG").

Differences from the published code are only those gradient explainers need: every ReLU is its own
non-in-place module and the residual sum is ``out + identity`` (shap and captum report wrong or failing
attributions with in-place ReLU and ``out += identity``). Parameter count and outputs are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ecglens.models.config import ResNetConfig


class MaxPool1d(nn.MaxPool1d):
    """``nn.MaxPool1d`` computed through ``max_pool2d`` on a unit height: the same values, but
    ``torch.export`` keeps the length dynamic (its 1-D max-pool specialises it), so ONNX models take
    records of any length."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size, stride, padding = (
            int(v if isinstance(v, int) else v[0]) for v in (self.kernel_size, self.stride, self.padding)
        )
        pooled = nn.functional.max_pool2d(x.unsqueeze(2), (1, size), (1, stride), (0, padding))
        return pooled.squeeze(2)


class BasicBlock1d(nn.Module):
    """Two kernel-7 convolutions with batch norm, ReLU and dropout between them, plus a shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dropout: float = 0.2, groups: int = 1):
        super().__init__()
        self.conv1 = nn.Conv1d(
            in_channels, channels, kernel_size=7, stride=stride, padding=3, bias=False, groups=groups
        )
        self.bn1 = nn.BatchNorm1d(channels)
        self.relu1 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=7, stride=1, padding=3, bias=False, groups=groups)
        self.bn2 = nn.BatchNorm1d(channels)
        self.relu2 = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv1d(in_channels, channels, kernel_size=1, stride=stride, bias=False, groups=groups),
                nn.BatchNorm1d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.dropout(self.relu1(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class ResNet1d(nn.Module):
    """conv k15 s2 -> BN -> ReLU -> max-pool -> 4 stages -> [global avg ; global max] -> linear.

    Input: batch x leads x samples (any length >= 32). Output: batch x classes logits.
    ``layer4`` is the end of the 4th residual stage (the Grad-CAM layer).
    """

    temperature: torch.Tensor
    member_bias: torch.Tensor

    def __init__(self, config: ResNetConfig):
        super().__init__()
        if config.n_leads < 1 or config.n_classes < 1:
            raise ValueError(f"n_leads and n_classes must be positive, got {config.n_leads}, {config.n_classes}")
        if not 1 <= config.members <= 8:
            raise ValueError(f"members must be 1-8, got {config.members}")
        self.config = config
        members = config.members
        width = config.width * members
        self.conv1 = nn.Conv1d(config.n_leads, width, kernel_size=15, stride=2, padding=7, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.relu = nn.ReLU()
        self.maxpool = MaxPool1d(kernel_size=3, stride=2, padding=1)
        stages = []
        in_channels = width
        for i, n_blocks in enumerate(config.layers):
            channels = width * 2**i
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock1d(in_channels, channels, stride, config.dropout, members))
                in_channels = channels
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # The published code defines this dropout but its forward never applies it; kept for parity.
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(in_channels * 2, config.n_classes)
        self.num_features = in_channels * 2
        # Per-class temperature scaling (1: uncalibrated). Not a weight: a bundle's metadata carries it, so the
        # safetensors file of a calibrated model is that of the trained one.
        self.register_buffer("temperature", torch.ones(config.n_classes), persistent=False)
        if members > 1:  # each member's own bias, for its own logit (`member_logits`); the output uses their mean
            self.register_buffer("member_bias", torch.zeros(members, config.n_classes))

    def set_temperature(self, temperatures) -> None:
        """Divide each class's logit by its temperature from now on (fitted on validation; see
        `ecglens.train.calibrate`); every output of the model, ONNX export included, is then calibrated."""
        values = torch.as_tensor(temperatures, dtype=self.temperature.dtype, device=self.temperature.device)
        if values.shape != self.temperature.shape or not bool((values > 0).all()):
            raise ValueError(f"need {self.temperature.numel()} positive temperatures, got {values.tolist()}")
        self.temperature.copy_(values)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stage-4 feature map, batch x channels x time."""
        if x.ndim != 3 or x.shape[1] != self.config.n_leads:
            raise ValueError(f"expected batch x {self.config.n_leads} leads x samples, got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average and max pooling concatenated, then the linear classifier."""
        # Global average and max pooling (the original's AdaptiveAvgPool1d(1)/AdaptiveMaxPool1d(1), written as
        # reductions so ONNX export keeps the length dynamic).
        pooled = torch.cat((features.mean(dim=2), features.amax(dim=2)), dim=1)
        return self.fc(pooled) / self.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's calibrated logits, batch x members x classes (their mean is `forward`'s output)."""
        features = self.forward_features(x)
        k, channels = self.config.members, features.shape[1] // self.config.members
        mean, peak = features.mean(dim=2), features.amax(dim=2)
        weight = self.fc.weight
        out = []
        for m in range(k):
            own = slice(m * channels, (m + 1) * channels)
            peak_own = slice(k * channels + m * channels, k * channels + (m + 1) * channels)
            bias = self.member_bias[m] if k > 1 else self.fc.bias
            out.append(k * (mean[:, own] @ weight[:, own].T + peak[:, own] @ weight[:, peak_own].T) + bias)
        return torch.stack(out, dim=1) / self.temperature


def fuse_members(models: list[ResNet1d]) -> ResNet1d:
    """One network whose output is the mean logit of ``models`` (same shape, one member each): every
    convolution grouped by member, batch norms side by side, the classifier's weights divided by the number of
    members. Explanations (Grad-CAM at ``layer4``, SHAP) and ONNX export see one model; Grad-CAM of the fused
    ``layer4`` is that of the members' mean logit."""
    configs = {replace(m.config, members=1) for m in models}
    if len(configs) != 1 or any(m.config.members != 1 for m in models) or len(models) < 2:
        raise ValueError("fuse two or more single networks of one shape")
    k = len(models)
    fused = ResNet1d(replace(models[0].config, members=k))
    states = [m.state_dict() for m in models]
    merged = {}
    for key, value in states[0].items():
        if key == "fc.weight":
            half = value.shape[1] // 2
            merged[key] = torch.cat([s[key][:, :half] for s in states] + [s[key][:, half:] for s in states], 1) / k
        elif key == "fc.bias":
            merged[key] = torch.stack([s[key] for s in states]).mean(0)
        elif key.endswith("num_batches_tracked"):
            merged[key] = value
        else:
            merged[key] = torch.cat([s[key] for s in states], 0)
    merged["member_bias"] = torch.stack([s["fc.bias"] for s in states])
    fused.load_state_dict(merged)
    return fused
