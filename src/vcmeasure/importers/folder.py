"""A plain folder of radiographs and label masks into the canonical dataset (issue 10; DESIGN §3-§4).

Source layout::

    SRC/images/<name>.<png|jpg|tif|dcm|...>   radiographs (DICOM too, also without a suffix)
    SRC/masks/<name>.<png|tif>                 label map of the same size: 0 background, one value per body
                                               (any values; a binary mask is split into connected components)
    SRC/subjects.csv     optional: image, subject[, anterior_side][, pixel_spacing_mm]
    SRC/readings.csv     optional: image, label, value[, level][, fractured] -- a reader's VC per body

``image`` is the image's file name or its name without suffix; ``label`` is the body's value in the source
mask (for a binary mask: its rank top to bottom, 1 = uppermost). Bodies are renumbered 1..K top to bottom.

- Subject: ``subjects.csv`` when given, else each image is its own subject (reported). Stored as salted hash.
- Anterior side: ``subjects.csv`` column, else the DICOM PatientOrientation, else assumed ``left`` (the
  canonical orientation, DESIGN §5) and reported.
- Corners: :func:`vcmeasure.geometry.measure_bodies` (the same corner finder as the triplet step), on the
  mask flipped so anterior faces left; a body it cannot fit falls back to the corners of
  ``cv2.minAreaRect`` (reported).
- Measure ``vc_anterior`` from the corners (Eq. 1); ``value_reader`` from ``readings.csv`` when given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..dataset import ANTERIOR_SIDES, MEASURE_VC
from ..errors import InputError
from ..io import IMAGE_SUFFIXES, is_dicom, read_csv_checked, read_mask
from .common import BodyRecord, Entry, ImageRecord, SkipFile, load_image

SOURCE = "folder"
MEASURE = MEASURE_VC
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")


def _read_optional_csv(path: Path, required: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return read_csv_checked(path, required, dtype=str, skipinitialspace=True)


def _key(name: str) -> str:
    path = Path(str(name).strip())
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _label_components(mask: np.ndarray) -> np.ndarray:
    """A binary mask becomes one label per connected component, numbered top to bottom."""
    count, comp, _, centroids = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    order = sorted(range(1, count), key=lambda i: (centroids[i][1], centroids[i][0]))
    out = np.zeros(mask.shape, np.uint16)
    for rank, comp_id in enumerate(order, start=1):
        out[comp == comp_id] = rank
    return out


def _rect_corners(body: np.ndarray) -> np.ndarray:
    """Fallback: minAreaRect corners of a (canonical, anterior-left) body, as AS, AI, PS, PI."""
    ys, xs = np.nonzero(body)
    box = cv2.boxPoints(cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32)))
    top, bottom = box[np.argsort(box[:, 1])[:2]], box[np.argsort(box[:, 1])[2:]]
    top, bottom = top[np.argsort(top[:, 0])], bottom[np.argsort(bottom[:, 0])]
    return np.array([top[0], bottom[0], top[1], bottom[1]], float)


def corners_from_mask(label_map: np.ndarray, anterior_side: str) -> tuple[list[tuple[int, np.ndarray]], int]:
    """[(source label, corners AS, AI, PS, PI)] top to bottom, and how many bodies needed the fallback."""
    from ..geometry import measure_bodies

    flip = anterior_side == "right"
    canonical = label_map[:, ::-1] if flip else label_map
    out, fallbacks = [], 0
    for body in measure_bodies(canonical):
        corners = body.corners
        if corners is None:
            corners, fallbacks = _rect_corners(canonical == body.label), fallbacks + 1
        corners = np.asarray(corners, float).copy()
        if flip:
            corners[:, 0] = label_map.shape[1] - 1 - corners[:, 0]
        out.append((body.label, corners))
    return out, fallbacks


def _loader(image_path: Path, mask_path: Path | None, meta: dict, readings: dict[int, dict], counters: dict):
    def load() -> ImageRecord:
        if mask_path is None:
            raise SkipFile("no mask for this image (masks/<name>.png)")
        image = load_image(image_path)
        mask = read_mask(mask_path)
        if mask.shape != image.pixels.shape[:2]:
            raise SkipFile(f"mask size {mask.shape[::-1]} differs from image size {image.pixels.shape[1::-1]}")
        values = np.unique(mask[mask > 0])
        if values.size == 0:
            raise SkipFile("mask has no body")
        source_labels = _label_components(mask) if values.size == 1 else mask
        side = meta.get("anterior_side") or image.anterior_side
        if side not in ("left", "right"):
            side = "left"
            counters["assumed_left"] += 1
        found, fallbacks = corners_from_mask(source_labels, side)
        counters["rect_fallback"] += fallbacks
        relabelled = np.zeros(mask.shape, np.uint8 if len(found) <= 255 else np.uint16)
        bodies = []
        for new, (old, c) in enumerate(found, start=1):
            relabelled[source_labels == old] = new
            reading = readings.get(int(old), {})
            bodies.append(BodyRecord(label=new, level=reading.get("level", ""), as_=tuple(c[0]), ai=tuple(c[1]),
                                     ps=tuple(c[2]), pi=tuple(c[3]), fractured=reading.get("fractured"),
                                     value_reader=reading.get("value")))
        spacing = _number(meta.get("pixel_spacing_mm")) or image.pixel_spacing_mm
        return ImageRecord(pixels=image.pixels, mask=relabelled, bodies=bodies, anterior_side=side,
                           pixel_spacing_mm=spacing)

    return load


def _readings(frame: pd.DataFrame | None, path: Path) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    if frame is None:
        return out
    for row in frame.to_dict("records"):
        label, value = _number(row.get("label")), _number(row.get("value"))
        if label is None or value is None:
            raise InputError(f"{path}: every row needs a numeric label and value")
        item = {"value": value}
        if isinstance(row.get("level"), str) and row["level"].strip():
            item["level"] = row["level"].strip()
        flag = _number(row.get("fractured"))
        if flag is not None:
            item["fractured"] = int(flag)
        out.setdefault(_key(row["image"]), {})[int(label)] = item
    return out


def collect(src: str | Path) -> tuple[list[Entry], Callable[[], list[str]]]:
    src = Path(src)
    image_dir, mask_dir = src / "images", src / "masks"
    if not image_dir.is_dir():
        raise InputError(f"{src}: no images/ folder")
    subjects = _read_optional_csv(src / "subjects.csv", ["image", "subject"])
    meta = {} if subjects is None else {_key(r["image"]): r for r in subjects.to_dict("records")}
    for row in meta.values():
        side = row.get("anterior_side")
        if isinstance(side, str) and side.strip():
            if side.strip() not in ANTERIOR_SIDES:
                raise InputError(f"{src / 'subjects.csv'}: anterior_side must be one of {', '.join(ANTERIOR_SIDES)}")
            row["anterior_side"] = side.strip()
        else:
            row["anterior_side"] = None
    readings = _readings(_read_optional_csv(src / "readings.csv", ["image", "label", "value"]), src / "readings.csv")
    counters = {"assumed_left": 0, "rect_fallback": 0}
    entries, own_subject = [], 0
    for image_path in sorted(p for p in image_dir.iterdir() if p.is_file()):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES and not is_dicom(image_path):
            continue
        key = _key(image_path.name)
        masks = [mask_dir / f"{key}{s}" for s in MASK_SUFFIXES if (mask_dir / f"{key}{s}").is_file()]
        row = meta.get(key, {})
        subject = str(row.get("subject") or "").strip()
        if not subject:
            subject, own_subject = key, own_subject + 1
        entries.append(Entry(name=image_path.name, source_subject=subject,
                             load=_loader(image_path, masks[0] if masks else None, row, readings.get(key, {}),
                                          counters),
                             files=[image_path, *masks]))
    if not entries:
        raise InputError(f"{image_dir}: no images found")

    def notes() -> list[str]:  # counts are known only after the loaders ran
        items = []
        if own_subject:
            items.append(f"{own_subject} image(s) without a subject in subjects.csv: each is its own subject")
        if counters["assumed_left"]:
            items.append(f"{counters['assumed_left']} image(s) without a known anterior side: assumed left")
        if counters["rect_fallback"]:
            items.append(f"{counters['rect_fallback']} body(ies) whose corners came from cv2.minAreaRect")
        return items

    return entries, notes
