"""Check a dataset folder against the canonical contract (DESIGN §3 data format, §4 Eq. 1; issue 3).

:func:`validate_dataset` returns every problem as one line naming the file and the row (CSV line number,
header = line 1) so that a user can fix an imported or generated dataset: tables and columns present, image
ids well formed and consistent across files, images and masks present with the recorded size, labels
1..K numbered top to bottom with each body one connected component, corners inside the image and on their
body, heights equal to the corner distances, ``value_true`` equal to Eq. 1 on the neighbours' anterior
heights, Genant grades and flags in range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from .dataset import (
    ANTERIOR_SIDES,
    CORNER_COLUMNS,
    IMAGE_ID_RE,
    IMAGES_COLUMNS,
    MEASURE_VC,
    MEASUREMENTS_COLUMNS,
    VERTEBRAE_COLUMNS,
)
from .errors import InputError
from .io import read_image, read_mask
from .measures import genant_grade, vertebral_compression

CORNER_TOL_PX = 1.5  # a corner may sit on the boundary: within this distance of a pixel of its body
HEIGHT_TOL_PX = 0.05
VC_TOL = 0.05  # VC points: CSV rounding of the corners moves Eq. 1 by far less


def _line(idx) -> int:
    """CSV line of a 0-based data row (the header is line 1)."""
    return int(idx) + 2


def _read(root: Path, name: str, columns: list[str], problems: list[str]) -> pd.DataFrame | None:
    path = root / name
    if not path.is_file():
        problems.append(f"{name}: missing file")
        return None
    try:
        frame = pd.read_csv(path, dtype={"image_id": str, "subject_id": str, "level": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        problems.append(f"{name}: not a readable CSV ({str(err).splitlines()[0]})")
        return None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        problems.append(f"{name}: missing column(s) {', '.join(missing)}")
        return None
    return frame


def _numeric(frame: pd.DataFrame, cols: list[str], name: str, problems: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for col in cols:
        values = pd.to_numeric(out[col], errors="coerce")
        for idx in out.index[values.isna() & out[col].notna()]:
            problems.append(f"{name} line {_line(idx)}: {col} '{out.at[idx, col]}' is not a number")
        out[col] = values
    return out


def _check_images(root: Path, images: pd.DataFrame, problems: list[str]) -> dict[str, tuple]:
    """Per-image checks; returns image_id -> (mask or None, height, width, anterior side)."""
    info: dict[str, tuple] = {}
    seen: set[str] = set()
    images = _numeric(images, ["width", "height", "pixel_spacing_mm"], "images.csv", problems)
    for idx, row in images.iterrows():
        where = f"images.csv line {_line(idx)}"
        image_id = row["image_id"]
        if not isinstance(image_id, str) or not IMAGE_ID_RE.match(image_id):
            problems.append(f"{where}: bad image_id '{image_id}' (must match [A-Za-z0-9_-]+)")
            continue
        if image_id in seen:
            problems.append(f"{where}: duplicate image_id '{image_id}'")
            continue
        seen.add(image_id)
        if pd.isna(row["subject_id"]) or not str(row["subject_id"]).strip():
            problems.append(f"{where}: empty subject_id for image '{image_id}'")
        side = row["anterior_side"]
        if side not in ANTERIOR_SIDES:
            problems.append(f"{where}: anterior_side '{side}' not one of {', '.join(ANTERIOR_SIDES)}")
        spacing = row["pixel_spacing_mm"]
        if pd.notna(spacing) and not spacing > 0:
            problems.append(f"{where}: pixel_spacing_mm {spacing} must be positive or empty")
        try:
            img = read_image(root / "images" / f"{image_id}.png")
        except InputError:
            problems.append(f"images/{image_id}.png: missing file or unreadable image (images.csv line {_line(idx)})")
            img = None
        if img is not None and (row["width"], row["height"]) != (img.shape[1], img.shape[0]):
            problems.append(f"{where}: width x height {row['width']} x {row['height']} but images/{image_id}.png is "
                            f"{img.shape[1]} x {img.shape[0]}")
        try:
            mask = read_mask(root / "masks" / f"{image_id}.png")
        except InputError:
            problems.append(f"masks/{image_id}.png: missing file or unreadable mask (images.csv line {_line(idx)})")
            mask = None
        if mask is not None:
            if mask.dtype not in (np.uint8, np.uint16):
                problems.append(f"masks/{image_id}.png: label mask must be uint8 or uint16, not {mask.dtype}")
            if img is not None and mask.shape != img.shape[:2]:
                problems.append(f"masks/{image_id}.png: size {mask.shape[1]} x {mask.shape[0]} differs from the "
                                f"image's {img.shape[1]} x {img.shape[0]}")
                mask = None
        height = img.shape[0] if img is not None else row["height"]
        width = img.shape[1] if img is not None else row["width"]
        info[image_id] = (mask, height, width, side)
    for name in ("images", "masks"):
        folder = root / name
        if not folder.is_dir():
            problems.append(f"{name}/: missing folder")
            continue
        for path in sorted(folder.glob("*.png")):
            if path.stem not in seen:
                problems.append(f"{name}/{path.name}: image id not listed in images.csv")
    return info


def _check_mask_labels(image_id: str, mask: np.ndarray, labels: list[int], problems: list[str]) -> None:
    present = sorted(int(v) for v in np.unique(mask) if v != 0)
    where = f"masks/{image_id}.png"
    if present != list(range(1, len(present) + 1)):
        problems.append(f"{where}: labels {present} are not 1..K without gaps")
    if sorted(labels) != present:
        problems.append(f"{where}: mask labels {present} differ from vertebrae.csv labels {sorted(labels)}")
    if not present:
        return
    centroids = ndimage.center_of_mass(np.ones_like(mask), mask, present)
    rows = [c[0] for c in centroids]
    if any(b <= a for a, b in zip(rows, rows[1:], strict=False)):
        problems.append(f"{where}: label order is not top to bottom (centroid rows "
                        f"{', '.join(f'{r:.0f}' for r in rows)} for labels {present})")
    for lab in present:
        _, n = ndimage.label(mask == lab)
        if n != 1:
            problems.append(f"{where}: label {lab} is {n} connected components, not one body")


def _on_body(mask: np.ndarray, x: float, y: float, label: int) -> bool:
    """Is (x, y) within CORNER_TOL_PX of a pixel of ``label``?"""
    r = int(np.ceil(CORNER_TOL_PX))
    xi, yi = int(round(x)), int(round(y))
    y0, y1 = max(yi - r, 0), min(yi + r + 1, mask.shape[0])
    x0, x1 = max(xi - r, 0), min(xi + r + 1, mask.shape[1])
    ys, xs = np.nonzero(mask[y0:y1, x0:x1] == label)
    return bool(len(ys)) and bool(np.min(np.hypot(xs + x0 - x, ys + y0 - y)) <= CORNER_TOL_PX)


def _check_vertebrae(vert: pd.DataFrame, info: dict, problems: list[str]) -> pd.DataFrame:
    vert = _numeric(vert, ["label", *CORNER_COLUMNS, "ha_px", "hp_px", "fractured"], "vertebrae.csv", problems)
    dup = vert.duplicated(["image_id", "label"], keep="first")
    for idx, row in vert.iterrows():
        where = f"vertebrae.csv line {_line(idx)} (image {row['image_id']}, label {row['label']})"
        if row["image_id"] not in info:
            problems.append(f"{where}: image_id not in images.csv")
            continue
        if dup[idx]:
            problems.append(f"{where}: duplicate label")
            continue
        if pd.isna(row["label"]) or row["label"] < 1 or row["label"] != int(row["label"]):
            problems.append(f"{where}: label must be an integer >= 1")
            continue
        if pd.notna(row["fractured"]) and row["fractured"] not in (0, 1):
            problems.append(f"{where}: fractured must be 1, 0 or empty (got {row['fractured']})")
        corners = row[CORNER_COLUMNS].to_numpy(float)
        if np.isnan(corners).any():
            problems.append(f"{where}: corner coordinates missing")
            continue
        mask, height, width, side = info[row["image_id"]]
        pts = corners.reshape(4, 2)
        for name, (x, y) in zip(("as", "ai", "ps", "pi"), pts, strict=True):
            if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
                problems.append(f"{where}: corner {name} ({x:g}, {y:g}) outside the {width} x {height} image")
            elif mask is not None and not _on_body(mask, x, y, int(row["label"])):
                problems.append(f"{where}: corner {name} ({x:g}, {y:g}) outside body {int(row['label'])} in the mask")
        ha, hp = np.hypot(*(pts[0] - pts[1])), np.hypot(*(pts[2] - pts[3]))
        for col, value in (("ha_px", ha), ("hp_px", hp)):
            if not abs(row[col] - value) <= HEIGHT_TOL_PX + 1e-4 * value:
                problems.append(f"{where}: {col} {row[col]:g} differs from the corner distance {value:.3f}")
        anterior_x, posterior_x = pts[:2, 0].mean(), pts[2:, 0].mean()
        if side == "left" and anterior_x > posterior_x or side == "right" and anterior_x < posterior_x:
            problems.append(f"{where}: anterior corners are not on the {side} (images.csv anterior_side)")
    return vert


def _check_measurements(meas: pd.DataFrame, vert: pd.DataFrame, problems: list[str]) -> None:
    meas = _numeric(meas, ["label", "value_true", "value_reader", "genant_grade"], "measurements.csv", problems)
    corners = vert[["image_id", "label", *CORNER_COLUMNS]].dropna()
    ha = {(r.image_id, int(r.label)): float(np.hypot(r.as_x - r.ai_x, r.as_y - r.ai_y))
          for r in corners.itertuples(index=False)}
    measured = set()
    for idx, row in meas.iterrows():
        key = (row["image_id"], int(row["label"]) if pd.notna(row["label"]) else -1)
        where = f"measurements.csv line {_line(idx)} (image {key[0]}, label {key[1]})"
        measured.add(key)
        if key not in ha:
            problems.append(f"{where}: no such body in vertebrae.csv")
            continue
        above, below = (key[0], key[1] - 1), (key[0], key[1] + 1)
        if above not in ha or below not in ha:
            problems.append(f"{where}: body has no neighbour above and below in vertebrae.csv")
            continue
        if pd.isna(row["value_true"]):
            problems.append(f"{where}: value_true missing")
            continue
        if pd.isna(row["value_reader"]):
            problems.append(f"{where}: value_reader missing (use value_true when there is no reader)")
        if row["measure"] == MEASURE_VC:
            expected = vertebral_compression(ha[key], ha[above], ha[below])
            if not abs(row["value_true"] - expected) <= VC_TOL:
                problems.append(f"{where}: value_true {row['value_true']:g} is not Eq. 1 of the corners' anterior "
                                f"heights ({expected:.3f})")
        grades = {genant_grade(row["value_true"])}
        if pd.notna(row["value_reader"]):
            grades.add(genant_grade(row["value_reader"]))
        if pd.notna(row["genant_grade"]) and int(row["genant_grade"]) not in grades:
            problems.append(f"{where}: genant_grade {row['genant_grade']:g} does not match the value "
                            f"(expected {' or '.join(map(str, sorted(grades)))})")
    if (meas["measure"] == MEASURE_VC).any():
        for key in sorted(ha):
            if (key[0], key[1] - 1) in ha and (key[0], key[1] + 1) in ha and key not in measured:
                problems.append(f"measurements.csv: no row for image {key[0]}, label {key[1]} (it has a neighbour "
                                "above and below)")


def validate_dataset(path: str | Path) -> list[str]:
    """Every way the dataset at ``path`` breaks the contract, one line each (empty list: valid)."""
    root = Path(path)
    if not root.is_dir():
        return [f"{root}: dataset folder not found"]
    problems: list[str] = []
    images = _read(root, "images.csv", IMAGES_COLUMNS, problems)
    vert = _read(root, "vertebrae.csv", VERTEBRAE_COLUMNS, problems)
    meas = _read(root, "measurements.csv", MEASUREMENTS_COLUMNS, problems)
    info = _check_images(root, images, problems) if images is not None else {}
    if vert is not None:
        vert = _check_vertebrae(vert, info, problems)
        for image_id, (mask, *_rest) in info.items():
            if mask is not None:
                labels = vert.loc[vert["image_id"] == image_id, "label"].dropna().astype(int).tolist()
                _check_mask_labels(image_id, mask, labels, problems)
        if meas is not None:
            _check_measurements(meas, vert, problems)
    return problems
