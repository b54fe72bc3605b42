"""BUU-LSPINE lateral lumbar radiographs into the canonical dataset (issue 10; DESIGN §3, Eq. 1).

Source layout (Klinwichit et al., Appl. Sci. 2023): ``<SRC>/LA/<name>.jpg`` with ``<SRC>/LA/<name>.csv`` beside
it (``SRC`` may also be the ``LA`` folder itself; the ``AP`` folder is ignored: VC needs a lateral view). Each
CSV row is one endplate ``x1, y1, x2, y2[, label]`` (a header row is tolerated); the 11 rows are the upper and
lower endplates of L1..L5, then the upper endplate of S1. The label column (the dataset's spondylolisthesis
flag) is not a fracture flag and is not used. Bodies L1..L5 become labels 1..5; S1, with one endplate, is no
body. The measure is ``vc_anterior`` (Eq. 1 on the anterior heights), reader value = value from the corners.

**Which end is anterior** is decided once per image (all endplates of one radiograph face the same way):

1. a DICOM image's PatientOrientation, when it names anterior or posterior (:mod:`vcmeasure.dicom`);
2. else the sacral slope: the S1 upper endplate faces forward and up in standing radiographs (sacral slope is
   about 30-50 degrees in adults and practically never below zero), so its anterior end (the promontory) is
   the LOWER end in the image. Decisive when the endplate is tilted by at least ``MIN_SLOPE_DEG``;
3. cross-check / fallback: lumbar lordosis wedges the discs, which are taller at the front, so the summed
   disc heights of L1-L2 ... L5-S1 are larger on the anterior side.

When the two cues disagree, or neither is decisive, the image is skipped as "anterior side ambiguous"
rather than risking swapped anterior and posterior heights. The ends of each endplate are sorted by x, so the
order of (x1, y1) and (x2, y2) in the file does not matter.

Subjects: BUU-LSPINE names are ``<patient>-<sex>-<age>Y<view>`` (e.g. ``0001-F-037Y1``); the subject is the
leading patient number. Names that do not start that way are their own subject (reported). Image ids are
salted hashes, so sex and age in the names never reach the dataset.
"""

from __future__ import annotations

import glob
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import MEASURE_VC
from ..errors import InputError
from .common import (
    MOVED_NOTE,
    BodyRecord,
    Entry,
    ImageRecord,
    SkipFile,
    check_points,
    load_image,
    rasterise,
    resolve_overlaps,
)

SOURCE = "buu-lspine"
MEASURE = MEASURE_VC
LEVELS = ["L1", "L2", "L3", "L4", "L5"]
N_ROWS = 2 * len(LEVELS) + 1  # upper + lower endplate per body, then S1's upper endplate
MIN_SLOPE_DEG = 5.0
MIN_WEDGE_SHARE = 0.02  # summed disc-height asymmetry, relative to the mean endplate length
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ".dicom")
_SUBJECT = re.compile(r"^(?P<subject>\d+)-")


