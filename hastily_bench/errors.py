"""Exception hierarchy.

Every error the user can cause derives from :class:`UsageError` and is shown as one
line on stderr with exit status 2. :class:`PluginError` names a misbehaving plugin.
:class:`Unsupported` is raised by an accelerator model for a point it cannot run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HastilyError(Exception):
    """Base class of every error raised on purpose by hastily-bench."""


class UsageError(HastilyError):
    """A mistake in what the user asked for: bad file, unknown name, bad option."""


class UnknownParameter(UsageError):
    """A parameter name that a :class:`~hastily_bench.params.ParamSet` does not have.

    From a user's ``--set`` it is the user's mistake (exit 2); from a model's own look-up
    (``params.f("clokc_hz")``) it is the plugin's fault, reported in its row.
    """


class PluginError(HastilyError):
    """A plugin failed to load, broke the hook contract, or returned impossible numbers."""


class Unsupported(HastilyError):
    """Raised by an accelerator model when a point cannot run on it (reason in the message)."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for a close match of ``name``, else ``""``."""
    matches = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
