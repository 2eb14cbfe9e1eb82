"""The plugin host: the only module that touches pluggy's ``pm.hook``.

Everything else asks :class:`PluginHost` for accelerators, workloads and plugin
status through typed methods.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import __version__, hookspecs
from .accelerator import AcceleratorSpec
from .errors import INTERRUPTS, PluginError, UsageError, exception_text, suggest
from .workload import Workload, builtin_workload_files, check_name, workload_from_toml

ENTRY_POINT_GROUP = "hastily_bench"
DISABLE_AUTOLOAD_ENV = "HASTILY_DISABLE_PLUGIN_AUTOLOAD"
#: Values of a boolean environment variable that mean "yes" (case-insensitive).
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})

#: Built-in plugins, loaded like third-party ones but from this distribution.
BUILTIN_PLUGINS: dict[str, str] = {
    "cim": "hastily_bench.plugins.cim",
    "gpu": "hastily_bench.plugins.gpu",
}

HOOK_NAMES = ("hastily_register_accelerators", "hastily_register_workloads")


def _identity(obj: object) -> object:
    return obj


class _Conflict(PluginError):
    """Two plugins claim one name: always fatal, whatever ``strict`` says."""


#: The distribution named for plugins given in-process (``PluginHost(extra_plugins=...)``).
IN_PROCESS = "<in-process>"


@dataclass
class PluginInfo:
    """What ``hastily-bench plugins`` shows for one plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool
    status: str = "loaded"  # "loaded" | "failed" | "disabled"
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    accelerators: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"plugin {self.name!r} ({self.distribution} {self.version})"


@dataclass(frozen=True)
class RegisteredAccelerator:
    """An :class:`AcceleratorSpec` with the plugin that contributed it."""

    spec: AcceleratorSpec
    plugin: PluginInfo

    @property
    def name(self) -> str:
        return self.spec.name


