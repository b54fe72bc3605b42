"""Vertebral body geometry on a label map: contour, centre, four corners, anterior and posterior heights.

Implements the measurements behind Eq. 1 (DESIGN §4, paper Fig. 2): the anterior height Ha of a body is the
distance between its anterior-superior (AS) and anterior-inferior (AI) corners; the posterior height Hp joins
the posterior-superior (PS) and posterior-inferior (PI) corners. Condition (2) of the triplet acceptance test
(DESIGN §4, paper "Division into three vertebral bodies") is "four corners can be found"; :func:`find_corners`
returns ``None`` when they cannot.

Canonical orientation (DESIGN §5): anterior faces LEFT (images were flipped in preprocessing), bodies are
numbered top to bottom. Corners are found in the frame of the *local spine axis* (through the neighbouring
bodies' centres), so tilt and curvature do not swap corners: the four extreme contour points along the frame's
diagonals seed the corners, the contour between consecutive seeds is one side (superior endplate, posterior
wall, inferior endplate, anterior wall), a line is fitted to each side (points off the line, such as a rounded
corner, are dropped and the line refitted) and adjacent sides meet at a sharp corner. The landmark is the tip
of the rounded corner there: the edge's extreme point along the bisector of the two sides' outward normals,
the point a reader marks; it does not move when an endplate is concave (biconcave fractures), where the sharp
intersection would. OpenCV contours run through the centres of the boundary pixels, so lines and tips are
moved half a pixel outward onto the body's edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CORNER_NAMES = ("as", "ai", "ps", "pi")  # anterior-superior, anterior-inferior, posterior-superior, -inferior
MIN_CONTOUR_POINTS = 12  # fewer boundary pixels cannot define four sides
MIN_AREA_PX = 20
SIDE_TRIM = 0.05  # share of each side dropped at both ends; the refit drops the rest of a rounded corner
MIN_CORNER_GAP = 0.2  # corners closer than this x sqrt(area) have collapsed
MAX_CORNER_SHIFT = 0.3  # refined corner farther than this x sqrt(area) from its seed: not a quadrilateral
AREA_RATIO_RANGE = (0.95, 1.08)  # body area / corner-quadrilateral area: ellipses and blobs fall outside
OFFSET = 0.5  # px from boundary-pixel centres out to the body's edge
OUTLIER_PX = 1.0
TIP_RADIUS = 6.0  # px beyond the contour's closest approach to the sharp corner searched for the tip


@dataclass
class Body:
    """One vertebral body (one connected component) of a label map, in image pixels (x right, y down)."""

    label: int
    area: int
    centre: np.ndarray  # (2,) x, y
    contour: np.ndarray  # (N, 2) x, y, in OpenCV order
    axis: np.ndarray  # (2,) unit vector of the local spine axis, pointing down (superior -> inferior)
    corners: np.ndarray | None  # (4, 2) in CORNER_NAMES order, or None: condition (2) fails
    extent: float  # size along the local axis (px)

    @property
    def has_corners(self) -> bool:
        return self.corners is not None

    @property
    def ha(self) -> float:
        """Anterior height |AS - AI| in px (NaN without corners)."""
        return anterior_height(self.corners) if self.corners is not None else float("nan")

    @property
    def hp(self) -> float:
        """Posterior height |PS - PI| in px (NaN without corners)."""
        return posterior_height(self.corners) if self.corners is not None else float("nan")


def anterior_height(corners: np.ndarray) -> float:
    """Distance between the anterior-superior and anterior-inferior corners."""
    return float(np.linalg.norm(np.asarray(corners[0]) - np.asarray(corners[1])))


def posterior_height(corners: np.ndarray) -> float:
    """Distance between the posterior-superior and posterior-inferior corners."""
    return float(np.linalg.norm(np.asarray(corners[2]) - np.asarray(corners[3])))


def body_contour(mask: np.ndarray) -> np.ndarray:
    """Outer contour of the largest blob of a binary mask as float (N, 2) x, y (empty when the mask is)."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), float)
    largest = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    return largest.reshape(-1, 2).astype(float)


def body_centre(mask: np.ndarray) -> np.ndarray:
    """Centroid (x, y) of a binary mask (image moments)."""
    m = cv2.moments((np.asarray(mask) > 0).astype(np.uint8), binaryImage=True)
    if m["m00"] == 0:
        return np.array([np.nan, np.nan])
    return np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])


