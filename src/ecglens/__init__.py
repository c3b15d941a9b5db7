"""ecglens: interpretable deep-learning diagnosis of 12-lead ECGs."""

__version__ = "0.1.0"


def load_bundle(path, device: str = "auto", engine: str = "torch"):
    """Load a trained bundle for prediction; see `ecglens.predict.Predictor`."""
    from ecglens.predict import load_bundle as _load

    return _load(path, device, engine)


__all__ = ["__version__", "load_bundle"]
