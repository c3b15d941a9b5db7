"""``models``: the bundles available and their model cards, read without loading torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecglens.bundle.meta import STARTER, model_card, read_meta, starter_manifest, starter_path


@dataclass(frozen=True)
class ModelInfo:
    """One bundle as ``ecglens models`` lists it."""

    name: str
    path: str
    label_space: str
    classes: tuple[str, ...]
    sampling_rate_hz: float
    leads: int
    trained_on: str
    calibrated: bool
    thresholds: str


@dataclass(frozen=True)
class ModelsRun:
    """The bundles available: the starter model and those named."""

    models: tuple[ModelInfo, ...]
    card: str | None = None

    def lines(self) -> list[str]:
        """What the CLI prints: the card when asked for, else one block per bundle."""
        if self.card is not None:
            return [self.card]
        lines = []
        for m in self.models:
            lines += [
                f"{m.name}  ({m.path})",
                f"  label space {m.label_space}: {', '.join(m.classes)}",
                f"  input: {m.leads} leads at {m.sampling_rate_hz:g} Hz; probabilities "
                f"{'calibrated' if m.calibrated else 'not calibrated'}; thresholds: {m.thresholds}",
                f"  trained on: {m.trained_on}",
                "",
            ]
        return lines


def _model_info(bundle: str) -> ModelInfo:
    meta = read_meta(bundle)
    data = meta.training_data
    if bundle == STARTER:
        manifest = starter_manifest()
        name, path, trained_on = manifest.name, str(starter_path()), f"{manifest.summary}; {manifest.notice}"
    else:
        name, path = str(bundle), str(Path(bundle).resolve())
        trained_on = (
            "unknown"
            if data is None
            else (
                f"{', '.join(data.datasets)}: {data.n_train} training, {data.n_val} validation records "
                f"(epoch {data.epoch})"
            )
        )
    return ModelInfo(
        name,
        path,
        meta.label_map.label,
        meta.class_names,
        meta.sampling_rate_hz,
        len(meta.lead_names),
        trained_on,
        meta.temperatures is not None,
        meta.threshold_origin.describe(),
    )


def run_models(bundles: Sequence[str] = (), card: str | None = None) -> ModelsRun:
    """``models``: the starter model and the named bundles, or one bundle's model card."""
    if card is not None:
        return ModelsRun((), model_card(card))
    return ModelsRun(tuple(_model_info(b) for b in (STARTER, *bundles)))