def local_axes(centres: np.ndarray) -> np.ndarray:
    """Unit spine-axis vectors (pointing down) per body, from the centres of the neighbours above and below.

    End bodies use the one neighbour they have; a lone body gets the image's vertical.
    """
    centres = np.asarray(centres, float).reshape(-1, 2)
    n = len(centres)
    axes = np.tile([0.0, 1.0], (n, 1))
    for i in range(n):
        lo, hi = max(i - 1, 0), min(i + 1, n - 1)
        if hi == lo:
            continue
        d = centres[hi] - centres[lo]
        norm = np.linalg.norm(d)
        if norm > 0:
            d = d / norm
            axes[i] = d if d[1] >= 0 else -d  # always superior -> inferior
    return axes


def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(down, anterior) unit vectors; anterior is the axis turned towards the image's left."""
    u = np.asarray(axis, float) / np.linalg.norm(axis)
    return u, np.array([-u[1], u[0]])


def _fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vx, vy, x0, y0 = cv2.fitLine(points.astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    return np.array([x0, y0], float), np.array([vx, vy], float)


def _fit_side(points: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Line (point, direction) through the middle part of one side, moved half a pixel away from the centre."""
    n = len(points)
    cut = int(round(n * SIDE_TRIM))
    core = points[cut : n - cut] if n - 2 * cut >= 3 else points
    if len(core) < 2 or np.ptp(core, axis=0).max() < 1.0:
        return None
    p0, direction = _fit_line(core)
    # refit without points off the line (a wall's rounding caught at a side's end): least squares is exact
    # on pixel staircases, where robust M-estimators snap to the longest run
    for _ in range(2):
        resid = np.abs((core - p0) @ np.array([-direction[1], direction[0]]))
        keep = resid <= max(OUTLIER_PX, 3.0 * float(np.median(resid)))
        if keep.all() or keep.sum() < 3:
            break
        core = core[keep]
        p0, direction = _fit_line(core)
    normal = np.array([-direction[1], direction[0]])
    if np.dot(p0 - centre, normal) < 0:
        normal = -normal
    return p0 + OFFSET * normal, direction


def _intersect(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    (p, d), (q, e) = a, b
    den = d[0] * e[1] - d[1] * e[0]
    if abs(den) < 1e-6:
        return None
    t = ((q[0] - p[0]) * e[1] - (q[1] - p[1]) * e[0]) / den
    return p + t * d


def _cyclic_slice(contour: np.ndarray, start: int, stop: int) -> np.ndarray:
    if stop >= start:
        return contour[start : stop + 1]
    return np.concatenate([contour[start:], contour[: stop + 1]])


def find_corners(contour: np.ndarray, centre: np.ndarray, axis: np.ndarray, area: float | None = None):
    """Four corners (AS, AI, PS, PI) as a (4, 2) array, or ``None`` when the shape has no four corners.

    ``axis`` is the local spine axis (pointing down); anterior is to its left in the image.
    """
    contour = np.asarray(contour, float).reshape(-1, 2)
    centre = np.asarray(centre, float)
    if len(contour) < MIN_CONTOUR_POINTS:
        return None
    area = float(area if area is not None else cv2.contourArea(contour.astype(np.float32)))
    if area < MIN_AREA_PX:
        return None
    scale = np.sqrt(area)
    down, ant = _frame(axis)
    rel = contour - centre
    s, t = rel @ down, rel @ ant
    # seeds: extreme points along the frame's diagonals
    seeds = [int(np.argmax(t - s)), int(np.argmax(t + s)), int(np.argmax(-t - s)), int(np.argmax(-t + s))]
    if len(set(seeds)) < 4:
        return None
    i_as, i_ai, i_ps, i_pi = seeds
    # the contour must visit the seeds in the cyclic order AS, PS, PI, AI (either direction)
    n = len(contour)
    forward = [(i - i_as) % n for i in (i_ps, i_pi, i_ai)]
    if forward == sorted(forward):
        sides_idx = [(i_as, i_ps), (i_ps, i_pi), (i_pi, i_ai), (i_ai, i_as)]
    elif forward == sorted(forward, reverse=True):
        sides_idx = [(i_ps, i_as), (i_pi, i_ps), (i_ai, i_pi), (i_as, i_ai)]
    else:
        return None
    lines = [_fit_side(_cyclic_slice(contour, a, b), centre) for a, b in sides_idx]
    if any(line is None for line in lines):
        return None
    superior, posterior, inferior, anterior = lines
    corners = [
        _intersect(superior, anterior),
        _intersect(inferior, anterior),
        _intersect(superior, posterior),
        _intersect(inferior, posterior),
    ]
    if any(c is None for c in corners):
        return None
    sharp = np.array(corners)
    seed_pts = contour[[i_as, i_ai, i_ps, i_pi]]
    if np.max(np.linalg.norm(sharp - seed_pts, axis=1)) > MAX_CORNER_SHIFT * scale:
        return None
    if not _well_formed(sharp, centre, down, ant, area, scale):
        return None
    # the landmark is the tip of the rounded corner: the edge's extreme point along the bisector of the two
    # sides' outward normals, what a reader marks (DESIGN §3 corners lie on their body). Unlike the sharp
    # intersection it stays put when an endplate is concave (biconcave fractures).
    normals = [_outward_normal(line, centre) for line in lines]  # superior, posterior, inferior, anterior
    pairs = [(0, 3), (2, 3), (0, 1), (2, 1)]  # AS, AI, PS, PI
    return np.array([_tip(contour, normals[i] + normals[j], c) for (i, j), c in zip(pairs, sharp, strict=True)])


def _outward_normal(line, centre) -> np.ndarray:
    p, d = line
    n = np.array([-d[1], d[0]]) / np.linalg.norm(d)
    return n if np.dot(p - centre, n) > 0 else -n


def _tip(contour: np.ndarray, direction: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """Extreme edge point along ``direction`` near the sharp corner (sub-pixel: mean of the top half pixel)."""
    direction = direction / np.linalg.norm(direction)
    dist = np.linalg.norm(contour - sharp, axis=1)
    near = contour[dist <= dist.min() + TIP_RADIUS]
    proj = near @ direction
    top = near[proj >= proj.max() - 0.5]
    return top.mean(axis=0) + OFFSET * direction


def _well_formed(corners, centre, down, ant, area, scale) -> bool:
    """Corners in their own quadrants, apart from each other, spanning a quadrilateral of the body's area."""
    rel = corners - centre
    s, t = rel @ down, rel @ ant
    if not (t[0] > 0 and t[1] > 0 and t[2] < 0 and t[3] < 0 and s[0] < 0 and s[2] < 0 and s[1] > 0 and s[3] > 0):
        return False
    gaps = [np.linalg.norm(corners[i] - corners[j]) for i in range(4) for j in range(i + 1, 4)]
    if min(gaps) < MIN_CORNER_GAP * scale:
        return False
    quad = corners[[0, 2, 3, 1]].astype(np.float32)  # AS, PS, PI, AI: around the body
    quad_area = cv2.contourArea(quad)
    if quad_area <= 0 or not cv2.isContourConvex(quad):
        return False
    ratio = area / quad_area
    return AREA_RATIO_RANGE[0] <= ratio <= AREA_RATIO_RANGE[1]


def _extent(contour: np.ndarray, axis: np.ndarray) -> float:
    if len(contour) == 0:
        return 0.0
    proj = contour @ (np.asarray(axis, float) / np.linalg.norm(axis))
    return float(proj.max() - proj.min() + 1.0)


def measure_bodies(label_map: np.ndarray, labels=None) -> list[Body]:
    """Geometry of each labelled body, ordered top to bottom by centre; corners use the local spine axis.

    ``labels`` restricts the bodies (default: every non-zero label). Each label is taken as one body; its area
    counts every pixel, its contour is that of its largest piece (split bodies are found by
    :mod:`vcmeasure.triplets`).
    """
    label_map = np.asarray(label_map)
    if labels is None:
        labels = [int(v) for v in np.unique(label_map) if v != 0]
    items = []
    for label in labels:
        mask = label_map == label
        area = int(mask.sum())
        if area == 0:
            continue
        items.append((label, area, body_centre(mask), body_contour(mask)))
    items.sort(key=lambda it: (it[2][1], it[2][0]))
    axes = local_axes(np.array([it[2] for it in items])) if items else np.zeros((0, 2))
    bodies = []
    for (label, area, centre, contour), axis in zip(items, axes, strict=True):
        corners = find_corners(contour, centre, axis, area=area)
        bodies.append(Body(label=int(label), area=area, centre=centre, contour=contour, axis=axis,
                           corners=corners, extent=_extent(contour, axis)))
    return bodies
