"""The canonical dataset (DESIGN §3): the one format every generator and importer writes.

``data/raw/<name>/`` holds ``images/<image_id>.png``, ``masks/<image_id>.png`` (0 background, 1..K bodies top
to bottom), ``images.csv``, ``vertebrae.csv`` and ``measurements.csv``. Everything downstream reads it through
:func:`load_dataset`. Validation against the contract lives in :mod:`vcmeasure.validate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import InputError
from .io import read_csv_checked

IMAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
IMAGES_COLUMNS = ["image_id", "subject_id", "anterior_side", "pixel_spacing_mm", "width", "height", "source"]
CORNER_COLUMNS = ["as_x", "as_y", "ai_x", "ai_y", "ps_x", "ps_y", "pi_x", "pi_y"]
VERTEBRAE_COLUMNS = ["image_id", "label", "level", *CORNER_COLUMNS, "ha_px", "hp_px", "fractured"]
MEASUREMENTS_COLUMNS = ["image_id", "label", "measure", "value_true", "value_reader", "genant_grade"]
ANTERIOR_SIDES = ("left", "right", "unknown")
MEASURE_VC = "vc_anterior"


@dataclass
class Dataset:
    root: Path
    images: pd.DataFrame
    vertebrae: pd.DataFrame
    measurements: pd.DataFrame

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def measure(self) -> str:
        """The dataset's measure name (``vc_anterior`` for lateral views)."""
        values = self.measurements["measure"].dropna().unique()
        return str(values[0]) if len(values) else MEASURE_VC

    def image_path(self, image_id: str) -> Path:
        return self.root / "images" / f"{image_id}.png"

    def mask_path(self, image_id: str) -> Path:
        return self.root / "masks" / f"{image_id}.png"


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    return read_csv_checked(path, columns, dtype={"image_id": str, "subject_id": str, "level": str})


def load_dataset(root: str | Path) -> Dataset:
    """Load the three tables of a canonical dataset (images are read lazily by the steps)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    return Dataset(
        root=root,
        images=_read_table(root / "images.csv", IMAGES_COLUMNS),
        vertebrae=_read_table(root / "vertebrae.csv", VERTEBRAE_COLUMNS),
        measurements=_read_table(root / "measurements.csv", MEASUREMENTS_COLUMNS),
    )
