"""hastily-example-accel: a third-party hastily-bench plugin modelling an INT8 systolic array."""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
