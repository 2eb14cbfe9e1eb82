"""Cost rules: how a model maps op types to costs, and how it assembles an Estimate.

A model keeps a :class:`CostRules` registry from op types (and, for matrix
products, :class:`~hastily_bench.graph.Role`) to functions. Lookup is by exact
type: an op type the model has no rule for makes the point ``unsupported``,
naming the op, instead of being costed like something else. A new op type (say
RMSNorm) therefore needs one rule per model that supports it, and every other
model says so.

Example::

    rules: CostRules[Ctx] = CostRules("my-accel")

    @rules.register(MatMul)
    def _matmul(op: MatMul, ctx: Ctx) -> Cost: ...

    @rules.register(Softmax, LayerNorm)
    def _rows(op: RowOp, ctx: Ctx) -> Cost: ...

    def estimate(graph, params):
        rules.check(graph)          # Unsupported for an op without a rule
        b = EstimateBuilder()
        for op in graph.layer_ops:
            cost = rules(op, ctx)
            b.add(op, cost.latency_s * graph.layers, cost.energy_j * graph.layers, category(op))
        b.static_energy_j = static_power_w * b.latency_s
        return b.build(memory_bytes=...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .accelerator import Estimate, ExtraValue, OpCost
from .errors import Unsupported
from .graph import CATEGORIES, MatMul, Op, OpGraph, Role, Softmax

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


class CostRules(Generic[R]):
    """A registry of cost rules keyed by op type (exact) and matrix-product role.

    Parameters
    ----------
    model
        Name used in the ``unsupported`` message (``"hastily CIM model"``).
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._rules: dict[tuple[type[Op], Role | None], Callable[..., R]] = {}
        # by the graph's identity (the entry holds the graph: its id is not reused meanwhile);
        # an equal graph built elsewhere would cost a walk over every op per look-up
        self._plans: dict[int, tuple[OpGraph, tuple[tuple[Op, Callable[..., R]], ...]]] = {}

    def register(self, *op_types: type[Op], role: Role | None = None) -> Callable[[F], F]:
        """Decorator: the function is the rule for ``op_types`` (and ``role``, for MatMul)."""
        if not op_types:
            raise TypeError("register() needs at least one op type")

        def deco(fn: F) -> F:
            for t in op_types:
                key = (t, role)
                if key in self._rules:
                    raise ValueError(f"{self.model}: a rule for {t.__name__} {role or ''} exists")
                self._rules[key] = fn
            self._plans.clear()  # a new rule may cover ops a kept plan refused
            return fn

        return deco

    def rule_for(self, op: Op) -> Callable[..., R]:
        """The rule for ``op``; :class:`Unsupported` naming the op when there is none."""
        t = type(op)
        role = op.role if isinstance(op, MatMul) else None
        fn = self._rules.get((t, role)) or self._rules.get((t, None))
        if fn is None:
            what = f"{op.kind}" + (f", role {role.value}" if role is not None else "")
            raise Unsupported(f"{self.model} has no cost rule for op {op.name!r} ({what})")
        return fn

    def supports(self, op: Op) -> bool:
        try:
            self.rule_for(op)
        except Unsupported:
            return False
        return True

    def check(self, graph: OpGraph) -> None:
        """Raise :class:`Unsupported` for the first op of ``graph`` without a rule."""
        self.plan(graph)

    def plan(self, graph: OpGraph) -> tuple[tuple[Op, Callable[..., R]], ...]:
        """Every op of one layer with its rule, in order; :class:`Unsupported` for the first
        op without one. Kept per graph (a sweep costs one graph thousands of times)."""
        kept = self._plans.get(id(graph))
        if kept is not None and kept[0] is graph:
            return kept[1]
        plan = tuple((op, self.rule_for(op)) for op in graph.layer_ops)
        if len(self._plans) >= 256:
            self._plans.clear()
        self._plans[id(graph)] = (graph, plan)
        return plan

    def __call__(self, op: Op, *args: Any, **kwargs: Any) -> R:
        return self.rule_for(op)(op, *args, **kwargs)


def default_category(op: Op) -> str:
    """The conventional breakdown category of an op (see :data:`~hastily_bench.graph.CATEGORIES`).

    Weight products are ``matmul``, attention's two products ``attention``, softmax
    ``softmax``, every other row or element-wise op ``vector``.
    """
    if isinstance(op, MatMul):
        return "matmul" if op.role is Role.WEIGHT else "attention"
    if isinstance(op, Softmax):
        return "softmax"
    return "vector"


_CATEGORY_SET = frozenset(CATEGORIES)


@dataclass
class EstimateBuilder:
    """Collects per-op costs, static energy, facts and notes into an :class:`Estimate`."""

    breakdown: list[OpCost] = field(default_factory=list)
    static_energy_j: float = 0.0
    area_mm2: float | None = None
    extra: dict[str, ExtraValue] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, op: Op | str, latency_s: float, energy_j: float, category: str | None = None) -> None:
        """Add one breakdown entry (an op of the graph, or a named overhead)."""
        if isinstance(op, Op):
            name, cat = op.name, category or default_category(op)
        else:
            name, cat = op, category or "overhead"
        if not (isinstance(cat, str) and cat in _CATEGORY_SET) and cat not in CATEGORIES:
            raise ValueError(f"category {cat!r} is not one of {', '.join(CATEGORIES)}")
        self.breakdown.append(OpCost(name, latency_s, energy_j, cat))

    @property
    def latency_s(self) -> float:
        return sum([c.latency_s for c in self.breakdown])

    def build(self, *, memory_bytes: int, extra: Mapping[str, ExtraValue] | None = None) -> Estimate:
        return Estimate.from_breakdown(
            self.breakdown, memory_bytes=memory_bytes, extra={**self.extra, **(extra or {})},
            notes=tuple(self.notes), static_energy_j=self.static_energy_j, area_mm2=self.area_mm2,
        )
