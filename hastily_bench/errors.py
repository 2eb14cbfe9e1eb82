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


class Terminated(SystemExit):
    """SIGTERM, raised by the command's handler (exit status 143). Like Ctrl-C it is never
    a plugin's fault: the code that keeps a plugin's exceptions in its row re-raises it."""


#: What plugin-fault handlers re-raise instead of keeping in a row: the user stopping the run.
INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, Terminated)


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when a plugin's exception cannot print itself."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - the plugin's own fault, reported as such
        return f"<{type(exc).__name__} whose str() fails>"
