"""Hook specifications: the whole contract between hastily-bench and its plugins.

A plugin is a module (or object) exposing functions decorated with
:data:`hookimpl` and named like the specs below. Third-party plugins are found
through the entry-point group ``hastily_bench``::

    [project.entry-points.hastily_bench]
    my-accel = "my_accel.plugin"

The three built-in accelerators (``hastily``, ``baseline-cim``, the GPU family)
are registered through exactly these hooks.

Call order: at start-up the host loads built-ins, then entry points, validates
every plugin's hook signatures (a misspelt hook name or argument fails loudly),
then calls :func:`hastily_register_workloads` and
:func:`hastily_register_accelerators` once per plugin. Neither hook is
``firstresult`` or ``historic``; both return ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .accelerator import AcceleratorSpec
    from .workload import Workload

PROJECT = "hastily_bench"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorator for plugin hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def hastily_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
    """Contribute accelerators.

    Parameters
    ----------
    register
        Call ``register(spec)`` once per :class:`~hastily_bench.accelerator.AcceleratorSpec`.
        A name already registered by another plugin is an error that names both plugins.

    Returns
    -------
    None
        Plugins must not print; anything worth saying goes in ``Estimate.notes``.
    """


@hookspec
def hastily_register_workloads(register: Callable[[Workload], None]) -> None:
    """Contribute named workloads (encoder shapes).

    Parameters
    ----------
    register
        Call ``register(workload)`` once per :class:`~hastily_bench.workload.Workload`.
        Built-in workloads are registered first; a second workload of the same
        name is an error that names both plugins.

    Returns
    -------
    None
    """
