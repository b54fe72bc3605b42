"""From a network's probability map to a label map of vertebral bodies (paper Methods, "Division into three
vertebral bodies": bodies labelled top to bottom; ARCHITECTURE.md segmentation outputs).

Steps: threshold the sigmoid output, drop specks smaller than ``min_component_px`` pixels
(``skimage.morphology.remove_small_objects``), find connected components (``scipy.ndimage.label``,
4-connectivity so that two bodies touching only at a corner stay apart) and number them 1..K by centroid
row, top to bottom (ties by column). 0 is background, as in the canonical masks (DESIGN §3).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import remove_small_objects


def label_bodies(foreground: np.ndarray, min_component_px: int = 0) -> np.ndarray:
    """Label the connected components of a boolean mask 1..K top to bottom; components < min px dropped."""
    fg = np.asarray(foreground, dtype=bool)
    if min_component_px > 1:
        fg = remove_small_objects(fg, max_size=min_component_px - 1)
    labels, k = ndimage.label(fg)
    dtype = np.uint8 if k <= 255 else np.uint16
    if k == 0:
        return np.zeros(fg.shape, dtype)
    centroids = np.array(ndimage.center_of_mass(fg, labels, np.arange(1, k + 1)))
    order = np.lexsort((centroids[:, 1], centroids[:, 0]))  # by row, then column
    remap = np.zeros(k + 1, dtype=dtype)
    remap[order + 1] = np.arange(1, k + 1, dtype=dtype)
    return remap[labels]


def probability_to_labels(prob: np.ndarray, threshold: float = 0.5, min_component_px: int = 0) -> np.ndarray:
    """Threshold a probability map (H, W) or (H, W, 1) at ``threshold`` (>=) and label the bodies."""
    prob = np.asarray(prob)
    if prob.ndim == 3:
        prob = prob[..., 0]
    return label_bodies(prob >= threshold, min_component_px)
