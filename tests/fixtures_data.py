"""Tiny canonical datasets (DESIGN §3) built inside the tests, independent of the synthetic generator.

``make_dataset(root, specs)`` draws rectangular "vertebral bodies" stacked top to bottom on a dark
background, writes their label mask, corners and Eq. 1 values, and returns the dataset folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from vcmeasure.measures import genant_grade, vertebral_compression


@dataclass
class ImageSpec:
    image_id: str
    subject_id: str
    width: int = 60
    height: int = 90
    anterior_side: str = "left"
    n_bodies: int = 4
    mode: str = "gray8"  # gray8 | gray16 | rgb | palette
    wedge: float = 0.3  # fractional anterior height loss of the second body (a compression)


def _draw(spec: ImageSpec, rng: np.random.Generator):
    w, h = spec.width, spec.height
    img = rng.normal(40, 6, (h, w))
    mask = np.zeros((h, w), np.uint8)
    gap = h / (spec.n_bodies * 4 + 1)
    body_h = 3 * gap
    x0, x1 = round(w * 0.25), round(w * 0.75)
    rows = []
    for k in range(spec.n_bodies):
        top = gap + k * (body_h + gap)
        bottom = top + body_h
        loss = spec.wedge * body_h if k == 1 else 0.0
        # anterior faces left unless the patient faces right
        ant_x, post_x = (x0, x1) if spec.anterior_side != "right" else (x1, x0)
        poly = np.array([[ant_x, top + loss], [post_x, top], [post_x, bottom], [ant_x, bottom]], np.float64)
        cv2.fillPoly(mask, [np.rint(poly).astype(np.int32)], k + 1)
        rows.append({"image_id": spec.image_id, "label": k + 1, "level": f"L{k + 1}",
                     "as_x": ant_x, "as_y": top + loss, "ai_x": ant_x, "ai_y": bottom,
                     "ps_x": post_x, "ps_y": top, "pi_x": post_x, "pi_y": bottom,
                     "ha_px": bottom - top - loss, "hp_px": bottom - top, "fractured": int(loss > 0)})
    img[mask > 0] += 120
    img = np.clip(img, 0, 255)
    return img, mask, rows


def _write_image(path: Path, img: np.ndarray, mode: str) -> None:
    if mode == "gray8":
        cv2.imwrite(str(path), img.astype(np.uint8))
    elif mode == "gray16":
        cv2.imwrite(str(path), (img * 257).astype(np.uint16))
    elif mode == "rgb":
        cv2.imwrite(str(path), np.dstack([img.astype(np.uint8)] * 3))
    elif mode == "palette":
        from PIL import Image

        Image.fromarray(img.astype(np.uint8), "L").convert("P").save(path)
    else:
        raise ValueError(mode)


def make_dataset(root: str | Path, specs: list[ImageSpec], seed: int = 0) -> Path:
    """Write a canonical dataset with one image per spec into ``root``; returns ``root``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, vertebrae, measurements = [], [], []
    for spec in specs:
        img, mask, rows = _draw(spec, rng)
        _write_image(root / "images" / f"{spec.image_id}.png", img, spec.mode)
        cv2.imwrite(str(root / "masks" / f"{spec.image_id}.png"), mask)
        images.append({"image_id": spec.image_id, "subject_id": spec.subject_id, "anterior_side": spec.anterior_side,
                       "pixel_spacing_mm": 0.15, "width": spec.width, "height": spec.height, "source": "test"})
        vertebrae += rows
        for k in range(1, len(rows) - 1):
            vc = vertebral_compression(rows[k]["ha_px"], rows[k - 1]["ha_px"], rows[k + 1]["ha_px"])
            measurements.append({"image_id": spec.image_id, "label": k + 1, "measure": "vc_anterior",
                                 "value_true": vc, "value_reader": vc, "genant_grade": genant_grade(vc)})
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    pd.DataFrame(vertebrae).to_csv(root / "vertebrae.csv", index=False)
    pd.DataFrame(measurements).to_csv(root / "measurements.csv", index=False)
    return root


def cohort_tables(n_single: int = 213, n_double: int = 87, seed: int = 0):
    """images / measurements tables of a cohort like the paper's (default 387 images of 300 subjects).

    Each image gets 3-6 measured bodies with VC drawn from a skewed distribution (mostly low, some fractures).
    """
    rng = np.random.default_rng(seed)
    images, meas = [], []
    n = 0
    for s in range(n_single + n_double):
        for _ in range(1 if s < n_single else 2):
            image_id = f"img{n:04d}"
            images.append({"image_id": image_id, "subject_id": f"subj{s:03d}", "anterior_side": "left"})
            for label in range(2, 2 + int(rng.integers(3, 7))):
                vc = float(rng.gamma(1.0, 8.6))
                meas.append({"image_id": image_id, "label": label, "measure": "vc_anterior", "value_true": vc,
                             "value_reader": vc + rng.normal(0, 1.0), "genant_grade": int(genant_grade(vc))})
            n += 1
    return pd.DataFrame(images), pd.DataFrame(meas)
