"""Churn model: data contract, features, training pipeline, serving and batch scoring."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version(__name__.replace("_", "-"))
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
