"""The image-processing baseline of Table 2 (paper "Vertebral compression measurement using image processing",
Fig. 5; DESIGN §4 Eq. 1).

On the three-body map of a window (Fig. 5a) the vertices and the centre of each body are found (Fig. 5b); a
line through two centres (the neighbours' of each body: the local spine axis) divides each body's vertices
into a left and a right part (Fig. 5c, d); with anterior facing left (DESIGN §5) the left vertices give the
anterior height (Fig. 5e), and the three anterior heights give VC by Eq. 1
(:func:`vcmeasure.measures.vertebral_compression`). The vertices come from :func:`vcmeasure.geometry.find_corners`
and are treated as an unlabelled set, so the left/right division really is made by the centre line.

Predictions are written for every window of the evaluated source in the format every method shares
(``predictions.csv``: triplet_id, image_id, subject_id, split, model, predicted, reference, value_true,
fractured); the statistics step filters test and fractured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .geometry import measure_bodies
from .io import read_mask, write_csv
from .measures import vertebral_compression
from .triplets import component_map

log = logging.getLogger(__name__)

MODEL_NAME = "image_processing"
PREDICTION_COLUMNS = ["triplet_id", "image_id", "subject_id", "split", "model", "predicted", "reference",
                      "value_true", "fractured"]


@dataclass
class Fig5Result:
    """Everything Fig. 5 shows for one three-body map (top, middle, bottom)."""

    centres: np.ndarray  # (3, 2)
    vertices: list[np.ndarray]  # per body (4, 2), unordered
    lines: list[tuple[np.ndarray, np.ndarray]]  # per body: the two centres its dividing line passes through
    anterior: list[np.ndarray]  # per body (2, 2): left vertices
    posterior: list[np.ndarray]  # per body (2, 2): right vertices
    heights: np.ndarray  # (3,) anterior heights (px)

    @property
    def vc(self) -> float:
        """Eq. 1 for the middle body."""
        return vertebral_compression(self.heights[1], self.heights[0], self.heights[2])


def divide_vertices(vertices: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split vertices by the line from centre ``p`` down to centre ``q``: (left = anterior, right = posterior).

    The two vertices farthest left form the anterior pair even if the line leaves three on one side.
    """
    d = np.asarray(q, float) - np.asarray(p, float)
    if d[1] < 0:
        d = -d  # direction down the spine, so "left of the line" is the image's left
    rel = np.asarray(vertices, float) - np.asarray(p, float)
    side = d[0] * rel[:, 1] - d[1] * rel[:, 0]  # > 0: left of the downward line
    order = np.argsort(-side, kind="stable")
    return vertices[order[:2]], vertices[order[2:]]


def fig5_measure(three_body_map: np.ndarray) -> Fig5Result | None:
    """Fig. 5 on a map holding exactly three bodies (any labels); None when a body has no four vertices."""
    bodies = measure_bodies(three_body_map)
    if len(bodies) != 3 or any(not b.has_corners for b in bodies):
        return None
    centres = np.array([b.centre for b in bodies])
    pairs = [(0, 1), (0, 2), (1, 2)]  # each body's line: through the centres of its neighbours
    vertices, lines, anterior, posterior, heights = [], [], [], [], []
    for b, (i, j) in zip(bodies, pairs, strict=True):
        v = np.asarray(b.corners)[[0, 2, 3, 1]]  # walk around the body: the labels are not used below
        left, right = divide_vertices(v, centres[i], centres[j])
        vertices.append(v)
        lines.append((centres[i], centres[j]))
        anterior.append(left)
        posterior.append(right)
        heights.append(float(np.linalg.norm(left[0] - left[1])))
    return Fig5Result(centres, vertices, lines, anterior, posterior, np.array(heights))


def window_map(comp_map: np.ndarray, middle: int) -> np.ndarray:
    """The three bodies middle - 1, middle, middle + 1 of a component map, relabelled 1..3."""
    out = np.zeros(comp_map.shape, np.uint8)
    for k, label in enumerate((middle - 1, middle, middle + 1), start=1):
        out[comp_map == label] = k
    return out


