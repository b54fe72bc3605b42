"""Clinical definitions shared by every step (DESIGN §4; paper Eq. 1 and Introduction).

- Eq. 1: VC = (1 - 2 Ha / (Ha_above + Ha_below)) x 100, Ha = anterior height of a vertebral body.
- Genant semi-quantitative grade from VC: 0 (< 20), 1 ([20, 25)), 2 ([25, 40)), 3 (>= 40).
- Surgical flag: VC > 40 (height loss over 40 % is an indication for surgery, paper Introduction).
"""

from __future__ import annotations

import numpy as np

FRACTURE_THRESHOLD = 20.0
SURGICAL_THRESHOLD = 40.0
GENANT_EDGES = (20.0, 25.0, 40.0)


def vertebral_compression(h, h_above, h_below):
    """Eq. 1 on scalars or arrays; negative values (a normal body beside a compressed one) are kept."""
    h, h_above, h_below = (np.asarray(x, dtype=float) for x in (h, h_above, h_below))
    out = (1.0 - 2.0 * h / (h_above + h_below)) * 100.0
    return float(out) if out.ndim == 0 else out


def genant_grade(vc):
    """Genant grade 0-3 from VC (percent height loss); arrays give arrays."""
    grade = np.digitize(np.asarray(vc, dtype=float), GENANT_EDGES, right=False)
    return int(grade) if np.ndim(grade) == 0 else grade.astype(int)


def is_fractured(vc, threshold: float = FRACTURE_THRESHOLD):
    """DESIGN §4: VC at or above the threshold counts as fractured when the dataset has no flag."""
    out = np.asarray(vc, dtype=float) >= threshold
    return bool(out) if out.ndim == 0 else out


def is_surgical(vc):
    """Surgical flag: VC strictly above 40."""
    out = np.asarray(vc, dtype=float) > SURGICAL_THRESHOLD
    return bool(out) if out.ndim == 0 else out
