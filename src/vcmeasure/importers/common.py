"""What every importer shares: per-file records, bad-input handling, and writing the canonical dataset.

An importer turns its source into a list of :class:`Entry` (one per image: its private source name, its
source subject and a loader). :func:`write_import` runs the loaders, writes the canonical dataset of DESIGN §3
(``images/``, ``masks/``, ``images.csv``, ``vertebrae.csv``, ``measurements.csv``) atomically, and

- keeps going past bad files (unreadable, wrong point count, points outside the image, ...): each is recorded
  with its reason in ``DEST/import_skipped.csv`` (by image id, never by source name);
- keeps patient data out: ids are salted hashes (:mod:`.ids`), source names and subjects go only to the private
  mapping file, which must lie outside ``DEST``;
- computes the dataset's measure with Eq. 1 (:func:`vcmeasure.measures.vertebral_compression`) on the heights
  between the ``as``/``ai`` corners for every body with a neighbour above and below.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..dataset import IMAGES_COLUMNS, MEASURE_VC, MEASUREMENTS_COLUMNS, VERTEBRAE_COLUMNS
from ..errors import ConfigError, InputError
from ..io import atomic_dir, is_dicom, read_image, write_csv, write_png
from ..measures import genant_grade, vertebral_compression
from .ids import assign_image_ids, resolve_salt, subject_id

SKIPPED_FILE = "import_skipped.csv"
SKIPPED_COLUMNS = ["image_id", "reason"]
MOVED_NOTE = "{} pair(s) of crossing corners of neighbouring bodies moved to their midpoint"
MAPPING_COLUMNS = ["image_id", "subject_id", "source_subject", "source_file", "status", "note"]


class SkipFile(Exception):
    """A source file that cannot be imported; the message is the reason (it must not name the file)."""


@dataclass
class BodyRecord:
    """One vertebral body: label 1..K top to bottom, corners (x, y) in source pixels."""

    label: int
    level: str
    as_: tuple[float, float]
    ai: tuple[float, float]
    ps: tuple[float, float]
    pi: tuple[float, float]
    fractured: int | None = None
    value_reader: float | None = None  # a reader's value of the measure for this body, when the source has one

    @property
    def ha(self) -> float:
        return math.dist(self.as_, self.ai)

    @property
    def hp(self) -> float:
        return math.dist(self.ps, self.pi)


@dataclass
class ImageRecord:
    pixels: np.ndarray
    mask: np.ndarray
    bodies: list[BodyRecord]
    anterior_side: str
    pixel_spacing_mm: float | None = None


@dataclass
class Entry:
    """One source image: ``name`` (private, relative to SRC), its source subject, and a loader."""

    name: str
    source_subject: str
    load: Callable[[], ImageRecord]
    files: list[Path] = field(default_factory=list)  # paths whose names must be scrubbed from reasons
    note: str = ""


@dataclass
class ImportReport:
    dest: Path
    mapping: Path
    imported: int
    skipped: list[tuple[str, str]]  # (image_id, reason)
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.skipped


@dataclass
class LoadedImage:
    pixels: np.ndarray
    pixel_spacing_mm: float | None = None
    anterior_side: str = "unknown"


def load_image(path: Path) -> LoadedImage:
    """Any supported image; DICOM files also give their pixel spacing and anterior side (and nothing else)."""
    if is_dicom(path):
        from ..dicom import read_dicom

        dcm = read_dicom(path)
        return LoadedImage(dcm.pixels, dcm.pixel_spacing_mm, dcm.anterior_side)
    return LoadedImage(read_image(path))


def check_points(points: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    """Refuse non-finite points and points outside the image; within half a pixel of the border they are clipped
    onto it (the contract wants corners in [0, width - 1] x [0, height - 1]). Returns the points, same shape."""
    points = np.asarray(points, dtype=float)
    flat = points.reshape(-1, 2)
    if not np.all(np.isfinite(flat)):
        raise SkipFile(f"{what}: non-finite coordinates")
    h, w = shape[:2]
    outside = (flat[:, 0] < -0.5) | (flat[:, 0] > w - 0.5) | (flat[:, 1] < -0.5) | (flat[:, 1] > h - 0.5)
    if outside.any():
        x, y = flat[np.argmax(outside)]
        raise SkipFile(f"{what}: {int(outside.sum())} point(s) outside the {w}x{h} image, e.g. ({x:.1f}, {y:.1f})")
    clipped = np.column_stack([np.clip(flat[:, 0], 0, w - 1), np.clip(flat[:, 1], 0, h - 1)])
    return clipped.reshape(points.shape)


def resolve_overlaps(bodies: list[BodyRecord]) -> int:
    """Neighbouring bodies whose landmarks cross: move the crossing corner pair to its midpoint (in place).

    Annotators sometimes put a body's inferior corner below the next body's superior corner on the same side
    (AASCE has a few). Rasterised, one of the two corners would then lie inside the other body; meeting at the
    midpoint keeps both corners on their bodies and the bodies apart. Returns how many pairs were moved.
    """
    moved = 0
    by_label = {b.label: b for b in bodies}
    for body in bodies:
        below = by_label.get(body.label + 1)
        if below is None:
            continue
        axis = np.mean([below.as_, below.ai, below.ps, below.pi], axis=0) - np.mean(
            [body.as_, body.ai, body.ps, body.pi], axis=0)
        axis = axis / (np.linalg.norm(axis) or 1.0)
        for low, up in (("ai", "as_"), ("pi", "ps")):
            a, b = np.asarray(getattr(body, low)), np.asarray(getattr(below, up))
            if float(np.dot(a - b, axis)) > 0:  # the upper body's corner lies beyond the lower body's
                mid = tuple(float(v) for v in (a + b) / 2)
                setattr(body, low, mid)
                setattr(below, up, mid)
                moved += 1
    return moved


def rasterise(shape: tuple[int, int], bodies: list[BodyRecord]) -> np.ndarray:
    """Label map from the corner quadrilaterals (AS -> PS -> PI -> AI), label = body label."""
    mask = np.zeros(shape[:2], np.uint8 if len(bodies) <= 255 else np.uint16)
    for body in bodies:
        quad = np.array([body.as_, body.ps, body.pi, body.ai], dtype=float)
        cv2.fillPoly(mask, [np.rint(quad).astype(np.int32)], int(body.label))
    present = set(np.unique(mask).tolist())
    missing = [b.label for b in bodies if b.label not in present]
    if missing:
        raise SkipFile(f"body {missing[0]} covers no pixel (degenerate or hidden by its neighbours)")
    for body in bodies:  # DESIGN §4 condition (1) must hold on ground truth: one component per body
        count, _ = cv2.connectedComponents((mask == body.label).astype(np.uint8), connectivity=8)
        if count - 1 != 1:
            raise SkipFile(f"body {body.label} is split into {count - 1} pieces by overlapping neighbours")
    return mask


def _scrub(reason: str, entry: Entry) -> str:
    """Take source names and paths out of a reason: only the image id may identify the file."""
    for path in sorted(entry.files, key=lambda p: -len(str(p))):
        reason = reason.replace(str(path), f"<{path.suffix.lstrip('.') or 'source'} file>")
        reason = reason.replace(path.name, f"<{path.suffix.lstrip('.') or 'source'} file>")
    # the reasons this package writes name files only through their paths; a bare subject is not searched
    # for, since short subjects would also match ordinary words of the reason
    return reason.replace(entry.name, "<source>")


def _measurements(image_id: str, bodies: list[BodyRecord], measure: str) -> list[dict]:
    by_label = {b.label: b for b in bodies}
    rows = []
    for body in bodies:
        above, below = by_label.get(body.label - 1), by_label.get(body.label + 1)
        if above is None or below is None:
            continue
        true = vertebral_compression(body.ha, above.ha, below.ha)
        reader = true if body.value_reader is None else float(body.value_reader)
        # a Genant grade is defined on VC only; other measures (AP side-height ratios) get none
        grade = int(genant_grade(reader)) if measure == MEASURE_VC else None
        rows.append({"image_id": image_id, "label": body.label, "measure": measure, "value_true": true,
                     "value_reader": reader, "genant_grade": grade})
    return rows


def _vertebra_row(image_id: str, body: BodyRecord) -> dict:
    row = {"image_id": image_id, "label": body.label, "level": body.level}
    for name, (x, y) in (("as", body.as_), ("ai", body.ai), ("ps", body.ps), ("pi", body.pi)):
        row[f"{name}_x"], row[f"{name}_y"] = float(x), float(y)
    row.update(ha_px=body.ha, hp_px=body.hp, fractured=body.fractured)
    return row


def default_mapping_path(dest: Path) -> Path:
    """``.private/<dataset name>_mapping.csv`` in the working directory (kept out of git by .gitignore)."""
    return Path(".private") / f"{Path(dest).name}_mapping.csv"


def _check_mapping_outside(mapping: Path, dest: Path) -> None:
    mapping_abs, dest_abs = mapping.resolve(), dest.resolve()
    if mapping_abs == dest_abs or dest_abs in mapping_abs.parents:
        raise ConfigError(f"mapping file {mapping}: must lie outside the dataset folder {dest} (it holds source "
                          "names, which must not reach data/raw)")


def write_import(entries: list[Entry], dest: str | Path, *, source: str, measure: str, salt: str | None = None,
                 mapping: str | Path | None = None, keep_names: bool = False, notes=None,
                 log=None) -> ImportReport:
    """Load every entry, write the canonical dataset to ``dest`` and the private mapping; report what was skipped."""
    dest = Path(dest)
    log = log or sys.stderr
    salt = resolve_salt(salt)
    mapping = Path(mapping) if mapping else default_mapping_path(dest)
    _check_mapping_outside(mapping, dest)
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise InputError(f"{dest}: two source files give the same image name")
    ids = assign_image_ids(names, salt, keep_names=keep_names)
    images, vertebrae, measurements, skipped, mapping_rows = [], [], [], [], []
    with atomic_dir(dest) as tmp:
        for entry in sorted(entries, key=lambda e: e.name):
            image_id, sid = ids[entry.name], subject_id(salt, entry.source_subject)
            try:
                record = entry.load()
            except (InputError, SkipFile) as err:
                reason = _scrub(str(err), entry)
                skipped.append((image_id, reason))
                mapping_rows.append([image_id, sid, entry.source_subject, entry.name, "skipped",
                                     "; ".join(x for x in (entry.note, reason) if x)])
                print(f"skipped {image_id}: {reason}", file=log)
                continue
            h, w = record.pixels.shape[:2]
            write_png(tmp / "images" / f"{image_id}.png", record.pixels)
            write_png(tmp / "masks" / f"{image_id}.png", record.mask)
            images.append({"image_id": image_id, "subject_id": sid, "anterior_side": record.anterior_side,
                           "pixel_spacing_mm": record.pixel_spacing_mm, "width": w, "height": h, "source": source})
            vertebrae += [_vertebra_row(image_id, b) for b in record.bodies]
            measurements += _measurements(image_id, record.bodies, measure)
            mapping_rows.append([image_id, sid, entry.source_subject, entry.name, "imported", entry.note])
        write_csv(tmp / "images.csv", pd.DataFrame(images, columns=IMAGES_COLUMNS))
        frame = pd.DataFrame(vertebrae, columns=VERTEBRAE_COLUMNS)
        frame["fractured"] = frame["fractured"].astype("Int64")
        write_csv(tmp / "vertebrae.csv", frame)
        frame = pd.DataFrame(measurements, columns=MEASUREMENTS_COLUMNS)
        frame["genant_grade"] = frame["genant_grade"].astype("Int64")
        write_csv(tmp / "measurements.csv", frame)
        write_csv(tmp / SKIPPED_FILE, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))
    write_csv(mapping, pd.DataFrame(mapping_rows, columns=MAPPING_COLUMNS))
    notes = list(notes() if callable(notes) else notes or [])
    for note in notes:
        print(f"note: {note}", file=log)
    print(f"imported {len(images)} image(s) into {dest}; skipped {len(skipped)} (see {dest / SKIPPED_FILE}); "
          f"source names in the private mapping {mapping}", file=log)
    return ImportReport(dest=dest, mapping=mapping, imported=len(images), skipped=skipped, notes=notes)