def baseline_predictions(index_csv, masks_dir, out_csv) -> pd.DataFrame:
    """Rule ``baseline``: Fig. 5 VC for every window of ``index_csv``, on the masks the windows came from."""
    index = pd.read_csv(index_csv, dtype={"image_id": str, "subject_id": str, "triplet_id": str})
    missing = [c for c in ("triplet_id", "image_id", "subject_id", "split", "middle_label", "reference",
                           "value_true", "fractured") if c not in index.columns]
    if missing:
        raise InputError(f"{index_csv}: missing column(s) {', '.join(missing)}")
    masks_dir = Path(masks_dir)
    predicted = []
    cache: tuple[str, np.ndarray] | None = None
    for row in index.itertuples(index=False):
        if cache is None or cache[0] != row.image_id:
            cache = (row.image_id, component_map(read_mask(masks_dir / f"{row.image_id}.png"))[0])
        result = fig5_measure(window_map(cache[1], int(row.middle_label)))
        predicted.append(result.vc if result is not None else np.nan)
    out = index[["triplet_id", "image_id", "subject_id", "split"]].copy()
    out["model"] = MODEL_NAME
    out["predicted"] = predicted
    out["reference"] = index["reference"]
    out["value_true"] = index["value_true"]
    out["fractured"] = index["fractured"].astype("Int64")
    out = out[PREDICTION_COLUMNS]
    write_csv(out_csv, out)
    log.info("baseline: %d windows, %d without four vertices", len(out), int(out["predicted"].isna().sum()))
    return out


def figure5(predictions_csv, index_csv, masks_dir, out_png) -> None:
    """Fig. 5: centres (green), vertices (blue), dividing lines (green), left = anterior (yellow) and right =
    posterior (red) vertices on one three-body window: the fractured test window with the largest reference
    value (else any window with the largest)."""
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    pred = pd.read_csv(predictions_csv, dtype={"image_id": str, "triplet_id": str})
    index = pd.read_csv(index_csv, dtype={"image_id": str, "triplet_id": str}).set_index("triplet_id")
    fig, axes = plt.subplots(1, 4, figsize=(13, 4))
    pred = pred[pred["predicted"].notna()]
    if pred.empty:
        fig.text(0.5, 0.5, "no window to show", ha="center", va="center")
        save_figure(fig, out_png)
        return
    pick = pred[(pred["split"] == "test") & (pred["fractured"] == 1)]
    pick = pick if not pick.empty else pred
    pick = pick.assign(_r=pick["reference"].fillna(-np.inf)).sort_values(["_r", "triplet_id"],
                                                                          ascending=[False, True])
    row = pick.iloc[0]
    comp, _ = component_map(read_mask(Path(masks_dir) / f"{row['image_id']}.png"))
    three = window_map(comp, int(index.at[row["triplet_id"], "middle_label"]))
    result = fig5_measure(three)
    ys, xs = np.nonzero(three)
    pad = 8
    box = (xs.min() - pad, xs.max() + pad, ys.max() + pad, ys.min() - pad)
    titles = ["(a) three bodies", "(b) centres and vertices", "(c, d) lines through two centres",
              f"(e) left / right vertices: VC {result.vc:.1f}"]
    for ax, title in zip(axes, titles, strict=True):
        ax.imshow(three > 0, cmap="gray", interpolation="nearest")
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    for k in range(3):
        for ax in axes[1:3]:
            ax.plot(*result.centres[k], "o", color="lime", ms=5)
        axes[1].plot(*result.vertices[k].T, "o", color="blue", ms=4, ls="none")
        p, q = result.lines[k]
        d = (q - p) / np.linalg.norm(q - p)
        span = np.array([p - 0.6 * (box[2] - box[3]) * d, q + 0.6 * (box[2] - box[3]) * d])
        axes[2].plot(span[:, 0], span[:, 1], "-", color="lime", lw=1)
        axes[2].plot(*result.vertices[k].T, "o", color="blue", ms=4, ls="none")
        axes[3].plot(*result.anterior[k].T, "o", color="yellow", ms=5, ls="none", mec="black", mew=0.5)
        axes[3].plot(*result.posterior[k].T, "o", color="red", ms=5, ls="none")
        axes[3].plot(*result.anterior[k].T, "-", color="yellow", lw=1)
    ref = "" if pd.isna(row["reference"]) else f"reference {row['reference']:.1f}, "
    fig.suptitle(f"{row['triplet_id']}: {ref}image processing {result.vc:.1f} "
                 f"(Ha {', '.join(f'{h:.1f}' for h in result.heights)} px)", fontsize=10)
    save_figure(fig, out_png)
