"""syncup's platform-agnostic core. Imports no platform SDK (see tests/test_architecture.py)."""

__version__ = "0.1.0"
