"""The graph: a layer of typed ops, repeated, with its dependencies and phase."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from ..errors import UsageError
from ..workload import Workload
from .ops import MatMul, Op, Role

#: Inclusive limits on a point; larger values are surely a typo and would only
#: produce meaningless numbers (the paper's sweep stops at 8192 tokens).
MAX_SEQ_LEN = 1 << 18
MAX_BATCH = 1 << 12

OpT = TypeVar("OpT", bound=Op)


class Phase(enum.StrEnum):
    """What an inference step does."""

    #: An encoder over whole sequences (BERT): every token attends to every token.
    ENCODE = "encode"
    #: A decoder's prompt pass: all prompt tokens at once, causal attention.
    PREFILL = "prefill"
    #: A decoder generating one token per sequence against a KV cache of ``context_len``.
    DECODE = "decode"


class Level(enum.StrEnum):
    """How much of a model a graph holds."""

    #: The whole stack of a workload (``hastily-bench run``).
    MODEL = "model"
    #: Selected operations of one layer (``hastily-bench op``); :attr:`OpGraph.within` is the
    #: model they run inside, so a model can place the whole network and cost only these ops.
    OP = "op"


@dataclass(frozen=True)
class OpGraph:
    """All work of one inference step of ``batch`` sequences.

    Parameters
    ----------
    workload
        The model shape; ``workload.layers`` is how often ``layer_ops`` repeats.
    seq_len
        Tokens per sequence processed in this step (the sequence length of an
        encoder; 1 in a decoder's decode phase).
    batch
        Sequences.
    layer_ops
        One layer's ops in a valid execution order (every dependency comes first).
    phase
        :class:`Phase`.
    context_len
        Tokens already in the KV cache before this step (decode phase).
    level
        :class:`Level`: a whole model or an op-level study.
    within
        For op-level graphs: the model graph the ops belong to (same workload,
        point and phase). ``None`` for model graphs.
    """

    workload: Workload
    seq_len: int
    batch: int
    layer_ops: tuple[Op, ...]
    phase: Phase = Phase.ENCODE
    context_len: int = 0
    level: Level = Level.MODEL
    within: OpGraph | None = None

    def __post_init__(self) -> None:
        names = [op.name for op in self.layer_ops]
        if len(set(names)) != len(names):
            raise ValueError(f"op names must be unique within a layer: {names}")
        seen: set[str] = set()
        for op in self.layer_ops:
            for dep in op.deps:
                if dep.op in names and dep.op not in seen:
                    raise ValueError(f"op {op.name!r} depends on {dep.op!r}, which comes later")
            seen.add(op.name)

    def __hash__(self) -> int:
        # the generated hash walks every op each call; models memoise on the graph
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.workload, self.seq_len, self.batch, self.layer_ops, self.phase,
                      self.context_len, self.level, self.within))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict[str, object]:
        # a string's hash differs between processes: never carry the cached one over
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    # -- counts --------------------------------------------------------------------
    # A graph is immutable, so what is derived from it is computed once per graph
    # (cached_property stores it in the instance dict; fields, equality and hash are
    # untouched). Sweeps cost thousands of designs on one graph.
    @cached_property
    def layers(self) -> int:
        return self.workload.layers

    @cached_property
    def tokens(self) -> int:
        """Tokens processed in the batch, ``batch x seq_len``."""
        return self.batch * self.seq_len

    @cached_property
    def macs(self) -> int:
        """Multiply-accumulates of the whole stack."""
        return self.layers * sum(op.macs for op in self.layer_ops)

    @cached_property
    def ops(self) -> int:
        """Operations of the whole stack, 2 per MAC."""
        return 2 * self.macs

    @cached_property
    def weight_bytes(self) -> int:
        """Trained weight bytes of the whole stack."""
        return self.layers * sum(op.weight_bytes for op in self.layer_ops)

    # -- structure -------------------------------------------------------------------
    @property
    def model(self) -> OpGraph:
        """The model graph these ops run in: ``within`` for op-level graphs, else ``self``."""
        return self.within if self.within is not None else self

    def op(self, name: str) -> Op:
        """The op labelled ``name`` (for reports and tests; models dispatch on types)."""
        for op in self.layer_ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def of_type(self, op_type: type[OpT]) -> Iterator[OpT]:
        """The ops of one type (subclasses included), in layer order."""
        return (op for op in self.layer_ops if isinstance(op, op_type))

    def matmuls(self, role: Role | None = None) -> tuple[MatMul, ...]:
        """The matrix products, optionally only those with ``role``."""
        return tuple(op for op in self.of_type(MatMul) if role is None or op.role is role)

    def producers(self, op: Op) -> tuple[Op, ...]:
        """The ops of this graph that ``op`` depends on (deps on absent ops are external inputs)."""
        by_name = {o.name: o for o in self.layer_ops}
        return tuple(by_name[d.op] for d in op.deps if d.op in by_name)

    def barrier_index(self) -> int | None:
        """Index of the first op that waits for a whole producer (a barrier dependency on an
        op present in this graph), or ``None`` when every op can stream row by row."""
        names = {op.name for op in self.layer_ops}
        for i, op in enumerate(self.layer_ops):
            if any(d.barrier and d.op in names for d in op.deps):
                return i
        return None

    def stream_segments(self) -> list[tuple[tuple[Op, ...], int]]:
        """Stretches of the stack through which rows can stream, as ``(ops, repeat)``.

        A barrier splits each layer into ``pre`` (up to and including what the barrier
        waits for) and ``post``. Tokens stream from one barrier to the next: layer 1's
        ``pre``; then ``post`` of layer i followed by ``pre`` of layer i + 1, ``N - 1``
        times; then the last layer's ``post``. Without a barrier the whole stack streams.
        """
        return list(self._segments)

    @cached_property
    def stream_segment_names(self) -> tuple[tuple[tuple[str, ...], int], ...]:
        """:meth:`stream_segments` by op name, as ``((names, repeat), ...)`` (kept: a
        pipelined model walks it for every design point)."""
        return tuple((tuple(op.name for op in seg), repeat) for seg, repeat in self._segments)

    @cached_property
    def _segments(self) -> tuple[tuple[tuple[Op, ...], int], ...]:
        ops, n = self.layer_ops, self.layers
        b = self.barrier_index()
        if b is None:
            return ((ops, n),)
        pre, post = ops[:b], ops[b:]
        out = [(pre, 1), (post + pre, n - 1), (post, 1)]
        return tuple((seg, rep) for seg, rep in out if seg and rep > 0)


def check_point(seq_len: int, batch: int) -> None:
    """Raise :class:`UsageError` for a sequence length or batch outside the limits."""
    for label, value, limit in (("sequence length", seq_len, MAX_SEQ_LEN),
                                ("batch", batch, MAX_BATCH)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{label} must be an integer, got {value!r}")
        if value < 1:
            raise UsageError(f"{label} must be >= 1, got {value}")
        if value > limit:
            raise UsageError(f"{label} {value} exceeds the limit {limit}")
