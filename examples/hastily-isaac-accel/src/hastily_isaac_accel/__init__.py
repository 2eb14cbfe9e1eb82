"""An ISAAC-style ReRAM CIM accelerator for hastily-bench, built on ``hastily_bench.cim``."""

__version__ = "0.1.0"
