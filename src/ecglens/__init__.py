"""ecglens: interpretable deep-learning diagnosis of 12-lead ECGs."""

__version__ = "0.1.0"
