"""Body geometry (vcmeasure.geometry): corners and heights on crafted, tilted and curved stacks of rounded
quadrilaterals with known corners (DESIGN §4, Eq. 1 needs the anterior heights)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vcmeasure import geometry


def body_corners(cx, cy, w, ha, hp, angle_deg):
    """AS, AI, PS, PI of a body centred at (cx, cy), anterior to the left, turned by angle_deg (clockwise)."""
    local = np.array([[-w / 2, -ha / 2], [-w / 2, ha / 2], [w / 2, -hp / 2], [w / 2, hp / 2]])
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return local @ rot.T + [cx, cy]


def draw_polygon(image, polygon, value, radius=2.0, ss=8):
    """Fill a polygon (pixel-centre coordinates) with rounded corners, anti-aliased at ss x and thresholded."""
    h, w = image.shape
    big = np.zeros((h * ss, w * ss), np.uint8)
    pts = np.round(np.asarray(polygon) * ss + (ss - 1) / 2.0).astype(np.int32)
    cv2.fillPoly(big, [pts], 1)
    if radius > 0:
        r = int(round(radius * ss))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        big = cv2.morphologyEx(big, cv2.MORPH_OPEN, kernel)
    small = cv2.resize(big.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    image[small] = value
    return small


def corner_landmarks(corners, radius):
    """Where a reader marks a corner rounded with a circular arc of ``radius``: the arc's midpoint, on the
    bisector at r (1 / sin(theta / 2) - 1) from the sharp corner (theta: the corner's angle)."""
    corners = np.asarray(corners, float)
    neighbours = {0: (1, 2), 1: (0, 3), 2: (3, 0), 3: (2, 1)}  # AS-AI-PI-PS around the body
    out = []
    for k, (i, j) in neighbours.items():
        u = (corners[i] - corners[k]) / np.linalg.norm(corners[i] - corners[k])
        v = (corners[j] - corners[k]) / np.linalg.norm(corners[j] - corners[k])
        theta = np.arccos(np.clip(u @ v, -1, 1))
        bisector = (u + v) / np.linalg.norm(u + v)
        out.append(corners[k] + bisector * radius * (1 / np.sin(theta / 2) - 1))
    return np.array(out)


def craft_stack(n=7, size=400, h=32.0, w=None, gap=None, tilt=0.0, curve=0.0, ha_scale=None, radius=2.0):
    """Label map 1..n (top to bottom) of a tilted, curved spine; ha_scale {index: factor} wedges a body.

    Returns (label map, landmarks (n, 4, 2) in AS, AI, PS, PI order: the rounded corners' tips).
    """
    w = w or 1.4 * h
    gap = gap if gap is not None else 0.3 * h
    ha_scale = ha_scale or {}
    angle = tilt - curve * (n - 1) / 2
    pos, centres, angles = np.zeros(2), [], []
    for _ in range(n):
        centres.append(pos.copy())
        angles.append(angle)
        a = np.deg2rad(angle)
        pos = pos + (h + gap) * np.array([-np.sin(a), np.cos(a)])
        angle += curve
    centres = np.array(centres)
    centres += np.array([size / 2, size / 2]) + 0.3 - centres.mean(axis=0)  # 0.3: no exact half-pixel ties
    image = np.zeros((size, size), np.uint8)
    truth = []
    for i, (c, a) in enumerate(zip(centres, angles, strict=True)):
        corners = body_corners(c[0], c[1], w, h * ha_scale.get(i, 1.0), h, a)
        draw_polygon(image, corners[[0, 2, 3, 1]], i + 1, radius)
        truth.append(corner_landmarks(corners, radius))
    return image, np.array(truth)


@pytest.mark.parametrize("tilt,curve", [(0.0, 0.0), (12.0, 0.0), (-15.0, 0.0), (5.0, 4.0), (-8.0, -3.0)])
def test_corners_and_heights_on_tilted_curved_stacks(tilt, curve):
    image, truth = craft_stack(tilt=tilt, curve=curve, ha_scale={2: 0.6, 4: 0.75})
    bodies = geometry.measure_bodies(image)
    assert [b.label for b in bodies] == list(range(1, 8))
    for body, corners in zip(bodies, truth, strict=True):
        assert body.has_corners
        # each corner found where it is and named right (AS, AI, PS, PI), to about a pixel
        assert np.abs(body.corners - corners).max() < 1.5
        # a binary mask keeps each edge point to +-0.5 px: heights of ~32 px within 1.5 px (5 %)
        assert body.ha == pytest.approx(geometry.anterior_height(corners), abs=1.5)
        assert body.hp == pytest.approx(geometry.posterior_height(corners), abs=1.5)


def test_local_axes_follow_the_spine():
    centres = np.array([[100.0, 10.0], [110.0, 50.0], [130.0, 90.0]])
    axes = geometry.local_axes(centres)
    assert np.allclose(np.linalg.norm(axes, axis=1), 1.0)
    assert np.allclose(axes[1], (centres[2] - centres[0]) / np.linalg.norm(centres[2] - centres[0]))
    assert (axes[:, 1] > 0).all()  # superior -> inferior
    assert np.allclose(geometry.local_axes(centres[:1]), [[0.0, 1.0]])


def _single(shape_fn):
    image = np.zeros((120, 120), np.uint8)
    shape_fn(image)
    bodies = geometry.measure_bodies(image)
    assert len(bodies) == 1
    return bodies[0]


def test_no_four_corners_for_ellipse_triangle_and_speck():
    ellipse = _single(lambda im: cv2.ellipse(im, (60, 60), (26, 16), 0, 0, 360, 1, -1))
    triangle = _single(lambda im: cv2.fillPoly(im, [np.array([[30, 80], [90, 80], [60, 35]], np.int32)], 1))
    speck = _single(lambda im: cv2.rectangle(im, (60, 60), (62, 62), 1, -1))
    assert not ellipse.has_corners and not triangle.has_corners and not speck.has_corners
    assert np.isnan(ellipse.ha) and np.isnan(triangle.hp)
    # a rounded rectangle of the same size does have four corners
    rect = _single(lambda im: draw_polygon(im, [[33.5, 43.5], [85.5, 43.5], [85.5, 75.5], [33.5, 75.5]], 1, radius=4))
    assert rect.has_corners
    # tips of corners rounded with r = 4 lie 4 (sqrt(2) - 1) px in along the diagonal from the sharp corners
    tip = 32.0 - 2 * 4 * (np.sqrt(2) - 1) / np.sqrt(2)
    assert rect.ha == pytest.approx(tip, abs=0.5) and rect.hp == pytest.approx(tip, abs=0.5)