class PluginHost:
    """Load plugins, collect what they contribute, and report their health.

    Parameters
    ----------
    autoload
        Load third-party entry points; default: unless ``HASTILY_DISABLE_PLUGIN_AUTOLOAD``
        is set to a non-empty value.
    strict
        Make a plugin that fails to load fatal (:class:`PluginError`) instead of
        reported and skipped.
    builtins
        ``{plugin name: module}`` of built-in plugins (:data:`BUILTIN_PLUGINS` when ``None``).
    extra_plugins
        Objects to register in addition (tests, embedding applications), as
        ``(name, plugin)`` pairs.
    include_builtin_workloads
        Register the TOML workloads shipped with the package.
    """

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        strict: bool = False,
        builtins: Mapping[str, str] | None = None,
        extra_plugins: Iterable[tuple[str, object]] = (),
        include_builtin_workloads: bool = True,
    ) -> None:
        if autoload is None:
            # only a true value disables: HASTILY_DISABLE_PLUGIN_AUTOLOAD=0 keeps autoloading
            autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in TRUE_VALUES
        self.strict = strict
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._accelerators: dict[str, RegisteredAccelerator] = {}
        self._workloads: dict[str, tuple[Workload, str]] = {}
        if include_builtin_workloads:
            for path in builtin_workload_files():
                wl = workload_from_toml(path)
                self._workloads[wl.name] = (wl, "hastily-bench (built-in workloads)")

        for name, modname in (BUILTIN_PLUGINS if builtins is None else builtins).items():
            info = PluginInfo(name, "hastily-bench", __version__, builtin=True)
            self._try_register(info, functools.partial(importlib.import_module, modname))
        for name, obj in extra_plugins:
            info = PluginInfo(name, IN_PROCESS, "", builtin=False)
            self._try_register(info, functools.partial(_identity, obj))
        if autoload:
            self._load_entry_points()
        else:
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist else "?"
                ver = ep.dist.version if ep.dist else "?"
                self._infos[ep.name] = PluginInfo(
                    ep.name, dist, ver, builtin=False, status="disabled",
                    error=f"{DISABLE_AUTOLOAD_ENV} is set",
                )
        self._collect()

    # -- loading -----------------------------------------------------------------
    def _load_entry_points(self) -> None:
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist else "?"
            ver = ep.dist.version if ep.dist else "?"
            info = PluginInfo(ep.name, dist, ver, builtin=False)
            self._try_register(info, ep.load)

    def _fail(self, info: PluginInfo, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever the exception text holds
        info.status = "failed"
        info.error = f"{info.error}; {message}" if info.error else message
        self._infos[info.name] = info
        if self.strict:
            raise PluginError(f"{info.label} {message}; fix or uninstall it, or drop --strict-plugins")

    def _try_register(self, info: PluginInfo, loader: Callable[[], Any]) -> None:
        if info.name in self._infos:
            raise PluginError(
                f"two plugins are named {info.name!r}: {self._infos[info.name].label} and "
                f"{info.label}"
            )
        try:
            plugin = loader()
        except INTERRUPTS:
            raise
        except BaseException as exc:  # noqa: BLE001 - a broken plugin must not take the tool down
            self._fail(info, f"failed to load: {type(exc).__name__}: {exception_text(exc)}")
            return
        try:
            self._pm.register(plugin, name=info.name)
            # Unknown hook names (a typo) are only found by check_pending.
            self._pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            self._fail(info, f"has an invalid hook: {exc}")
            return
        info.hooks = sorted(
            name for name in HOOK_NAMES
            if any(impl.plugin_name == info.name
                   for impl in getattr(self._pm.hook, name).get_hookimpls())
        )
        self._infos[info.name] = info

    # -- collection ----------------------------------------------------------------
    def _call_each(
        self,
        hook_name: str,
        make_register: Callable[[PluginInfo, list[str]], Callable[[Any], None]],
        rollback: Callable[[PluginInfo, list[str]], None],
    ) -> None:
        caller = getattr(self._pm.hook, hook_name)
        # Call plugin by plugin (in registration order) so each contribution is
        # attributed to its plugin and one plugin's failure does not hide the others.
        for impl in caller.get_hookimpls():
            info = self._infos[impl.plugin_name]
            if info.status == "disabled":
                continue
            added: list[str] = []
            try:
                impl.function(*[make_register(info, added) for _ in impl.argnames])
            except _Conflict:
                rollback(info, added)
                raise
            except INTERRUPTS:
                raise
            except BaseException as exc:  # noqa: BLE001 - a broken plugin must not take the tool down
                # what this hook registered before failing is withdrawn: half a plugin is worse
                # than none; what its other hook contributed stays
                rollback(info, added)
                detail = (exception_text(exc) if isinstance(exc, PluginError)
                          else f"{type(exc).__name__}: {exception_text(exc)}")
                self._fail(info, f"raised in {hook_name}: {detail}")

    def _collect(self) -> None:
        def workload_register(info: PluginInfo, added: list[str]) -> Callable[[Any], None]:
            def register(wl: Workload) -> None:
                if not isinstance(wl, Workload):
                    raise PluginError(f"registered {wl!r}, not a Workload")
                if wl.name in self._workloads:
                    raise _Conflict(
                        f"workload {wl.name!r} is registered twice: by "
                        f"{self._workloads[wl.name][1]} and by {info.label}"
                    )
                self._workloads[wl.name] = (wl, info.label)
                info.workloads.append(wl.name)
                added.append(wl.name)
            return register

        def accel_register(info: PluginInfo, added: list[str]) -> Callable[[Any], None]:
            def register(spec: AcceleratorSpec) -> None:
                if not isinstance(spec, AcceleratorSpec):
                    raise PluginError(f"registered {spec!r}, not an AcceleratorSpec")
                try:  # names land in tables, Markdown and results files that are read back
                    check_name(spec.name, "accelerator")
                    for label, _ in spec.ablation:
                        check_name(label, f"accelerator {spec.name!r}: ablation step")
                except UsageError as exc:
                    raise PluginError(str(exc)) from None
                if spec.name in self._accelerators:
                    other = self._accelerators[spec.name].plugin
                    raise _Conflict(
                        f"accelerator {spec.name!r} is claimed by two plugins: "
                        f"{other.label} and {info.label}"
                    )
                self._accelerators[spec.name] = RegisteredAccelerator(spec, info)
                info.accelerators.append(spec.name)
                added.append(spec.name)
            return register

        def drop_workloads(info: PluginInfo, added: list[str]) -> None:
            for name in added:
                self._workloads.pop(name, None)
                info.workloads.remove(name)

        def drop_accelerators(info: PluginInfo, added: list[str]) -> None:
            for name in added:
                self._accelerators.pop(name, None)
                info.accelerators.remove(name)

        self._call_each("hastily_register_workloads", workload_register, drop_workloads)
        self._call_each("hastily_register_accelerators", accel_register, drop_accelerators)

    def _failed_hint(self) -> str:
        failed = [i for i in self._infos.values() if i.status == "failed"]
        if not failed:
            return ""
        return "; " + "; ".join(f"{i.label} failed to load: {i.error}" for i in failed)

    # -- queries -------------------------------------------------------------------
    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or not, built-ins first."""
        return sorted(self._infos.values(), key=lambda i: (not i.builtin, i.name))

    def accelerators(self) -> list[RegisteredAccelerator]:
        return list(self._accelerators.values())

    def accelerator(self, name: str) -> RegisteredAccelerator:
        try:
            return self._accelerators[name]
        except KeyError:
            raise UsageError(
                f"unknown accelerator {name!r}{suggest(name, self._accelerators)}; "
                f"'hastily-bench accelerators' lists them{self._failed_hint()}"
            ) from None

    def default_accelerators(self) -> list[str]:
        return [a.name for a in self._accelerators.values()
                if a.spec.default and a.plugin.builtin]

    def workloads(self) -> list[tuple[Workload, str]]:
        return sorted(self._workloads.values(), key=lambda t: (t[0].layers * t[0].hidden, t[0].name))

    def workload_names(self) -> list[str]:
        return list(self._workloads)

    def workload(self, name: str) -> Workload:
        try:
            return self._workloads[name][0]
        except KeyError:
            raise UsageError(
                f"unknown workload {name!r}{suggest(name, self._workloads)}; "
                "'hastily-bench workloads' lists them, or pass a .toml / config.json path"
                f"{self._failed_hint()}"
            ) from None
