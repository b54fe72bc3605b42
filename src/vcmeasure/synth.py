"""Synthetic lateral thoracolumbar radiographs with exact ground truth (issue 3; DESIGN §3 canonical dataset).

The paper's 387 radiographs of 300 subjects (Seo et al. 2021, Methods "Data acquisition and preprocessing") are
private, so the default data is simulated here and written in the canonical format (DESIGN §3):

- **Anatomy** (millimetres): a run of 7-10 consecutive bodies between T8 and L5 built as a chain: each body's
  superior endplate sits on the disc below the previous body, so anterior/posterior body heights and disc
  wedging produce thoracic kyphosis turning into lumbar lordosis. Bodies have concave endplates, a waisted
  anterior wall and rounded corners; fractures are anterior wedge, biconcave or crush deformities whose
  anterior height loss is drawn so the cohort's Eq. 1 values resemble the paper's (see :data:`PAPER_VC`).
- **Image formation**: line integrals of attenuation (soft-tissue slab with skin edges, lungs above the
  diaphragm, bowel gas, ribs, iliac crest, posterior elements, cortical rims and trabecular texture),
  transmitted intensity with scatter (a wide blur), quantum noise, log display with a low-contrast window;
  8- or 16-bit, anterior side left or right (the image is mirrored).
- **Ground truth**: the label mask is exactly the rendered bodies (1..K top to bottom), the four corners are
  points of each body's outline (the points of the rounded corners nearest the sharp corners), heights are
  corner distances and ``value_true`` is Eq. 1 (:func:`vcmeasure.measures.vertebral_compression`) on the
  anterior heights; ``value_reader`` adds a reader's noise.
- **Determinism**: every subject and image draws from its own :func:`vcmeasure.seeding.derive_seed`, so the
  files are byte-identical whatever the number of worker processes.

Why the VC target is the non-negative readings: by Eq. 1 the sum of VC over consecutive bodies telescopes
(to first order only the run's end bodies remain), so a fracture raises its own VC and lowers both
neighbours'; the mean over *all* measurable bodies of any realistic spine is near 0. The paper's range
(min 0.01) shows its summary describes non-negative readings; that subset is what the generator matches.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .dataset import IMAGES_COLUMNS, MEASURE_VC, MEASUREMENTS_COLUMNS, VERTEBRAE_COLUMNS
from .errors import ConfigError
from .io import atomic_dir, write_csv, write_png
from .measures import FRACTURE_THRESHOLD, genant_grade, vertebral_compression
from .seeding import derive_seed

log = logging.getLogger(__name__)

LEVELS = ("T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
RUN_FIRST, RUN_LAST = LEVELS.index("T8"), LEVELS.index("L5")  # labelled bodies lie within T8..L5
PAPER_VC = {"images": 387, "subjects": 300, "min": 0.01, "max": 59.06, "mean": 8.61, "sd": 9.30}
# lordotic wedging (degrees) of the disc below each level, scaled per subject; T12/L1 is the neutral junction
LORDOSIS_DEG = {"T12": 0.0, "L1": 4.0, "L2": 7.0, "L3": 10.0, "L4": 12.0, "L5": 14.0}
EXTRA_COLUMNS = ["deformity"]  # vertebrae.csv: the deformity drawn (none/mild/wedge/biconcave/crush)


@dataclass(frozen=True)
class Preset:
    """Cohort size and pixel scale (1.0 = the issue's full resolution, 1000-2000 x 1800-3000 px)."""

    n_images: int
    n_subjects: int
    scale: float


PRESETS = {
    "paper": Preset(387, 300, 1.0),
    "quick": Preset(72, 56, 0.3),
    "test": Preset(12, 9, 0.15),
}


@dataclass(frozen=True)
class SynthParams:
    """Every anatomical and imaging parameter, with its default (lengths in mm unless named px)."""

    n_bodies: tuple[int, int] = (7, 10)
    body_height: tuple[float, float] = (22.0, 30.0)  # posterior height, T8 .. L5
    body_depth: tuple[float, float] = (30.0, 45.0)  # T8 .. L5
    subject_size_sd: float = 0.05
    height_noise_sd: float = 0.03  # body-to-body natural variation of heights
    disc_height: tuple[float, float] = (6.0, 12.0)  # centre height, T8 .. L5
    kyphosis_deg: tuple[float, float] = (2.0, 6.0)  # per-level thoracic wedging (body + disc)
    lordosis_scale: tuple[float, float] = (0.6, 1.3)  # times LORDOSIS_DEG, the lumbar discs' wedging
    endplate_concavity: tuple[float, float] = (0.6, 1.6)
    corner_radius: tuple[float, float] = (1.5, 2.8)
    cortex: tuple[float, float] = (0.9, 1.6)
    tilt_deg: float = 10.0
    n_fractures_p: tuple[float, float, float] = (0.75, 0.18, 0.07)  # P(1, 2, 3 fractures)
    fracture_shape_p: tuple[float, float, float] = (0.65, 0.2, 0.15)  # wedge, biconcave, crush
    fracture_loss_min: float = 0.2  # anterior height loss of a drawn fracture (fraction of normal)
    fracture_loss_gamma: tuple[float, float] = (0.9, 0.06)  # shape, scale of the loss above the minimum
    fracture_loss_max: float = 0.52
    mild_p: float = 0.5  # share of other measurable bodies with a mild (sub-threshold) deformity
    mild_loss: tuple[float, float] = (0.02, 0.14)
    progression_p: float = 0.5  # second visit: chance that a fracture has progressed
    progression_loss: tuple[float, float] = (0.02, 0.10)
    height_px: tuple[int, int] = (1800, 3000)
    width_px: tuple[int, int] = (1000, 2000)
    spacing_mm: tuple[float, float] = (0.1, 0.2)
    sixteen_bit_p: float = 0.5
    right_facing_p: float = 0.5
    photons: tuple[float, float] = (150.0, 1200.0)  # quanta per pixel at full resolution (exposure)
    scatter: tuple[float, float] = (0.4, 1.2)  # scatter-to-primary ratio
    reader_noise_sd: float = 1.0


# --------------------------------------------------------------------------------------------------- anatomy


@dataclass
class Spine:
    """One subject's spine in millimetres (anterior towards -x before posing). Arrays run top to bottom
    over ``levels``; the labelled run is ``run`` (a slice); the others only give context at the edges."""

    levels: list[str]
    run: slice
    hp: np.ndarray  # posterior heights
    ha: np.ndarray  # anterior heights
    depth: np.ndarray
    disc_p: np.ndarray  # posterior / anterior disc gaps below each body
    disc_a: np.ndarray
    conc_sup: np.ndarray
    conc_inf: np.ndarray
    corner_r: np.ndarray
    deformity: list[str]
    loss: np.ndarray
    density: float  # bone mineral density factor (osteoporosis lowers contrast)
    ha_normal: np.ndarray = field(repr=False)
    hp_normal: np.ndarray = field(repr=False)


def _interp_level(lo_hi: tuple[float, float], idx: np.ndarray) -> np.ndarray:
    """A value growing linearly from T8 (lo) to L5 (hi), extrapolated beyond."""
    t = (idx - RUN_FIRST) / (RUN_LAST - RUN_FIRST)
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * t


def sample_spine(rng: np.random.Generator, p: SynthParams) -> Spine:
    """Draw a subject: the labelled run, body sizes, curvature and the fractures (VC targets, Eq. 1)."""
    k = int(rng.integers(p.n_bodies[0], p.n_bodies[1] + 1))
    first = int(rng.integers(RUN_FIRST, RUN_LAST - k + 2))
    lo, hi = max(first - 1, 0), min(first + k + 1, len(LEVELS))  # one context body above and below
    idx = np.arange(lo, hi)
    n = len(idx)
    size = 1.0 + p.subject_size_sd * rng.standard_normal()
    thoracic = idx < LEVELS.index("L1")
    hp = _interp_level(p.body_height, idx) * size * (1 + 0.02 * rng.standard_normal(n))
    depth = _interp_level(p.body_depth, idx) * size * (1 + 0.03 * rng.standard_normal(n))
    kyph = math.radians(rng.uniform(*p.kyphosis_deg))
    lord = np.radians([LORDOSIS_DEG.get(LEVELS[i], 0.0) for i in idx]) * rng.uniform(*p.lordosis_scale)
    # thoracic bodies are wedged (anterior shorter) and carry most kyphosis; lordosis sits in the lumbar discs
    # (anterior gap taller) and a little in L4/L5, which are wedged the other way
    body_wedge = np.where(thoracic, -0.6 * kyph, np.where(idx >= LEVELS.index("L4"), 0.15 * lord, 0.0))
    ha = hp + depth * np.tan(body_wedge) + p.height_noise_sd * hp * rng.standard_normal(n)
    disc = _interp_level(p.disc_height, idx) * size * rng.uniform(0.9, 1.1, n)
    disc_wedge = np.where(thoracic & (idx < LEVELS.index("T12")), -0.4 * kyph, lord)
    delta = depth * np.tan(disc_wedge)
    disc_p = np.maximum(disc - delta / 2, 0.55 * disc)
    disc_a = np.maximum(disc + delta / 2, 0.55 * disc)
    conc = rng.uniform(*p.endplate_concavity, (2, n))
    corner_r = rng.uniform(*p.corner_radius, n)
    sacrum = [i for i, lev in enumerate(LEVELS[lo:hi]) if lev == "S1"]
    for i in sacrum:  # the sacral promontory: taller posteriorly, steep
        hp[i] *= 1.1
        ha[i] = hp[i] * 0.8
    run = slice(first - lo, first - lo + k)
    deformity = ["none"] * n
    loss = np.zeros(n)
    hp_normal, ha_normal = hp.copy(), ha.copy()
    # fractures on measurable bodies (those with a labelled neighbour above and below)
    measurable = np.arange(run.start + 1, run.stop - 1)
    n_frac = min(int(rng.choice(3, p=np.asarray(p.n_fractures_p) / sum(p.n_fractures_p))) + 1, len(measurable))
    order = rng.permutation(measurable)
    chosen: list[int] = []
    for i in order:  # fractures at least two bodies apart: closer ones distort the shared neighbours (Eq. 1)
        if len(chosen) < n_frac and all(abs(i - j) > 2 for j in chosen):
            chosen.append(int(i))
    for i in chosen:
        shape = ["wedge", "biconcave", "crush"][int(rng.choice(3, p=np.asarray(p.fracture_shape_p)))]
        amount = p.fracture_loss_min + rng.gamma(*p.fracture_loss_gamma)
        loss[i] = min(amount, p.fracture_loss_max)
        deformity[i] = shape
    for i in measurable:
        if deformity[i] == "none" and all(abs(i - j) > 1 for j in chosen) and rng.random() < p.mild_p:
            loss[i] = rng.uniform(*p.mild_loss)
            deformity[i] = "mild"
    spine = Spine([LEVELS[i] for i in idx], run, hp, ha, depth, disc_p, disc_a, conc[0], conc[1], corner_r,
                  deformity, loss, float(rng.uniform(0.6, 1.0)), ha_normal, hp_normal)
    apply_deformities(spine, rng)
    return spine


def apply_deformities(spine: Spine, rng: np.random.Generator) -> None:
    """Set heights and endplate concavities from each body's anterior height loss and deformity shape."""
    for i, shape in enumerate(spine.deformity):
        loss = spine.loss[i]
        spine.ha[i] = spine.ha_normal[i] * (1 - loss)
        post = {"none": 0.0, "mild": 0.1, "wedge": rng.uniform(0, 0.25), "biconcave": rng.uniform(0.3, 0.6),
                "crush": rng.uniform(0.75, 1.0)}[shape]
        spine.hp[i] = spine.hp_normal[i] * (1 - loss * post)
        if shape == "biconcave":  # the middle of the body collapses more than its walls
            extra = loss * spine.hp_normal[i] * rng.uniform(0.25, 0.4)
            spine.conc_sup[i] += extra
            spine.conc_inf[i] += extra


def ensure_fracture(spine: Spine, rng: np.random.Generator, margin: float = 1.0) -> None:
    """Every image has a fracture (issue 3): deepen the most compressed body until Eq. 1 gives >= 20 + margin
    (the margin absorbs pixel rounding of the corners)."""
    for _ in range(40):
        vc = spine_vc(spine)
        if vc.max() >= FRACTURE_THRESHOLD + margin:
            return
        i = spine.run.start + 1 + int(np.argmax(vc))
        spine.loss[i] += 0.02
        if spine.deformity[i] in ("none", "mild"):
            spine.deformity[i] = "wedge"
        apply_deformities(spine, rng)


def progress(spine: Spine, rng: np.random.Generator, p: SynthParams) -> Spine:
    """The same spine at a later visit: possibly one fracture has lost more height."""
    out = replace(spine, hp=spine.hp.copy(), ha=spine.ha.copy(), loss=spine.loss.copy(),
                  conc_sup=spine.conc_sup.copy(), conc_inf=spine.conc_inf.copy(), deformity=list(spine.deformity))
    fractured = [i for i, d in enumerate(out.deformity) if d in ("wedge", "biconcave", "crush")]
    if fractured and rng.random() < p.progression_p:
        i = fractured[int(rng.integers(len(fractured)))]
        out.loss[i] = min(out.loss[i] + rng.uniform(*p.progression_loss), p.fracture_loss_max + 0.04)
    # redraw shapes with a stream that does not depend on the first visit's draws
    shape_rng = np.random.default_rng(int(rng.integers(2**32)))
    out.conc_sup = out.conc_sup.copy()
    out.conc_inf = out.conc_inf.copy()
    apply_deformities(out, shape_rng)
    return out


def _side(p0, p1, bulge, n):
    """Points from p0 to p1 (excluding p1), bowed by ``bulge`` mm along the left normal at the middle."""
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    d = p1 - p0
    normal = np.array([-d[1], d[0]]) / (np.hypot(*d) or 1.0)
    return p0 + t * d + (4 * t * (1 - t)) * bulge * normal


def body_outline(depth, ha, hp, conc_sup, conc_inf, r, n_side=14, n_corner=7):
    """Outline of one body in local (a, b) mm, a anterior (0 = posterior wall), b down from the superior
    posterior corner; and its four corner landmarks (ordered as, ai, ps, pi) on the outline.

    Sides: superior endplate (posterior -> anterior, concave into the body), anterior wall (waisted),
    inferior endplate (anterior -> posterior, concave), posterior wall (slightly concave). Corners are
    rounded by quadratic Bezier arcs of radius ``r``; the landmark is each arc's midpoint, the outline point
    nearest the sharp corner (what a reader marks).
    """
    ps, as_, ai, pi = (np.array(v, float) for v in ((0, 0), (depth, 0), (depth, ha), (0, hp)))
    corners = [ps, as_, ai, pi]
    # bulge sign: left normal of each directed side; endplates bow into the body, walls bow inwards too
    bulges = [conc_sup, 0.8, conc_inf, 0.6]
    sides = []
    for j in range(4):
        a, b = corners[j], corners[(j + 1) % 4]
        sides.append(_side(a, b, bulges[j], n_side + 1))
    rr = min(r, 0.3 * min(depth, ha, hp))
    pts, marks = [], {}
    for j in range(4):
        c = corners[j]
        prev_side, this_side = sides[(j - 1) % 4], sides[j]
        d_in = c - prev_side[-1]
        d_out = this_side[1] - c
        d_in /= np.hypot(*d_in)
        d_out /= np.hypot(*d_out)
        p0, p2 = c - rr * d_in, c + rr * d_out
        t = np.linspace(0, 1, n_corner)[:, None]
        pts.append((1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p2)
        marks[j] = 0.25 * p0 + 0.5 * c + 0.25 * p2
        seg = this_side[1:]
        keep = (np.hypot(*(seg - c).T) > rr) & (np.hypot(*(seg - corners[(j + 1) % 4]).T) > rr)
        pts.append(seg[keep])
    outline = np.concatenate(pts)
    landmarks = np.stack([marks[1], marks[2], marks[0], marks[3]])  # as, ai, ps, pi
    return outline, landmarks


@dataclass
class PlacedSpine:
    """Every body's outline, landmarks and frame in world mm (anterior towards -x)."""

    outlines: list[np.ndarray]
    landmarks: list[np.ndarray]
    origins: np.ndarray  # posterior-superior sharp corner
    ant_dirs: np.ndarray  # unit vectors towards anterior
    down_dirs: np.ndarray  # unit vectors along the axis, caudal


def place_spine(spine: Spine) -> PlacedSpine:
    """Chain the bodies: each superior endplate lies on the disc below the previous inferior endplate."""
    outlines, landmarks, origins, ants, downs = [], [], [], [], []
    origin = np.zeros(2)
    ant = np.array([-1.0, 0.0])
    for i in range(len(spine.levels)):
        down = np.array([-ant[1], ant[0]]) if ant[0] < 0 else np.array([ant[1], -ant[0]])
        if down[1] < 0:
            down = -down
        local, marks = body_outline(spine.depth[i], spine.ha[i], spine.hp[i], spine.conc_sup[i],
                                    spine.conc_inf[i], spine.corner_r[i])
        to_world = np.stack([ant, down])  # rows: a, b unit vectors
        outlines.append(origin + local @ to_world)
        landmarks.append(origin + marks @ to_world)
        origins.append(origin)
        ants.append(ant)
        downs.append(down)
        # sharp inferior corners, then the disc: posterior and anterior gaps along the endplate's normal
        pi = origin + spine.hp[i] * down
        ai = origin + spine.depth[i] * ant + spine.ha[i] * down
        e = (ai - pi) / np.hypot(*(ai - pi))
        normal = np.array([-e[1], e[0]]) if -e[1] * down[0] + e[0] * down[1] > 0 else np.array([e[1], -e[0]])
        if i + 1 < len(spine.levels):
            new_p = pi + spine.disc_p[i] * normal
            new_a = ai + spine.disc_a[i] * normal
            ant = (new_a - new_p) / np.hypot(*(new_a - new_p))
            origin = new_p
    return PlacedSpine(outlines, landmarks, np.array(origins), np.array(ants), np.array(downs))


def spine_vc(spine: Spine) -> np.ndarray:
    """Eq. 1 on the landmark anterior heights of the run's measurable bodies (no rendering; mm)."""
    placed = place_spine(spine)
    ha = np.array([np.hypot(*(m[0] - m[1])) for m in placed.landmarks])[spine.run]
    return vertebral_compression(ha[1:-1], ha[:-2], ha[2:])


# --------------------------------------------------------------------------------------------------- imaging


@dataclass
class Pose:
    """One exposure of a spine: field, pixel spacing, tilt, placement, orientation and detector."""

    width: int
    height: int
    spacing: float
    tilt: float  # radians
    offset: np.ndarray  # world mm point at pixel (0, 0) after rotation
    flip: bool  # anterior side right
    bits: int
    photons: float
    scatter: float
    window: tuple[float, float]
    gamma: float


def _rot(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def sample_pose(placed: PlacedSpine, run: slice, rng: np.random.Generator, p: SynthParams, scale: float) -> Pose:
    """Frame the labelled run: whole run inside, context bodies cut by the top/bottom edges."""
    # stand the run upright (its end bodies one above the other), then tilt it
    first, last = placed.outlines[run.start].mean(0), placed.outlines[run.stop - 1].mean(0)
    chord = math.atan2(last[0] - first[0], last[1] - first[1])
    tilt = chord + math.radians(rng.uniform(-p.tilt_deg, p.tilt_deg))
    rot = _rot(tilt)
    run_pts = np.concatenate(placed.outlines[run]) @ rot.T
    (x0, y0), (x1, y1) = run_pts.min(0), run_pts.max(0)
    disc_above = 8.0
    margin_top = rng.uniform(0.4, 1.0) * disc_above + rng.uniform(2.0, 10.0)
    margin_bot = rng.uniform(0.4, 1.0) * disc_above + rng.uniform(2.0, 10.0)
    field_h = (y1 - y0) + margin_top + margin_bot
    h_lo, h_hi = p.height_px[0] * scale, p.height_px[1] * scale
    sp_lo, sp_hi = p.spacing_mm[0] / scale, p.spacing_mm[1] / scale
    spacing = rng.uniform(sp_lo, sp_hi)
    height = int(np.clip(round(field_h / spacing), h_lo, h_hi))
    spacing = field_h / height
    w_lo, w_hi = p.width_px[0] * scale, p.width_px[1] * scale
    width_mm = rng.uniform(150.0, 240.0)
    width = int(np.clip(round(width_mm / spacing), w_lo, w_hi))
    width = max(width, int(math.ceil((x1 - x0 + 40.0) / spacing)))
    width_mm = width * spacing
    # anterior wall at 30-50 % of the width leaves room for the posterior elements (to the right)
    left = x0 - rng.uniform(0.3, 0.5) * (width_mm - (x1 - x0))
    offset = np.array([left, y0 - margin_top])
    bits = 16 if rng.random() < p.sixteen_bit_p else 8
    return Pose(width, height, spacing, tilt, offset, bool(rng.random() < p.right_facing_p), bits,
                float(rng.uniform(*p.photons)), float(rng.uniform(*p.scatter)),
                (float(rng.uniform(0.04, 0.2)), float(rng.uniform(0.7, 0.92))), float(rng.uniform(0.8, 1.2)))


class _Canvas:
    """World-mm to pixel mapping and drawing helpers (anti-aliased drawing on uint8 layers)."""

    SHIFT = 4

    def __init__(self, pose: Pose):
        self.pose = pose
        self.rot = _rot(pose.tilt)

    def px(self, pts):
        pts = np.asarray(pts, float).reshape(-1, 2)
        return (pts @ self.rot.T - self.pose.offset) / self.pose.spacing

    def fixed(self, pts):
        return np.round(self.px(pts) * (1 << self.SHIFT)).astype(np.int32)

    def layer(self):
        return np.zeros((self.pose.height, self.pose.width), np.uint8)

    def fill(self, layer, polys, value=255, aa=True):
        cv2.fillPoly(layer, [self.fixed(q) for q in polys], value, cv2.LINE_AA if aa else cv2.LINE_8, self.SHIFT)

    def line(self, layer, pts, thick_mm, value=255, closed=False):
        t = max(1, int(round(thick_mm / self.pose.spacing)))
        cv2.polylines(layer, [self.fixed(pts)], closed, value, t, cv2.LINE_AA, self.SHIFT)


def _smooth_noise(rng, shape, sigma_px, aniso=1.0):
    """Zero-mean, unit-SD band-limited noise (anisotropic: vertical trabeculae)."""
    n = rng.standard_normal(shape, dtype=np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigmaX=sigma_px, sigmaY=sigma_px * aniso)
    return n / (n.std() + 1e-6)


def _resize(a, width, height):
    return cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)


def _local(placed: PlacedSpine, i: int, pts):
    """Body-local (a, b) mm -> world mm."""
    pts = np.asarray(pts, float).reshape(-1, 2)
    return placed.origins[i] + pts[:, :1] * placed.ant_dirs[i] + pts[:, 1:] * placed.down_dirs[i]


def _posterior_elements(spine: Spine, placed: PlacedSpine, i: int):
    """Pedicle, articular pillar and spinous process polygons (local mm, a < 0 is posterior)."""
    hp, d = spine.hp_normal[i], spine.depth[i]
    lumbar = spine.levels[i].startswith("L")
    ped = 0.42 * d
    pillar = 12.0
    sp_len = 34.0 if lumbar else 30.0
    tip_drop = 0.55 * hp if lumbar else 1.5 * hp  # thoracic spinous processes point steeply down
    tip_h = 0.45 * hp if lumbar else 0.22 * hp
    pedicle = [(2, 0.12 * hp), (-ped, 0.05 * hp), (-ped, 0.6 * hp), (2, 0.62 * hp)]
    art = [(-ped + 4, -0.3 * hp), (-ped - pillar, -0.25 * hp), (-ped - pillar - 3, 1.1 * hp), (-ped + 2, 1.05 * hp)]
    a0 = -ped - pillar + 2
    spinous = [(a0, 0.15 * hp), (a0 - sp_len, tip_drop), (a0 - sp_len - 4, tip_drop + tip_h),
               (a0 - sp_len + 2, tip_drop + tip_h + 2), (a0 + 1, 0.85 * hp)]
    return [_local(placed, i, q) for q in (pedicle, art, spinous)]


def _level_origin(spine: Spine, placed: PlacedSpine, level: str, step: np.ndarray) -> np.ndarray:
    """World position of a level's posterior-superior corner, extrapolated by whole steps outside the run."""
    if level in spine.levels:
        return placed.origins[spine.levels.index(level)]
    k = LEVELS.index(level)
    first, last = LEVELS.index(spine.levels[0]), LEVELS.index(spine.levels[-1])
    return placed.origins[0] + (k - first) * step if k < first else placed.origins[-1] + (k - last) * step


def render(spine: Spine, placed: PlacedSpine, pose: Pose, rng: np.random.Generator, p: SynthParams):
    """Render one radiograph. Returns (image uint8/uint16, mask uint8, landmarks px (K, 4, 2))."""
    cv = _Canvas(pose)
    h, w, sp = pose.height, pose.width, pose.spacing
    run = range(spine.run.start, spine.run.stop)

    # --- exact ground truth: bodies filled without anti-aliasing, labels 1..K top to bottom
    mask = cv.layer()
    for lab, i in enumerate(run, start=1):
        cv.fill(mask, [placed.outlines[i]], lab, aa=False)
    marks = np.stack([cv.px(placed.landmarks[i]) for i in run])

    # --- bone layers at full resolution
    bodies = cv.layer()
    rims = cv.layer()
    cortex = rng.uniform(*p.cortex)
    for i in range(len(spine.levels)):
        cv.fill(bodies, [placed.outlines[i]])
        cv.line(rims, placed.outlines[i], cortex, closed=True)
    post = cv.layer()
    for i in range(len(spine.levels)):
        cv.fill(post, _posterior_elements(spine, placed, i), 160)
        for q in _posterior_elements(spine, placed, i):
            cv.line(post, np.vstack([q, q[:1]]), 1.2, 255)

    # trabecular texture: band-pass noise at ~0.35 mm texels, vertical trabeculae, upsampled
    f = max(1, int(round(0.35 / sp)))
    th, tw = max(8, h // f), max(8, w // f)
    fine = _smooth_noise(rng, (th, tw), 0.8, aniso=2.2)
    coarse = _smooth_noise(rng, (th, tw), 3.0)
    trab = np.abs(fine) * 0.6 + 0.25 * coarse
    trab = _resize(trab, w, h)

    # --- context on a coarse grid (~2 mm): soft tissue, lungs/diaphragm, bowel gas, ribs, pelvis
    g = max(1, int(round(2.0 / sp)))
    gh, gw = max(8, -(-h // g)), max(8, -(-w // g))
    ys = (np.arange(gh) + 0.5) * g * sp
    xs = (np.arange(gw) + 0.5) * g * sp
    # posterior wall x (px grid -> mm in the posed frame) as a function of y, from the body corners
    post_pts = np.concatenate([cv.px(placed.origins[i][None]) for i in range(len(spine.levels))]) * sp
    order = np.argsort(post_pts[:, 1])
    wall_x = np.interp(ys, post_pts[order, 1], post_pts[order, 0])
    mean_depth = float(np.mean(spine.depth))
    back = wall_x + rng.uniform(55, 85)
    front = wall_x - mean_depth - rng.uniform(110, 200)
    centre, half = (back + front) / 2, (back - front) / 2
    u = (xs[None, :] - centre[:, None]) / half[:, None]
    trunk = np.sqrt(np.clip(1 - u**2, 0, 1)).astype(np.float32)
    soft = trunk * rng.uniform(2.2, 2.8)
    # lungs above a domed diaphragm (apex anterior to the spine near T11, lower posteriorly)
    step = np.mean(np.diff(placed.origins, axis=0), axis=0)
    anchor = cv.px(_level_origin(spine, placed, "T11", step)[None])[0] * sp
    apex_x = anchor[0] - mean_depth - rng.uniform(20, 60)
    radius = rng.uniform(70, 110)  # dome curvature: the posterior recess reaches L1-L2
    dome = anchor[1] + rng.uniform(-25, 15) + (xs - apex_x) ** 2 / (2 * radius)
    dome = np.minimum(dome, anchor[1] + 90)
    above = 1 / (1 + np.exp((ys[:, None] - dome[None, :]) / 3.0))
    soft -= above.astype(np.float32) * trunk * rng.uniform(0.9, 1.3)
    # bowel gas below the diaphragm, mostly anterior to the lumbar spine
    gas = np.zeros((gh, gw), np.float32)
    for _ in range(int(rng.integers(6, 24))):  # small clustered pockets read as bowel gas, not as round holes
        cx = rng.uniform(front.mean() + 10, wall_x.mean() + 10)
        cy = rng.uniform(dome.max() - 10, ys[-1] + 40)
        ax = rng.uniform(4, 16)
        cv2.ellipse(gas, (int(cx / (g * sp)), int(cy / (g * sp))),
                    (max(1, int(ax / (g * sp))), max(1, int(ax * rng.uniform(0.4, 1.0) / (g * sp)))),
                    float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.3, 0.8)), -1)
    gas = cv2.GaussianBlur(gas, (0, 0), 1.2) * (1 - above.astype(np.float32))
    soft -= gas * trunk
    soft += 0.08 * _smooth_noise(rng, (gh, gw), 4.0)

    # ribs over the thoracic part: pairs of arcs sweeping down and forward from the costovertebral joints
    ribs = cv.layer()
    rib_edges = cv.layer()
    for j, lev in enumerate(LEVELS):
        if not lev.startswith("T"):
            continue
        i = spine.levels.index(lev) if lev in spine.levels else None
        if i is not None:
            base, a_dir, d_dir = placed.origins[i], placed.ant_dirs[i], placed.down_dirs[i]
        else:  # extrapolate the joint position of ribs whose vertebra is outside the modelled run
            k = LEVELS.index(spine.levels[0])
            if j > k:
                continue
            base, a_dir, d_dir = placed.origins[0] + (j - k) * step, placed.ant_dirs[0], placed.down_dirs[0]
        n12 = {"T11": 0.55, "T12": 0.3}.get(lev, 1.0)
        for side in (0, 1):
            off = np.array([rng.uniform(-6, 6), rng.uniform(4, 12)]) * side
            pts_local = np.array([(-50.0, 0.0), (0.2 * mean_depth, -12.0), (mean_depth + 80.0 * n12, 65.0 * n12)])
            pts_local += off
            tcurve = np.linspace(0, 1, 40)[:, None]
            bez = ((1 - tcurve) ** 2 * pts_local[0] + 2 * (1 - tcurve) * tcurve * pts_local[1]
                   + tcurve**2 * pts_local[2])
            world = base + bez[:, :1] * a_dir + bez[:, 1:] * d_dir
            thick = rng.uniform(9, 13)
            cv.line(ribs, world, thick, 90)
            cv.line(rib_edges, world + 0.45 * thick * d_dir, 1.0, 200)
            cv.line(rib_edges, world - 0.45 * thick * d_dir, 1.0, 200)

    # iliac crest near L4-L5: an arc (two hemipelves, slightly offset) with the faint iliac wing below it
    pelvis = cv.layer()
    crest = cv.layer()
    l5 = _level_origin(spine, placed, "L5", step)
    for side in (0, 1):
        c = l5 + placed.ant_dirs[-1] * (-10 + 8 * side) + placed.down_dirs[-1] * (95 + 6 * side)
        cpx = cv.px(c[None])[0]
        axes = (int(rng.uniform(70, 95) / sp), int(rng.uniform(80, 105) / sp))
        angle = math.degrees(pose.tilt) + rng.uniform(-15, 15)
        centre_px = (int(cpx[0]), int(cpx[1]))
        cv2.ellipse(pelvis, centre_px, axes, angle, 0, 360, 90, -1, cv2.LINE_AA)
        cv2.ellipse(crest, centre_px, axes, angle, 200, 340, 255, max(1, int(4 / sp)), cv2.LINE_AA)

    # --- attenuation line integrals; bone terms blurred a little (focal spot, detector)
    density = spine.density * rng.uniform(0.9, 1.1)
    f32 = cv2.CV_32F
    # OpenCV arithmetic: one pass per term, no float64 temporaries (the paper preset must be fast)
    bone = cv2.multiply(bodies, cv2.addWeighted(trab, 0.35, trab, 0.0, 0.75), scale=0.55 * density / 255, dtype=f32)
    for layer, weight in ((rims, 0.45 * density), (post, 0.42 * density), (ribs, 0.18), (rib_edges, 0.16),
                          (pelvis, 0.2), (crest, 0.35)):
        bone = cv2.addWeighted(bone, 1.0, layer, weight / 255, 0.0, dtype=f32)
    mu = cv2.add(_resize(soft, w, h), bone)
    mu = cv2.GaussianBlur(mu, (0, 0), max(0.3, 0.25 / sp))
    primary = cv2.exp(cv2.multiply(mu, -1.0))
    small = cv2.resize(primary, (gw, gh), interpolation=cv2.INTER_AREA)
    scatter = cv2.GaussianBlur(small, (0, 0), 25.0 / (g * sp))
    intensity = cv2.addWeighted(primary, 1.0, _resize(scatter, w, h), pose.scatter, 1e-3)
    # quantum noise: Gaussian approximation of Poisson counts; quanta per pixel grow with pixel area
    quanta = pose.photons * (sp / 0.15) ** 2
    noise = rng.standard_normal((h, w), dtype=np.float32)
    noisy = cv2.add(intensity, cv2.multiply(noise, cv2.sqrt(cv2.multiply(intensity, 1.0 / quanta))))
    display = cv2.log(cv2.max(noisy, 1e-4))  # = -(attenuation display); the window below flips the sign
    lo, hi = np.percentile(display[:: max(1, h // 256), :: max(1, w // 256)], [0.2, 99.5])
    norm = cv2.min(cv2.max(cv2.multiply(cv2.subtract(hi, display), 1.0 / (hi - lo + 1e-6)), 0.0), 1.0)
    norm = cv2.pow(norm, pose.gamma)
    top = 65535 if pose.bits == 16 else 255
    span = (pose.window[1] - pose.window[0]) * top
    image = cv2.addWeighted(norm, span, norm, 0.0, pose.window[0] * top + 0.5)
    image = image.astype(np.uint16 if pose.bits == 16 else np.uint8)  # +0.5 then truncation: rounding
    if pose.flip:
        image = np.ascontiguousarray(image[:, ::-1])
        mask = np.ascontiguousarray(mask[:, ::-1])
        marks[..., 0] = (w - 1) - marks[..., 0]
    return image, mask, marks


def snap_inside(marks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Round corners to 0.01 px and move any whose pixel is not its body's inwards (towards the body's
    centroid) until it is: corners lie exactly on their body."""
    out = np.round(marks, 2)
    for k in range(out.shape[0]):
        centre = marks[k].mean(0)  # the corners' mean lies well inside a convex-ish body
        for j in range(4):
            p = out[k, j].copy()
            for _ in range(200):
                x, y = int(round(p[0])), int(round(p[1]))
                if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and mask[y, x] == k + 1:
                    break
                d = centre - p
                p = np.round(p + 0.25 * d / (np.hypot(*d) + 1e-9), 2)
            out[k, j] = p
    return out


# --------------------------------------------------------------------------------------------------- cohort


@dataclass(frozen=True)
class ImageTask:
    image_id: str
    subject_id: str
    visit: int
    subject_seed: int
    image_seed: int
    scale: float
    params: SynthParams


def plan_cohort(preset: str = "paper", n_images: int | None = None, seed: int = 42,
                params: SynthParams | None = None) -> list[ImageTask]:
    """Subjects and images: the preset's counts, or ``n_images`` with subjects scaled as in the paper."""
    if preset not in PRESETS:
        raise ConfigError(f"synthetic.preset: unknown preset '{preset}' (choose {', '.join(PRESETS)})")
    pre = PRESETS[preset]
    n_img = pre.n_images if n_images is None else int(n_images)
    if n_img < 1:
        raise ConfigError(f"synthetic.n_images: must be at least 1 (got {n_images})")
    n_sub = pre.n_subjects if n_images is None else round(n_img * pre.n_subjects / pre.n_images)
    n_sub = int(min(n_img, max(n_sub, -(-n_img // 2), 1)))
    twice = set(np.random.default_rng(derive_seed(seed, "synth", "cohort")).permutation(n_sub)[: n_img - n_sub])
    params = params or SynthParams()
    tasks = []
    for s in range(n_sub):
        subject = f"sub{s + 1:04d}"
        for visit in (1, 2) if s in twice else (1,):
            image_id = f"{subject}_v{visit}"
            tasks.append(ImageTask(image_id, subject, visit, derive_seed(seed, "synth", "subject", subject),
                                   derive_seed(seed, "synth", "image", image_id), pre.scale, params))
    return tasks


def generate_image(task: ImageTask):
    """Everything for one image: (image, mask, images row, vertebra rows). Pure function of the task."""
    p = task.params
    spine = sample_spine(np.random.default_rng(task.subject_seed), p)
    rng = np.random.default_rng(task.image_seed)
    if task.visit > 1:
        spine = progress(spine, rng, p)
    ensure_fracture(spine, rng)
    placed = place_spine(spine)
    for _attempt in range(20):
        pose = sample_pose(placed, spine.run, rng, p, task.scale)
        image, mask, marks = render(spine, placed, pose, rng, p)
        marks = snap_inside(marks, mask)
        ha = np.hypot(*(marks[:, 0] - marks[:, 1]).T)
        vc = vertebral_compression(ha[1:-1], ha[:-2], ha[2:])
        if np.max(vc) >= FRACTURE_THRESHOLD:  # pixel rounding can pull a borderline fracture under 20
            break
        spine.loss[spine.run.start + 1 + int(np.argmax(vc))] += 0.03
        apply_deformities(spine, rng)
        placed = place_spine(spine)
    image_row = {"image_id": task.image_id, "subject_id": task.subject_id,
                 "anterior_side": "right" if pose.flip else "left", "pixel_spacing_mm": round(pose.spacing, 6),
                 "width": pose.width, "height": pose.height, "source": "synthetic"}
    rows = []
    for lab in range(1, marks.shape[0] + 1):
        i = spine.run.start + lab - 1
        m = marks[lab - 1]
        rows.append({"image_id": task.image_id, "label": lab, "level": spine.levels[i],
                     "as_x": m[0, 0], "as_y": m[0, 1], "ai_x": m[1, 0], "ai_y": m[1, 1],
                     "ps_x": m[2, 0], "ps_y": m[2, 1], "pi_x": m[3, 0], "pi_y": m[3, 1],
                     "ha_px": float(np.hypot(*(m[0] - m[1]))), "hp_px": float(np.hypot(*(m[2] - m[3]))),
                     "deformity": spine.deformity[i]})
    return image, mask, image_row, rows


def _generate_and_write(task: ImageTask, out_dir: str):
    image, mask, image_row, rows = generate_image(task)
    write_png(Path(out_dir) / "images" / f"{task.image_id}.png", image)
    write_png(Path(out_dir) / "masks" / f"{task.image_id}.png", mask)
    return image_row, rows


def measurement_rows(vertebrae: pd.DataFrame, reader_noise_sd: float, seed: int) -> pd.DataFrame:
    """Eq. 1 for every body with a neighbour above and below, a reader's value and the Genant grade."""
    out = []
    for image_id, grp in vertebrae.groupby("image_id", sort=True):
        grp = grp.sort_values("label")
        ha = grp["ha_px"].to_numpy(float)
        vc = vertebral_compression(ha[1:-1], ha[:-2], ha[2:])
        rng = np.random.default_rng(derive_seed(seed, "synth", "reader", image_id))
        reader = np.round(vc + rng.normal(0.0, reader_noise_sd, len(vc)), 2) if reader_noise_sd > 0 else vc
        for lab, v, r in zip(grp["label"].to_numpy()[1:-1], vc, reader, strict=True):
            out.append({"image_id": image_id, "label": int(lab), "measure": MEASURE_VC, "value_true": float(v),
                        "value_reader": float(r), "genant_grade": int(genant_grade(v))})
    return pd.DataFrame(out, columns=MEASUREMENTS_COLUMNS)


def simulate_cohort(dest: str | Path, preset: str = "paper", n_images: int | None = None, seed: int = 42,
                    reader_noise_sd: float = 1.0, threads: int = 1, params: SynthParams | None = None) -> Path:
    """Write a canonical dataset (DESIGN §3) to ``dest`` atomically; byte-identical for a given seed."""
    if reader_noise_sd < 0:
        raise ConfigError(f"synthetic.reader_noise_sd: must be >= 0 (got {reader_noise_sd})")
    params = replace(params or SynthParams(), reader_noise_sd=reader_noise_sd)
    tasks = plan_cohort(preset, n_images, seed, params)
    dest = Path(dest)
    log.info("simulating %d images of %d subjects (preset %s, seed %d, %d threads)", len(tasks),
             len({t.subject_id for t in tasks}), preset, seed, threads)
    with atomic_dir(dest) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        if threads > 1:
            with ProcessPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(_generate_and_write, tasks, [str(tmp)] * len(tasks), chunksize=1))
        else:
            results = [_generate_and_write(t, str(tmp)) for t in tasks]
        images = pd.DataFrame([r[0] for r in results], columns=IMAGES_COLUMNS)
        vert = pd.DataFrame([row for r in results for row in r[1]], columns=VERTEBRAE_COLUMNS[:-1] + EXTRA_COLUMNS)
        measurements = measurement_rows(vert, reader_noise_sd, seed)
        frac = measurements.set_index(["image_id", "label"])["value_true"] >= FRACTURE_THRESHOLD
        keys = list(zip(vert["image_id"], vert["label"], strict=True))
        # measurable bodies: Eq. 1 at or above the threshold (DESIGN §4); end bodies are drawn intact
        vert.insert(len(VERTEBRAE_COLUMNS) - 1, "fractured", [int(frac.get(key, False)) for key in keys])
        write_csv(tmp / "images.csv", images)
        write_csv(tmp / "vertebrae.csv", vert)
        write_csv(tmp / "measurements.csv", measurements)
        write_csv(tmp / "params.csv", pd.DataFrame(
            [{"key": k, "value": str(v)} for k, v in
             [("preset", preset), ("n_images", len(tasks)), ("seed", seed), *asdict(params).items()]]))
    log.info("wrote %s", dest)
    return dest


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
