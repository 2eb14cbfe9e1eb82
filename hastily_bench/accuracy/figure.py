"""The ADC figure: accuracy against fp32 versus ADC resolution, one line per accelerator.

Input: JSON documents of ``hastily-bench accuracy --set NAME.adc_bits=N ... -o FILE`` for
several N (``docs/accuracy.md`` gives the commands). Needs matplotlib (``plot`` extra).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["adc_sweep_figure"]

_ADC = re.compile(r"(\d+)b ADC")


def _points(docs: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float, float]]]:
    lines: dict[str, list[tuple[int, float, float]]] = {}
    for doc in docs:
        for row in doc["rows"]:
            m = _ADC.search(row["arithmetic"])
            if m:
                lines.setdefault(row["name"], []).append(
                    (int(m.group(1)), row["cos_mean"], row["recall_at_10"]))
    return {k: sorted(v) for k, v in lines.items()}


def adc_sweep_figure(files: Sequence[str | Path], out: str | Path) -> Path:
    """Write the figure (PNG or SVG by suffix) from accuracy JSON files; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [json.loads(Path(f).read_text()) for f in files]
    lines = _points(docs)
    if not lines:
        raise UsageError("no analog rows (arithmetic with an ADC) in the accuracy files")
    n = {d["sentences"] for d in docs}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for (name, pts), marker in zip(sorted(lines.items()), "os^vD", strict=False):
        bits = [p[0] for p in pts]
        ax1.plot(bits, [1 - p[1] for p in pts], marker=marker, label=name)
        ax2.plot(bits, [p[2] for p in pts], marker=marker, label=name)
    ax1.set_yscale("log")
    ax1.set_ylabel("1 - mean cosine to fp32")
    ax2.set_ylabel("recall@10 of fp32 neighbours")
    ax2.set_ylim(0, 1.02)
    for ax in (ax1, ax2):
        ax.set_xlabel("ADC bits")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"all-MiniLM-L6-v2, {'/'.join(map(str, sorted(n)))} sentences: accuracy vs ADC resolution")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110, metadata={"Software": None} if out.suffix == ".png" else None)
    plt.close(fig)
    return out