def read_endplates(path: Path) -> np.ndarray:
    """(11, 2, 2) endplates: row, end (0 = smaller x), (x, y)."""
    try:
        frame = pd.read_csv(path, header=None, skipinitialspace=True, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise SkipFile(f"annotation CSV not readable ({type(err).__name__})") from None
    values = frame.iloc[:, :4].apply(pd.to_numeric, errors="coerce") if frame.shape[1] >= 4 else None
    if values is None:
        raise SkipFile(f"annotation CSV has {frame.shape[1]} column(s), expected x1,y1,x2,y2,label")
    if len(values) and values.iloc[0].isna().all():  # a header row
        values = values.iloc[1:]
    if values.isna().any().any():
        raise SkipFile("annotation CSV has non-numeric coordinates")
    if len(values) != N_ROWS:
        raise SkipFile(f"wrong point count: {len(values)} endplate rows, expected {N_ROWS} "
                       "(L1-L5 upper and lower endplates, S1 upper endplate)")
    lines = values.to_numpy(float).reshape(N_ROWS, 2, 2)
    order = np.argsort(lines[:, :, 0], axis=1, kind="stable")
    return np.take_along_axis(lines, order[:, :, None], axis=1)


def infer_anterior_side(lines: np.ndarray) -> tuple[str, str]:
    """('left' | 'right', how) from the sacral slope, cross-checked with disc wedging; SkipFile when ambiguous."""
    (lx, ly), (rx, ry) = lines[-1]
    slope_deg = math.degrees(math.atan2(ly - ry, rx - lx))  # > 0: the left end is lower
    slope_side = None if abs(slope_deg) < MIN_SLOPE_DEG else ("left" if slope_deg > 0 else "right")
    lower, upper = lines[1:-1:2], lines[2::2]  # disc k between lower endplate of body k and the next upper one
    gap = np.linalg.norm(upper - lower, axis=2)  # (5, 2): left and right disc heights
    scale = float(np.mean(np.linalg.norm(lines[:, 1] - lines[:, 0], axis=1)))
    wedge = float((gap[:, 0] - gap[:, 1]).sum())
    wedge_side = None if abs(wedge) < MIN_WEDGE_SHARE * scale else ("left" if wedge > 0 else "right")
    if slope_side and wedge_side and slope_side != wedge_side:
        raise SkipFile(f"anterior side ambiguous: sacral slope ({slope_deg:.0f} deg) and disc wedging disagree")
    if slope_side:
        return slope_side, "sacral slope"
    if wedge_side:
        return wedge_side, "disc wedging"
    raise SkipFile("anterior side ambiguous: S1 endplate nearly level and discs not wedged")


def bodies_from_endplates(lines: np.ndarray, anterior_side: str) -> list[BodyRecord]:
    a, p = (0, 1) if anterior_side == "left" else (1, 0)
    mid_y = lines[:, :, 1].mean(axis=1)
    if np.any(np.diff(mid_y) <= 0):
        raise SkipFile("endplates are not in top-to-bottom order (L1 upper ... S1 upper)")
    bodies = []
    for k, level in enumerate(LEVELS):
        up, low = lines[2 * k], lines[2 * k + 1]
        bodies.append(BodyRecord(label=k + 1, level=level, as_=tuple(up[a]), ai=tuple(low[a]),
                                 ps=tuple(up[p]), pi=tuple(low[p])))
    return bodies


def _loader(image_path: Path | None, csv_path: Path, counters: dict):
    def load() -> ImageRecord:
        if image_path is None:
            raise SkipFile("no image beside the annotation CSV")
        lines = read_endplates(csv_path)
        image = load_image(image_path)
        lines = check_points(lines, image.pixels.shape, "endplates")
        side = image.anterior_side if image.anterior_side in ("left", "right") else infer_anterior_side(lines)[0]
        bodies = bodies_from_endplates(lines, side)
        counters["moved"] += resolve_overlaps(bodies)
        mask = rasterise(image.pixels.shape, bodies)
        return ImageRecord(pixels=image.pixels, mask=mask, bodies=bodies, anterior_side=side,
                           pixel_spacing_mm=image.pixel_spacing_mm)

    return load


def collect(src: str | Path) -> tuple[list[Entry], Callable[[], list[str]]]:
    src = Path(src)
    folder = src / "LA" if (src / "LA").is_dir() else src
    if not folder.is_dir():
        raise InputError(f"{src}: BUU-LSPINE folder not found")
    entries, odd, counters = [], 0, {"moved": 0}
    for csv_path in sorted(folder.glob("*.csv")):
        images = [p for p in sorted(folder.glob(f"{glob.escape(csv_path.stem)}.*"))
                  if p.suffix.lower() in IMAGE_SUFFIXES]
        match = _SUBJECT.match(csv_path.stem)
        note = "" if match else "name does not start with '<patient number>-': its own subject"
        odd += not match
        entries.append(Entry(name=csv_path.stem, source_subject=match.group("subject") if match else csv_path.stem,
                             load=_loader(images[0] if images else None, csv_path, counters),
                             files=[csv_path, *images], note=note))
    if not entries:
        raise InputError(f"{folder}: no annotation CSVs found")

    def notes() -> list[str]:  # read after the loaders ran
        items = [f"{odd} name(s) did not start with a patient number; each is its own subject"] if odd else []
        if counters["moved"]:
            items.append(MOVED_NOTE.format(counters["moved"]))
        return items

    return entries, notes
