"""Training configuration files: ``ecglens train --config FILE`` (YAML, TOML or JSON).

A file takes the same options as the command-line flags, under the flags' names (``batch-size`` or
``batch_size``), plus ``data`` (a cache or a list of caches) and ``init``. The ``config.json`` every run
writes (``{"config": ..., "caches": [...], "init": ...}``) is accepted back as it is, so a run repeats
exactly from its own record. Flags given on the command line override the file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ecglens.data import SplitSpec
from ecglens.preprocess import LengthPolicy
from ecglens.train.loop import TrainConfig

_FLAG_FIELDS = {"augment_probability": "augmentation_probability", "leads": "lead_names", "compile_model": "compile"}
"""Flags whose TrainConfig field has another name (the others share it)."""


@dataclass(frozen=True)
class TrainRequest:
    """What ``ecglens train`` runs: the configuration, the caches and an optional starting bundle."""

    config: TrainConfig
    caches: tuple[str, ...]
    init: str | None = None


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The options of a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON (``.json``) file.

    Raises:
        ValueError: the file cannot be parsed or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():  # never open a FIFO or device: the read would block
        raise ValueError(f"{path}: no such file, or not a regular file")
    if path.stat().st_size > 2**20:
        raise ValueError(f"{path}: a config file of {path.stat().st_size:,} bytes is larger than 1 MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ValueError(f"{path}: a config file ends in .yaml, .yml, .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({error})".replace("\n", " ")) from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a config file holds a mapping of options, not {type(data).__name__}")
    return dict(data)


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """A `TrainConfig` from its ``to_dict`` form (what ``config.json`` holds under ``config``)."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)}")
    values = dict(data)
    try:
        if isinstance(values.get("policy"), Mapping):
            values["policy"] = LengthPolicy(**values["policy"])
        if isinstance(values.get("split"), Mapping):
            values["split"] = SplitSpec(**values["split"])
        for key in ("lead_names", "augment"):
            if key in values:
                listed = values[key]
                values[key] = (
                    tuple(p.strip() for p in listed.split(",") if p.strip())
                    if isinstance(listed, str)
                    else tuple(listed)
                )
        return TrainConfig(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def train_request(config_file: str | os.PathLike | None = None, **flags: Any) -> TrainRequest:
    """The run that a config file and the flags given on the command line describe (flags win).

    Args:
        config_file: a YAML/TOML/JSON file of options, or a run's ``config.json``.
        **flags: options under the flags' names with underscores (``batch_size``, ``leads``, ``policy``,
            ``policy_seconds``, ``val_fold``, ``test_fold``, ``no_amp``, ``data``, ``init``, ...); only those
            the user gave.

    Raises:
        ValueError: an unknown option, a value of the wrong kind, or no caches named anywhere.
    """
    where = str(config_file) if config_file else "flags"
    config, caches, init = TrainConfig(), (), None
    if config_file is not None:
        data = read_config_file(config_file)
        if isinstance(data.get("config"), Mapping):  # a run's own config.json
            config = config_from_dict(data["config"], where)
            caches, init = tuple(data.get("caches") or ()), data.get("init")
            data = {}
        config, caches, init = _apply(config, caches, init, {k.replace("-", "_"): v for k, v in data.items()}, where)
    config, caches, init = _apply(config, caches, init, flags, "flags")
    if not caches:
        raise ValueError("no caches to train on: give --data (or 'data' in the config file)")
    return TrainRequest(config, tuple(str(c) for c in caches), None if init is None else str(init))


def _apply(
    config: TrainConfig, caches: tuple, init: str | None, options: Mapping[str, Any], where: str
) -> tuple[TrainConfig, tuple, str | None]:
    """Options under flag names laid over a configuration."""
    options = dict(options)
    if "data" in options:
        data = options.pop("data")
        caches = (data,) if isinstance(data, str) else tuple(data)
    if "init" in options:
        init = options.pop("init")
    changes: dict[str, Any] = {}
    if "no_amp" in options:
        changes["amp"] = not options.pop("no_amp")
    seconds = options.pop("policy_seconds", None)
    if "policy" in options or seconds is not None:
        name = options.pop("policy", config.policy.name)
        if isinstance(name, Mapping):  # the to_dict form inside a flat file
            changes["policy"] = LengthPolicy(**name)
        else:
            default = config.policy.seconds if name == config.policy.name else (30.0 if name == "original" else 10.0)
            changes["policy"] = LengthPolicy(name, float(seconds) if seconds is not None else default)
    val_fold, test_fold = options.pop("val_fold", None), options.pop("test_fold", None)
    in_scope_only = options.pop("in_scope_only", None)
    for flag, value in options.items():
        changes[_FLAG_FIELDS.get(flag, flag)] = value
    merged = config_from_dict(
        {**config.to_dict(), **{k: v for k, v in changes.items() if k not in ("policy", "split")}}, where
    )
    merged = replace(merged, policy=changes.get("policy", merged.policy), split=changes.get("split", config.split))
    if "seed" in changes or val_fold is not None or test_fold is not None or in_scope_only is not None:
        split = merged.split
        scope = split.out_of_scope if in_scope_only is None else ("excluded" if in_scope_only else "negative")
        merged = replace(
            merged,
            split=SplitSpec(
                merged.seed,
                split.val_fold if val_fold is None else int(val_fold),
                split.test_fold if test_fold is None else int(test_fold),
                scope,
            ),
        )
    return merged, caches, init


__all__ = ["TrainRequest", "config_from_dict", "read_config_file", "train_request"]
