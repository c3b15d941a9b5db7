"""Training, evaluation, metrics and model bundles."""
