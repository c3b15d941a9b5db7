"""``ecglens serve``: a web viewer and HTTP API over a bundle, a thin shell over `ecglens.serve.diagnosis`."""

from ecglens.serve.app import ServeConfig, ServeLimits, create_app

__all__ = ["ServeConfig", "ServeLimits", "create_app"]
