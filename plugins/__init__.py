"""Built-in accelerator plugins.

Each module here is an ordinary hastily-bench plugin: it imports only
:mod:`hastily_bench.api` and registers its accelerators through the same hooks a
third-party package uses.
"""
