"""Reproducible figures: Agg backend, fixed DPI, no timestamps in PNG metadata (byte-identical reruns)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_path  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "vcmeasure", "figure.dpi": 100})


def save_figure(fig, path: str | Path, dpi: int = 120) -> None:
    """Save ``fig`` atomically as PNG (or SVG) with metadata stripped, then close it."""
    path = Path(path)
    meta = {"Software": None} if path.suffix.lower() == ".png" else {"Date": None, "Creator": None}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, metadata=meta, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
