"""Example records for the viewer's "try an example" button: one synthetic record per class, made at start."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ecglens.classes import CLASS_NAMES
from ecglens.io import Record
from ecglens.leads import LEAD_NAMES
from ecglens.synth.cohort import CLASS_MECHANISMS, SynthConfig, generate_record


@dataclass(frozen=True)
class Example:
    """A synthetic record with its known class."""

    id: str
    class_name: str
    description: str
    record: Record


def make_examples(seed: int = 11, sampling_rate_hz: float = 500.0) -> tuple[Example, ...]:
    """One single-label synthetic record per class (10 s), generated deterministically."""
    config = replace(SynthConfig(sampling_rate_hz=sampling_rate_hz, seed=seed), multi_label_rate=0.0)
    found: dict[str, Example] = {}
    index = 0
    while len(found) < len(CLASS_NAMES) and index < 2000:
        synthetic = generate_record(index, config)
        index += 1
        name = synthetic.classes[0]
        if name in found:
            continue
        record = Record(f"example-{name}", "synthetic", synthetic.signal, sampling_rate_hz, LEAD_NAMES,
                        source_path=f"synthetic example ({name})")
        found[name] = Example(f"example-{name}", name, CLASS_MECHANISMS[name], record)
    return tuple(found[name] for name in CLASS_NAMES if name in found)
